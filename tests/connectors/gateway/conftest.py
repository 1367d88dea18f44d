"""The gateway runs as a real server on 127.0.0.1 (uvicorn in a thread); tests drive it with real clients."""
from __future__ import annotations

import time

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("websockets", reason="the server extra is not installed")

from wia_security.connectors.gateway import GatewaySettings  # noqa: E402
from wia_security.connectors.gateway.server import GatewayServer  # noqa: E402

from gateway_helpers import TOKEN  # noqa: E402


@pytest.fixture
def make_gateway(tmp_path):
    """make_gateway(**settings) -> a started GatewayServer with its store and dead letter under tmp_path."""
    servers: list[GatewayServer] = []

    def make(**overrides) -> GatewayServer:
        options = {"tokens": [TOKEN], "store": f"sqlite:///{tmp_path}/events.db",
                   "dead_letter": str(tmp_path / "dead.ndjson"), "taxii": False, **overrides}
        server = GatewayServer(GatewaySettings(**options)).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def slow_matches(monkeypatch):
    """Each filter match made to take 2 us more: the matching then lasts seconds on any machine, so the test shows the
    loop being yielded during it. Without it a quiet machine matched everything before the other connection's ping
    was sent, and the test failed although the gateway yields (an ordering that depended on the machine's speed)."""
    from wia_security.connectors.gateway import stream
    plain = stream.Subscription.matches

    def slow(self, rec):  # type: ignore[no-untyped-def]
        until = time.perf_counter() + 2e-6
        while time.perf_counter() < until:
            pass
        return plain(self, rec)
    monkeypatch.setattr(stream.Subscription, "matches", slow)
