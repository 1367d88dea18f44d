"""The Azure Function under hostile input: an Event Hub batch with empty, non-UTF-8, non-event and poison
events among good ones, and empty HTTP bodies. Each poison event is dead-lettered with the reason (the
batch is not re-run for it), and delivered + dead-lettered == the values received, also on the last
retry of a batch whose destination keeps failing."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("azure.functions", reason="the azure extra is not installed")

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: E402,F401  (fixtures)
from test_function_app import DCR, FUNCTION_DIR, Context, Out, app, fresh, hub_event  # noqa: E402,F401  (fixtures)

import azure.functions as func  # noqa: E402


def test_an_empty_event_hub_event_is_dead_lettered_not_skipped(app, sentinel, samples):
    # before: an empty body carried no values, so the event vanished with no record of it
    fn = app.eventhub_to_sentinel.build().get_user_function()
    good = fresh(samples["alert-sample"])
    out = Out()
    fn(events=[hub_event(json.dumps(good).encode(), 1), hub_event(b"", 2), hub_event(b" \n ", 3)],
       deadletter=out, context=Context())
    assert [r["EventId"] for r in sentinel.state.rows[(DCR, "Custom-WIASecurity")]] == [good["id"]]
    dead = out.records()
    assert [d["where"] for d in dead] == ["eventhub:p0:2:0", "eventhub:p0:3:0"]
    assert all("the Event Hub event has no body" in d["reason"] for d in dead)


def test_a_hostile_batch_adds_up_on_the_first_try_and_on_the_last_retry(app, sentinel, samples):
    fn = app.eventhub_to_sentinel.build().get_user_function()
    goods = [fresh(samples["network-event-sample"]) for _ in range(3)]
    flaky = fresh(samples["incident-sample"])
    bodies = [json.dumps(goods[0]).encode(), b"\xff\xfe not utf-8", b"42", b"[]", b"{}",
              json.dumps(goods[1]).encode(), b"[" * 3000 + b"]" * 3000, json.dumps(goods[2]).encode()]
    events = [hub_event(body, seq) for seq, body in enumerate(bodies)]
    out = Out()
    fn(events=events, deadletter=out, context=Context())
    rows = sentinel.state.rows[(DCR, "Custom-WIASecurity")]
    assert sorted(r["EventId"] for r in rows) == sorted(g["id"] for g in goods)
    dead = out.records()
    # "[]" carries no value; every other hostile body is one dead letter naming its event
    assert [d["where"].rsplit(":", 1)[0] for d in dead] == ["eventhub:p0:1", "eventhub:p0:2", "eventhub:p0:4",
                                                            "eventhub:p0:6"]
    assert len(rows) + len(dead) == 7

    # the destination now fails the flaky event retryably every time: on the last allowed retry the
    # batch is settled anyway, the failure dead-lettered with the reason, nothing lost and nothing raised
    sentinel.reset()
    sentinel.state.fail_next(503, times=100, retry_after="0")
    out = Out()
    fn(events=[hub_event(json.dumps(flaky).encode(), 10), hub_event(b"{bad", 11)], deadletter=out,
       context=Context(5, 5))
    dead = out.records()
    assert sorted(d["where"] for d in dead) == ["eventhub:p0:10:1", "eventhub:p0:11:1"]     # each value's own place
    gave_up = next(d for d in dead if d["where"] == "eventhub:p0:10:1")
    assert gave_up["event"]["id"] == flaky["id"] and gave_up["reason"].startswith("gave up after 6 attempt(s)")


@pytest.mark.parametrize("body", [b"", b"   \n\t"])
def test_an_empty_http_body_is_400_not_an_empty_success(app, sentinel, body):
    # before: 200 {"accepted": 0, ...}, as if the events had been taken
    fn = app.http_to_sentinel.build().get_user_function()
    response = fn(req=func.HttpRequest(method="POST", url="/api/events", body=body), deadletter=Out())
    assert response.status_code == 400 and "empty body" in json.loads(response.get_body())["error"]
    assert sentinel.state.all_rows() == []


def test_a_destination_echoing_the_access_token_never_leaks_it(app, sentinel, samples, caplog):
    """The managed identity's bearer token, quoted back by the service in a permanent refusal, reaches
    neither the HTTP answer, the dead-letter blob nor the logs."""
    token = sentinel.state.token
    sentinel.state.faults.append((400, {}, {"error": {"code": "InvalidToken",
                                                      "message": f"Authorization 'Bearer {token}' is not valid"}}))
    fn = app.http_to_sentinel.build().get_user_function()
    out = Out()
    caplog.set_level("DEBUG")
    response = fn(req=func.HttpRequest(method="POST", url="/api/events",
                                       body=json.dumps(fresh(samples["alert-sample"])).encode()), deadletter=out)
    answer = json.loads(response.get_body())
    assert response.status_code == 200 and answer["dead_lettered"] == 1
    assert "InvalidToken" in answer["rejected"][0]["reason"]           # the service's words are kept ...
    for text in (response.get_body().decode(), out.value, caplog.text):
        assert token not in text                                        # ... without the credential


def test_events_not_started_within_the_budget_are_retried_then_dead_lettered_with_their_bodies(
        app, sentinel, samples, monkeypatch):
    """A budget already spent (a destination that was slow on earlier events): nothing more is started.
    Before the last retry the batch is retried; on it, each event not started is dead-lettered with its
    body, so the checkpoint moving on loses nothing. Before, the function ignored time: the host killed
    a slow invocation, and on the last retry nothing was on record."""
    monkeypatch.setenv("WIA_TIME_BUDGET", "0")
    fn = app.eventhub_to_sentinel.build().get_user_function()
    bodies = [json.dumps(fresh(samples["alert-sample"])).encode() for _ in range(3)]
    events = [hub_event(body, seq) for seq, body in enumerate(bodies)]
    with pytest.raises(RuntimeError, match="3 event\\(s\\) must be retried"):
        fn(events=events, deadletter=Out(), context=Context(0, 5))
    out = Out()
    fn(events=events, deadletter=out, context=Context(5, 5))
    assert sentinel.state.all_rows() == []
    dead = out.records()
    assert [d["where"] for d in dead] == ["eventhub:p0:0", "eventhub:p0:1", "eventhub:p0:2"]
    assert all("within the invocation's 0s budget" in d["reason"] for d in dead)
    assert [d["raw"].encode() for d in dead] == bodies


def test_the_time_budget_fits_the_function_timeout(monkeypatch):
    """host.json's functionTimeout covers the budget plus the worst case of the chunk delivery under way."""
    from pathlib import Path

    # its own import path: it passed only after a test whose `app` fixture had imported function_app
    monkeypatch.syspath_prepend(str(FUNCTION_DIR))
    import function_app as fa
    from wia_security.connectors.azure.sentinel import DEFAULT_TIMEOUT, MAX_REQUEST_BYTES
    host = json.loads((Path(fa.__file__).parent / "host.json").read_text())
    hours, minutes, seconds = (int(x) for x in host["functionTimeout"].split(":"))
    function_timeout = hours * 3600 + minutes * 60 + seconds
    one_chunk = fa.FUNCTION_DELIVERY["max_elapsed"] + DEFAULT_TIMEOUT   # retries, then a last attempt that hangs
    assert fa.CHUNK_EVENTS * 10_000 <= MAX_REQUEST_BYTES      # 100 events of up to ~10 KB: one request
    assert fa.DEFAULT_TIME_BUDGET + one_chunk + 30 <= function_timeout
