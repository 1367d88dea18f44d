"""Contract servers for the SOAR connectors (tests/servers/splunk_soar_contract.py, xsoar_contract.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))  # after site-packages: tests/servers has modules named like packages (medallion, moto)

from splunk_soar_contract import SplunkSoarServer  # noqa: E402
from xsoar_contract import XsoarServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def soar_server():
    with SplunkSoarServer() as server:
        yield server


@pytest.fixture
def xsoar_server():
    with XsoarServer() as server:
        yield server


@pytest.fixture(scope="session")
def sample_events():
    """The seven sample events, as a sink receives them: validated (leniently: nulls dropped)."""
    import json
    from wia_security import validate_event
    return [validate_event(json.loads(p.read_text()), lenient=True).event
            for p in sorted((ROOT / "samples").glob("*-sample.json"))]


class Sleeps(list):
    """Records the backoff delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
