"""gateway (`/v1/events`) -> its store -> its TAXII 2.1 collection -> `pull taxii+http://` (checkpoint) -> NDJSON and
`sqlite:`. Threat intel timed in every valid spelling comes back as the gateway stored it; newer versions whose time
sorts first as a string (`e2e_helpers.VERSION_PAIRS`), and the older versions re-sent late, leave the newest version
of each event in the pulled store, and a reader from the start reads each event once, in its newest version."""
from __future__ import annotations


import pytest
import requests
from e2e_helpers import (AUTH, TOKEN, VERSION_PAIRS, expected, pull_summary, read_ndjson, store_rows, time_spellings,
                         with_times)
from strategies import event_dicts


pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("taxii2client", reason="the taxii extra is not installed")

from wia_security.connectors.gateway import GatewaySettings  # noqa: E402
from wia_security.connectors.gateway.server import GatewayServer  # noqa: E402
from wia_security.connectors.gateway.taxii_server import COLLECTION_ID  # noqa: E402


def test_gateway_collection_serves_every_spelling_and_the_newest_version(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("E2E_TAXII_TOKEN", TOKEN)
    spellings = time_spellings()
    intel = with_times(event_dicts(len(spellings), seed=1499, event_type="threat_intel", wild=True), spellings)
    older = event_dicts(len(VERSION_PAIRS), seed=1500, event_type="threat_intel")
    for event, (old, _) in zip(older, VERSION_PAIRS):
        event["timestamp"] = old
    newer = [{**e, "timestamp": new, "severity": (int(e["severity"]) + 1) % 10}
             for e, (_, new) in zip(older, VERSION_PAIRS)]
    gw = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/gateway.db",
                                       dead_letter=str(tmp_path / "gateway-dead.ndjson"))).start()
    source = f"taxii+{gw.url}/taxii2/wia/collections/{COLLECTION_ID}/?token_env=E2E_TAXII_TOKEN&settle=0"

    def pull(to: str, checkpoint: str) -> dict:
        return pull_summary(source, to, tmp_path / checkpoint, tmp_path / "pull-dead.ndjson", capsys)

    try:
        for batch in ([*intel, *older], newer, older):
            reply = requests.post(gw.url + "/v1/events", json=batch, headers=AUTH, timeout=30)
            assert reply.status_code == 200 and reply.json().get("rejected", 0) == 0, reply.text
            pull(f"sqlite:///{tmp_path}/pulled.db", "cp.json")
        assert pull(f"sqlite:///{tmp_path}/pulled.db", "cp.json")["read"] == 0
        pull(f"file://{tmp_path}/all.ndjson", "cp-all.json")
    finally:
        gw.stop()
    newest = {e["id"]: expected(e) for e in [*intel, *older, *newer]}
    newest.update({e["id"]: expected(e) for e in newer})
    rows = store_rows(tmp_path / "pulled.db")
    assert all(len(v) == 1 for v in rows.values())
    assert {i: v[0] for i, v in rows.items()} == newest
    from_start = read_ndjson(tmp_path / "all.ndjson")
    assert sorted(e["id"] for e in from_start) == sorted(newest)
    assert {e["id"]: e for e in from_start} == newest
    assert not read_ndjson(tmp_path / "pull-dead.ndjson") and not read_ndjson(tmp_path / "gateway-dead.ndjson")
