"""The WIA Security integration loaded as XSOAR loads it: `demistomock` and `CommonServerPython` are
the stand-ins in stubs/; tests/servers holds the gateway feed stand-in, medallion and intel_http."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
INTEGRATION = ROOT / "xsoar_pack" / "Packs" / "WIASecurity" / "Integrations" / "WIASecurity" / "WIASecurity.py"
sys.path.insert(0, str(HERE / "stubs"))
sys.path.append(str(ROOT / "tests" / "servers"))  # after site-packages: tests/servers has modules named like packages (medallion, moto)

import demistomock  # noqa: E402


@pytest.fixture(scope="session")
def integration():
    spec = importlib.util.spec_from_file_location("WIASecurity", INTEGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def demisto():
    demistomock.reset()
    return demistomock


@pytest.fixture(scope="session")
def sample_events():
    from wia_security import validate_event
    return [validate_event(json.loads(p.read_text()), lenient=True).event for p in sorted((ROOT / "samples").glob("*-sample.json"))]


class RealGateway:
    """The project's gateway (`wia-security serve`) on 127.0.0.1 with a SQLite store."""

    token = "xsoar-test-gateway-token-0123456789"

    def __init__(self, tmp_path: Path) -> None:
        from wia_security.connectors.gateway import GatewaySettings
        from wia_security.connectors.gateway.server import GatewayServer
        self.store_path = str(tmp_path / "events.db")
        self.server = GatewayServer(GatewaySettings(tokens=[self.token], store=f"sqlite:///{self.store_path}",
                                                    dead_letter=str(tmp_path / "dead.ndjson"), taxii=False)).start()
        self.url = self.server.url

    def publish(self, events: list[dict]) -> dict:
        import requests
        reply = requests.post(f"{self.url}/v1/events", json=events, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def feed(self) -> list[dict]:
        import requests
        reply = requests.get(f"{self.url}/v1/events", params={"after": "0", "limit": 1000},
                             headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        return reply.json()["events"]


@pytest.fixture
def gateway(tmp_path):
    server = RealGateway(tmp_path)
    try:
        yield server
    finally:
        server.server.stop()


@pytest.fixture
def feed():
    """The feed stand-in: serves what a real gateway never does (invalid events, faults)."""
    from wia_gateway_feed import GatewayFeed
    with GatewayFeed() as server:
        yield server


def run_command(integration, demisto, command: str, args: dict | None = None, params: dict | None = None,
                last_run: dict | None = None):
    """Runs main() for one command as XSOAR would; returns the entries it produced."""
    demisto.reset(params=params or {}, args=args or {}, command=command, last=last_run)
    try:
        integration.main()
    except SystemExit:          # return_error exits, like the real one
        pass
    return demisto.results_log
