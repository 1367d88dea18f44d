"""Event Hub retries through the Azure Function (real azure-monitor-ingestion / azure-identity clients, the
Sentinel TLS contract server): the host's retry policy re-runs the same batch, so an attempt that raises
writes no dead-letter blob (its rejections come back with the retry), and the last retry keeps every
value it cannot deliver, a body not read to its end included. For N values in, delivered +
dead-lettered == N, and no value is dead-lettered twice."""
from __future__ import annotations

import copy
import json

import pytest

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: F401  (fixtures)
from test_function_app import DCR, Context, Out, app, fresh, hub_event  # noqa: F401  (fixture)


def invalid(event: dict) -> dict:
    broken = copy.deepcopy(event)
    broken["id"] = "not-a-uuid"
    return broken


def test_a_retried_batch_dead_letters_its_rejections_once(app, sentinel, samples):
    fn = app.eventhub_to_sentinel.build().get_user_function()
    bad, flaky, good = invalid(fresh(samples["alert-sample"])), fresh(samples["incident-sample"]), fresh(samples["alert-sample"])
    events = [hub_event(json.dumps(bad).encode(), 1), hub_event(json.dumps(flaky).encode(), 2),
              hub_event(json.dumps(good).encode(), 3)]
    sentinel.state.fail_next(503, times=100, retry_after="0")
    first, second = Out(), Out()
    with pytest.raises(RuntimeError, match="must be retried"):
        fn(events=events, deadletter=first, context=Context(0, 5))
    assert first.value is None                        # held back: the retry rejects the same value again
    sentinel.state.faults.clear()
    fn(events=events, deadletter=second, context=Context(1, 5))
    rows = sentinel.state.rows[(DCR, "Custom-WIASecurity")]
    dead = second.records()
    assert sorted(r["EventId"] for r in rows) == sorted([flaky["id"], good["id"]])
    assert [d["event"]["id"] for d in dead] == [bad["id"]] and dead[0]["reason"].startswith("invalid: /id")
    assert len(rows) + len(dead) == 3 and len(dead[0]["dead_letter_id"]) == 32


def test_the_last_retry_keeps_a_body_not_read_to_its_end_whole(app, sentinel, samples, monkeypatch):
    """A body of 150 events: the first 100 (one chunk) fail retryably and take longer than the budget,
    so the rest is never read. Before, the last retry dead-lettered only the 100 refused events and the
    other 50 were lost when the checkpoint moved on; now the body itself is kept, with both reasons."""
    monkeypatch.setenv("WIA_TIME_BUDGET", "0.5")
    fn = app.eventhub_to_sentinel.build().get_user_function()
    events = [fresh(samples["network-event-sample"]) for _ in range(150)]
    body = ("\n".join(json.dumps(e) for e in events) + "\n").encode()
    sentinel.state.fail_next(503, times=100, retry_after="1")       # one chunk's attempts outlast the budget
    out = Out()
    fn(events=[hub_event(body, 9)], deadletter=out, context=Context(5, 5))
    assert sentinel.state.all_rows() == []
    (dead,) = out.records()
    assert dead["where"] == "eventhub:p0:9" and dead["raw"].encode() == body
    assert dead["reason"].startswith("gave up after 6 attempt(s)") and "not finished" in dead["reason"]
    assert "503" in dead["reason"]                    # the destination's refusal of the first chunk too
