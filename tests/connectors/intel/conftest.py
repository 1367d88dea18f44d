"""Contract servers for the threat-intel connectors, importable from tests/servers."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))  # after site-packages: tests/servers has modules named like packages (medallion, moto)
