"""Makes the helpers beside these tests (dataset, chromium) importable."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
