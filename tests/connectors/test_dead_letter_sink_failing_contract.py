"""A dead letter that is a sink (`--dead-letter sink+URL`) and itself fails: every record reaches the
fallback file once, with its own event and both reasons, never another record's. Against the HEC contract
server (a batching sink, whose failures settle in a later send's report) and a FileSink on a FIFO whose
reader went away (a sink that raises)."""
from __future__ import annotations

import json
import os

from servers.hec_contract import HecContractServer  # noqa: E402
from strategies import event_dicts  # noqa: E402

from wia_security.connectors.base import Rejected
from wia_security.connectors.dead_letter import DeadLetterFile, dead_letter_id
from wia_security.connectors.delivery import DeliveryPolicy, SinkDeadLetter
from wia_security.connectors.file import FileSink
from wia_security.connectors.splunk.hec import HecSink


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_contract_a_refusing_batching_dead_letter_sink_keeps_each_record_once(tmp_path):
    events = event_dicts(7, seed=126)
    rejected = [Rejected(f"first failure of #{n}", event=e, where=f"in.ndjson:{n + 1}", sink="elastic")
                for n, e in enumerate(events)]
    with HecContractServer({"the-real-token": {}}) as server:
        # a wrong token: HEC refuses every request (403 code 4); batches of 2 settle in later sends' reports
        sink = HecSink(server.url, token="a-wrong-token", delivery=DeliveryPolicy(max_events=2, max_wait=0))
        fallback = tmp_path / "fallback.ndjson"
        dead_letter = SinkDeadLetter(sink, DeadLetterFile(str(fallback)))
        for r in rejected:
            dead_letter.put(r)
        dead_letter.close()
        assert server.events == []
    kept = records(fallback)
    assert len(kept) == len(events)                                    # 7 handed over, 7 kept
    assert sorted(r["event"]["id"] for r in kept) == sorted(e["id"] for e in events)
    by_id = {r["event"]["id"]: r for r in kept}
    for n, (event, first) in enumerate(zip(events, rejected)):
        record = by_id[event["id"]]
        assert record["event"] == event                                # as it was, without the annotation
        assert record["reason"] == (f"first failure of #{n}; dead-letter sink also failed: "
                                    "HEC 403 code 4: Invalid token")
        assert record["where"] == f"in.ndjson:{n + 1}" and record["sink"] == "elastic"
        assert record["dead_letter_id"] == dead_letter_id(first)       # a replay counts it once


def test_contract_a_dead_letter_sink_that_raises_keeps_the_record_in_the_fallback(tmp_path):
    fifo = tmp_path / "reader-gone.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    sink = FileSink(str(fifo))
    os.close(reader)                                       # the reader went away: a write is EPIPE
    fallback = tmp_path / "fallback.ndjson"
    dead_letter = SinkDeadLetter(sink, DeadLetterFile(str(fallback)))
    [event] = event_dicts(1, seed=127)
    dead_letter.put(Rejected("HEC 400 code 7: Incorrect index", event=event, sink="splunk"))
    dead_letter.fallback.close()
    [record] = records(fallback)
    assert record["event"] == event and dead_letter.count == 1
    assert record["reason"].startswith("HEC 400 code 7: Incorrect index; dead-letter sink also failed: "
                                       "BrokenPipeError")
