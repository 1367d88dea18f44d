"""`dead_letter_id`: the same value refused again from the same place gets the same id, in every output."""
from __future__ import annotations

import json

from wia_security.connectors.base import Rejected
from wia_security.connectors.dead_letter import DeadLetterFile, dead_letter_id, dead_letter_record

EVENT = {"id": "e1", "type": "alert", "data": {"title": "x\ud800"}}      # a lone surrogate must not break the hash


def test_the_id_ignores_the_reason_and_the_time_but_not_the_value_place_or_destination():
    first = Rejected("HTTP 500", event=EVENT, where="in.ndjson:3", sink="hec")
    again = Rejected("HTTP 503, reworded", event=dict(EVENT), where="in.ndjson:3", sink="hec")
    assert dead_letter_id(first) == dead_letter_id(again)
    for other in (Rejected("HTTP 500", event={**EVENT, "id": "e2"}, where="in.ndjson:3", sink="hec"),
                  Rejected("HTTP 500", event=EVENT, where="in.ndjson:4", sink="hec"),
                  Rejected("HTTP 500", event=EVENT, where="in.ndjson:3", sink="elastic"),
                  Rejected("unparseable", raw=b"{not json", where="in.ndjson:3")):
        assert dead_letter_id(other) != dead_letter_id(first)


def test_every_dead_letter_record_carries_it(tmp_path):
    raw = Rejected("unparseable input", raw=b"\xff\xfe not utf-8", where="in.ndjson:9")
    assert dead_letter_record(raw)["dead_letter_id"] == dead_letter_id(raw)
    with DeadLetterFile(str(tmp_path / "dead.ndjson")) as out:
        out.put(Rejected("HTTP 500", event={"id": "e1"}, where="a:1", sink="hec"))
        out.put(Rejected("HTTP 502", event={"id": "e1"}, where="a:1", sink="hec"))     # the rerun's repeat
    records = [json.loads(line) for line in (tmp_path / "dead.ndjson").read_text().splitlines()]
    assert len(records) == 2 and records[0]["dead_letter_id"] == records[1]["dead_letter_id"]
