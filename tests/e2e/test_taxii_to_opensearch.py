"""Path 2 (OpenSearch side on osmem-server, an emulator): the gateway's store -> its TAXII 2.1 collection -> `pull
taxii+http://...` (checkpointed) -> OpenSearch (opensearch-py, ECS documents) -> read back. Threat intel must come
through STIX both ways into the same ECS document it would have been sent directly as; a re-poll adds nothing,
a newer version replaces its document, and the WIA events the pull reads are the ones the gateway stored."""
from __future__ import annotations


import pytest
import requests
from e2e_helpers import AUTH, TOKEN, expected, newer, pull_summary, store_rows
from strategies import event_dicts

from wia_security import convert

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("taxii2client", reason="the taxii extra is not installed")
pytest.importorskip("opensearchpy", reason="the elastic extra is not installed")

from opensearchpy import OpenSearch  # noqa: E402
from servers.osmem import osmem, osmem_base  # noqa: E402,F401  (fixtures)

from wia_security.connectors.gateway import GatewaySettings  # noqa: E402
from wia_security.connectors.gateway.server import GatewayServer  # noqa: E402
from wia_security.connectors.gateway.taxii_server import COLLECTION_ID  # noqa: E402


def documents(url: str) -> dict[str, list[dict]]:
    client = OpenSearch(hosts=[url], max_retries=0)
    client.indices.refresh(index="wia-security-*")
    hits = client.search(index="wia-security-*", body={"size": 10000, "query": {"match_all": {}}})["hits"]["hits"]
    by_id: dict[str, list[dict]] = {}
    for hit in hits:
        by_id.setdefault(hit["_id"], []).append(hit["_source"])
    return by_id


def same_utc_day(a: dict, b: dict) -> bool:
    """Daily indices: a version on another UTC day is a second document by design (docs/connectors/elastic.md)."""
    return convert(a, to="ecs")["@timestamp"][:10] == convert(b, to="ecs")["@timestamp"][:10]


def test_threat_intel_from_the_gateways_taxii_into_opensearch(osmem, tmp_path, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setenv("E2E_TAXII_TOKEN", TOKEN)
    gw = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/gateway.db",
                                       dead_letter=str(tmp_path / "gateway-dead.ndjson"))).start()
    intel = event_dicts(12, seed=1410, event_type="threat_intel")
    alerts = event_dicts(3, seed=1411, event_type="alert")          # not threat intel: never in the collection
    source = f"taxii+{gw.url}/taxii2/wia/collections/{COLLECTION_ID}/?token_env=E2E_TAXII_TOKEN&settle=0"

    def pull(to: str, checkpoint: str) -> dict:
        return pull_summary(source, to, tmp_path / checkpoint, tmp_path / "pull-dead.ndjson", capsys)

    opensearch = "opensearch+" + osmem + "?max_wait=0"
    try:
        assert requests.post(gw.url + "/v1/events", json=intel + alerts, headers=AUTH).status_code == 200
        first = pull(opensearch, "os.json")
        assert (first["read"], first["delivered"]) == (12, 12), first
        assert pull(opensearch, "os.json")["read"] == 0                  # the checkpoint: nothing new

        updated = [newer(e, 1, severity=(e["severity"] + 1) % 11) for e in intel[:4]]
        updated = [u for u, e in zip(updated, intel) if same_utc_day(u, e)]
        assert len(updated) >= 3
        assert requests.post(gw.url + "/v1/events", json=updated, headers=AUTH).status_code == 200
        second = pull(opensearch, "os.json")
        assert (second["read"], second["delivered"]) == (len(updated), len(updated)), second

        # a poll from scratch (a lost checkpoint): every event read again, nothing indexed twice
        again = pull(opensearch, "os-lost.json")
        assert again["read"] == 12 and again["delivered"] == 0, again
        # and the same collection into the embedded store: the WIA events the gateway holds, after STIX both ways
        pull(f"sqlite:///{tmp_path}/pulled.db", "sqlite.json")
    finally:
        gw.stop()

    newest = {e["id"]: e for e in [*intel, *updated]}
    docs = documents(osmem)
    assert {i: len(d) for i, d in docs.items() if len(d) != 1} == {}
    assert sorted(docs) == sorted(newest)
    for event_id, [doc] in docs.items():
        assert doc == convert(expected(newest[event_id]), to="ecs"), event_id
    pulled = {i: rows for i, rows in store_rows(tmp_path / "pulled.db").items()}
    assert {i: rows[0] for i, rows in pulled.items()} == {i: expected(e) for i, e in newest.items()}
    assert not (tmp_path / "pull-dead.ndjson").exists() or not (tmp_path / "pull-dead.ndjson").read_text()
