"""Entry point of the "Send as WIA event" alert action (Splunk runs it with --execute)."""
import os
import sys

_BIN = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_BIN, "lib"))
sys.path.insert(1, _BIN)

from wia_app.runtime import refuse_old_action  # noqa: E402

if refuse_old_action():     # Splunk before 10.2 runs Python 3.7 or 3.9 here: the result is dead-lettered
    sys.exit(2)

from wia_app.alert_action import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv))
