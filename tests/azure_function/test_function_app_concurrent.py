"""Two invocations of one worker at once (the Python worker runs functions on a thread pool: Event Hub partitions,
HTTP requests) share the worker's one Sentinel sink (real azure-monitor-ingestion / azure-identity clients, the
Sentinel TLS contract server). The sink batches: what one invocation's send() buffers, another's flush() posts,
and reports its outcome. Before, the other invocation's events were reported to the wrong one: the first found
its own report empty ("the destination accounted for 0 of 1 events") and raised for a retry, so its events
were ingested twice (the Logs Ingestion API does not deduplicate), and on the last retry dead-lettered although
delivered. Now one invocation at a time uses the sink.

The interleaving is forced: each invocation's send() (the real one) is followed by a wait until the other has
sent too, bounded so that invocations that cannot overlap simply go on."""
from __future__ import annotations

import json
import threading

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: F401  (fixtures)
from test_function_app import DCR, Context, Out, app, fresh, hub_event  # noqa: F401  (fixture)

OVERLAP_WAIT = 3.0


def test_two_invocations_at_once_each_deliver_their_own_events_once(app, sentinel, samples):
    fn = app.eventhub_to_sentinel.build().get_user_function()
    first, second = fresh(samples["alert-sample"]), fresh(samples["incident-sample"])
    sink = app.relay()                                      # the worker's one sink, opened by the first call
    real_send = sink.send
    sent = {first["id"]: threading.Event(), second["id"]: threading.Event()}

    def send(events):
        report = real_send(events)
        mine = {e["id"] for e in events} & set(sent)
        for event_id in mine:
            sent[event_id].set()
        for event_id in set(sent) - mine:
            sent[event_id].wait(OVERLAP_WAIT)               # the other invocation sends before this one flushes
        return report

    sink.send = send
    outcomes: dict[str, object] = {}

    def invoke(event: dict, seq: int, out: Out) -> None:
        try:
            fn(events=[hub_event(json.dumps(event).encode(), seq)], deadletter=out, context=Context(5, 5))
            outcomes[event["id"]] = "settled"
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            outcomes[event["id"]] = exc

    outs = [Out(), Out()]
    other = threading.Thread(target=invoke, args=(second, 2, outs[1]))
    other.start()
    invoke(first, 1, outs[0])
    other.join(30)
    assert outcomes == {first["id"]: "settled", second["id"]: "settled"}
    rows = sentinel.state.rows[(DCR, "Custom-WIASecurity")]
    assert sorted(r["EventId"] for r in rows) == sorted([first["id"], second["id"]])    # each once
    assert [o.records() for o in outs] == [[], []]          # before: one dead-lettered although delivered


def test_an_invocation_that_cannot_have_the_sink_in_time_retries_or_keeps_every_value(app, sentinel, samples,
                                                                                        monkeypatch):
    """Another invocation holding the sink past this one's budget: nothing is lost waiting for it. Event Hub: the
    batch is retried, and on the last retry dead-lettered whole; HTTP: 503 naming every value."""
    monkeypatch.setenv("WIA_TIME_BUDGET", "0.3")
    monkeypatch.setattr(app, "HTTP_TIME_BUDGET", 0.3)
    hub = app.eventhub_to_sentinel.build().get_user_function()
    http = app.http_to_sentinel.build().get_user_function()
    event = fresh(samples["alert-sample"])
    body = json.dumps(event).encode()
    app.relay()
    with app._SINK_IN_USE:                                  # another invocation of this worker delivering
        try:
            hub(events=[hub_event(body, 3)], deadletter=Out(), context=Context(0, 5))
            raise AssertionError("the batch was not retried")
        except RuntimeError as exc:
            assert "must be retried" in str(exc)
        last = Out()
        hub(events=[hub_event(body, 3)], deadletter=last, context=Context(5, 5))
        import azure.functions as func
        answer = http(req=func.HttpRequest("POST", "/api/events", body=body), deadletter=Out())
    [dead] = last.records()
    assert dead["raw"].encode() == body and "in use by another invocation" in dead["reason"]
    assert answer.status_code == 503 and json.loads(answer.get_body())["retry"] == [0]
    assert sentinel.state.all_rows() == []
