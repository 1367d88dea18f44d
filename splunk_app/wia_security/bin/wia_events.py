"""Entry point of the wia_events modular input (Splunk runs bin/wia_events.py)."""
import os
import sys

_BIN = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_BIN, "lib"))
sys.path.insert(1, _BIN)

from wia_app.runtime import refuse_old_input  # noqa: E402

if refuse_old_input():      # Splunk before 10.2 runs Python 3.7 or 3.9 here: say so, not a traceback
    sys.exit(1)

from wia_app.modinput import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv))
