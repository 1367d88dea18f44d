"""Path (OpenSearch on osmem-server, an emulator): `forward` -> OpenSearch (opensearch-py, ECS documents, daily
indices) -> a `_search` answer saved as a user would (`curl .../_search > hits.json`) -> `convert --from ecs`.
docs/formats/ecs.md says an ECS document written by this project gives back every value of its event; this checks it
after a real index and a real search answer in between, for every event type and arbitrary unicode strings."""
from __future__ import annotations

import json

import pytest
from e2e_helpers import expected, read_ndjson, write_ndjson
from strategies import event_dicts

from wia_security.cli import main

pytest.importorskip("opensearchpy", reason="the elastic extra is not installed")

from opensearchpy import OpenSearch  # noqa: E402
from servers.osmem import osmem, osmem_base  # noqa: E402,F401  (fixtures)


@pytest.mark.parametrize("wild", [False, True], ids=["realistic", "unicode"])
def test_events_indexed_as_ecs_read_back_from_a_search_answer(osmem, tmp_path, capsys, wild):  # noqa: F811
    events = event_dicts(60, seed=1490 + wild, wild=wild, times="any")
    index_prefix = f"wia-readback-{'u' if wild else 'r'}"
    inputs = write_ndjson(tmp_path / "events.ndjson", events)
    code = main(["forward", str(inputs), "--to", f"opensearch+{osmem}?max_wait=0&index={index_prefix}&naming=daily",
                 "--dead-letter", str(tmp_path / "forward-dead.ndjson"), "--summary", "json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["delivered"] == len(events), summary

    client = OpenSearch(hosts=[osmem], max_retries=0)
    client.indices.refresh(index=f"{index_prefix}-*")
    answer = client.search(index=f"{index_prefix}-*", body={"size": 10000, "query": {"match_all": {}}})
    assert len(answer["hits"]["hits"]) == len(events)
    hits = tmp_path / "hits.json"
    hits.write_text(json.dumps(answer))

    back = tmp_path / "back.ndjson"
    code = main(["convert", "--from", "ecs", str(hits), "-o", str(back),
                 "--dead-letter", str(tmp_path / "convert-dead.ndjson")])
    err = capsys.readouterr().err
    assert code == 0, err
    read = {e["id"]: e for e in read_ndjson(back)}
    assert sorted(read) == sorted(e["id"] for e in events)
    for event in events:
        assert read[event["id"]] == expected(event), event["id"]
