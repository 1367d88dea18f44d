"""Entry point of the wia_events modular input (Splunk runs bin/wia_events.py)."""
import os
import sys

_BIN = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_BIN, "lib"))
sys.path.insert(1, _BIN)

from wia_app.modinput import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv))
