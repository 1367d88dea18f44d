"""Contract servers for the threat-intel connectors, importable from tests/servers."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "servers"))
