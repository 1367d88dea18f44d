"""`wia-security replay` into OpenSearch (osmem-server, an OpenSearch-API emulator: emulator tests): the
bulk sink indexes by event id, so replaying the same dead letter twice stores nothing twice."""
from __future__ import annotations

import json
from typing import Any

from opensearchpy import OpenSearch
from servers.hec_contract import Fault, HecContractServer
import servers.osmem as osmem_server
from strategies import event_dicts

osmem_base, osmem = osmem_server.osmem_base, osmem_server.osmem       # the emulator's fixtures
TOKEN = "11111111-2222-4333-8444-555555555555"
NUMBER_FIELDS = {"severity", "confidence", "risk_score", "latitude", "longitude", "score", "base_score",
                 "temporal_score", "environmental_score"}


def _floats(node: Any, name: str = "") -> Any:
    """Schema `number` values as JSON floats: osmem's dynamic mapping refuses a `long` in a field it first
    saw as `float` (Elasticsearch coerces); see tests/connectors/elastic/test_elastic_sink.py."""
    if isinstance(node, dict):
        return {k: _floats(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_floats(v, name) for v in node]
    if isinstance(node, int) and not isinstance(node, bool) and name in NUMBER_FIELDS:
        return float(node)
    return node


def stored_ids(url: str) -> list[str]:
    client = OpenSearch(hosts=[url], max_retries=0)
    client.indices.refresh(index="wia-security-*")
    hits = client.search(index="wia-security-*", body={"size": 10000, "query": {"match_all": {}}})["hits"]["hits"]
    return sorted(h["_id"] for h in hits)


def test_emulator_replay_twice_into_opensearch_stores_each_event_once(cli, tmp_path, monkeypatch, osmem):
    monkeypatch.setenv("HEC_TOKEN", TOKEN)
    events = [_floats(e) for e in event_dicts(40, seed=21)]
    ids = sorted(e["id"] for e in events)
    source = tmp_path / "in.ndjson"
    source.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with HecContractServer({TOKEN: {}}) as hec:
        hec.state.faults.append(Fault("status", status=503, code=9))
        r = cli("forward", str(source), "--to", f"splunk+{hec.url}?token_env=HEC_TOKEN&max_attempts=1&max_wait=0",
                "--dead-letter", "dead.ndjson")
        assert r.code == 1
    url = f"opensearch+{osmem}?max_wait=0"
    first = cli("replay", "dead.ndjson", "--to", url, "--summary", "json")
    assert first.code == 0, first.err
    assert json.loads(first.out)["delivered"] == 40
    assert stored_ids(osmem) == ids
    second = cli("replay", "dead.ndjson", "--to", url, "--summary", "json")
    s = json.loads(second.out)
    assert second.code == 0, second.err
    assert (s["delivered"], s["duplicates"]) == (0, 40)
    assert stored_ids(osmem) == ids
