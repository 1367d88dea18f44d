"""`forward` -> the HEC sink -> the HEC contract server, whose events Splunk indexes (the Splunk REST contract server's
index, with `_time` = the HEC `time` as Splunk sets it) -> `pull splunk+http://` (index-time checkpoint, the
real splunk-sdk) -> NDJSON. For events timed in every valid spelling and holding arbitrary unicode: every event
comes back exactly as `forward` normalized it, and its `_time` is its own instant to the millisecond, cut as
Splunk keeps it (never the next millisecond, second or year)."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from decimal import Decimal

from e2e_helpers import (OUT_OF_RANGE_SPELLINGS, expected, instant, read_ndjson, time_spellings, with_times,
                         write_ndjson)
from strategies import event_dicts

from servers.hec_contract import HecContractServer
from servers.splunk_rest_contract import SplunkRestContractServer
from wia_security.cli import main

HEC_TOKEN = "e2e-hec-token-0123456789abcdef"
REST_TOKEN = "eyJraWQiOiJzcGx1bmsuc2VjcmV0IiwiYWxnIjoiSFM1MTIifQ.e2e"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_ms(text: str) -> int:
    """Milliseconds since the epoch, floored (how many whole milliseconds of the instant had passed)."""
    delta = instant(text) - EPOCH
    return (delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds) // 1000


def test_hec_events_read_back_by_search_with_their_instant_in_time(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("E2E_HEC_TOKEN", HEC_TOKEN)
    monkeypatch.setenv("E2E_SPLUNK_TOKEN", REST_TOKEN)
    spellings = time_spellings() + OUT_OF_RANGE_SPELLINGS
    events = with_times(event_dicts(len(spellings), seed=1493, wild=True), spellings)
    with HecContractServer({HEC_TOKEN: {}}) as hec, \
            SplunkRestContractServer({REST_TOKEN}, event_time_filter=True) as splunk:
        code = main(["forward", str(write_ndjson(tmp_path / "in.ndjson", events)), "--to",
                     f"splunk+{hec.url}?token_env=E2E_HEC_TOKEN&index=security&max_wait=0", "--dead-letter",
                     str(tmp_path / "dead.ndjson"), "--no-progress", "--summary", "json"])
        forwarded = json.loads(capsys.readouterr().out)
        for body in hec.events:                   # what HEC took is what the indexers hold
            splunk.index(body, indextime=time.time() - 60)
        times = {json.loads(r["_raw"])["id"]: r["_time"] for r in splunk._server.indexed}
        pulled_code = main(["pull", f"splunk+http://127.0.0.1:{splunk.port}?token_env=E2E_SPLUNK_TOKEN",
                            "--to", f"file://{tmp_path}/back.ndjson", "--checkpoint", str(tmp_path / "cp.json"),
                            "--index-start=-10m", "--lag", "0", "--dead-letter",
                            str(tmp_path / "pull-dead.ndjson"), "--summary", "json"])
        pulled = json.loads(capsys.readouterr().out)
    dead = read_ndjson(tmp_path / "dead.ndjson")
    back = {e["id"]: e for e in read_ndjson(tmp_path / "back.ndjson")}
    assert (code, pulled_code) == (0, 0), (forwarded, pulled)
    assert forwarded["delivered"] == len(events) and not dead and not read_ndjson(tmp_path / "pull-dead.ndjson")
    assert pulled["delivered"] == len(events)
    assert back == {e["id"]: expected(e) for e in events}
    for event in events:
        # `_time` is what a user's searches select and sort by: the event's instant, to the millisecond
        assert Decimal(times[event["id"]]) * 1000 == epoch_ms(event["timestamp"]), (event["timestamp"],
                                                                                     times[event["id"]])
