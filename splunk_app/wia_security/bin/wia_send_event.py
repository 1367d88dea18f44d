"""Entry point of the "Send as WIA event" alert action (Splunk runs it with --execute)."""
import os
import sys

_BIN = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_BIN, "lib"))
sys.path.insert(1, _BIN)

from wia_app.alert_action import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv))
