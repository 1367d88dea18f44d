"""Two requests of one instance at once (functions-framework serves on gunicorn threads; Cloud Run functions take
more than one request per instance when `--concurrency` is raised) share the instance's one relay and SCC sink
(functions_framework's test client, the real SCC client, the gRPC contract server).

The relay keeps which records hold their rejections back (`process(hold_back=)`) on itself while it runs. Before,
a message on its last delivery attempt, processed while a message on an earlier attempt was under way, took the
other's hold-back: its invalid event was held back instead of dead-lettered, its refused event was given up, and
the message was acknowledged, so the invalid event was lost with nothing on record. Now one request at a time uses
the relay and the sink.

The interleaving is forced on the sink's send(): the last-attempt message, once sent, waits (bounded) for the
other to reach send(); the other waits there until the first has been answered."""
from __future__ import annotations

import json
import sys
import threading

import grpc
import pytest

from servers.scc_grpc import scc, scc_server  # noqa: F401  (fixtures)
from test_gcp_last_delivery import HEADERS, MAX_ATTEMPTS, attempt, invalid
from test_gcp_main import MAIN, configured, dead_letters, fresh  # noqa: F401  (fixture)

functions_framework = pytest.importorskip("functions_framework", reason="the gcp extra is not installed")

OVERLAP_WAIT = 3.0


def test_a_last_attempt_beside_an_earlier_one_dead_letters_every_value(configured, samples, capsys, monkeypatch):
    server, _ = configured
    monkeypatch.setenv("WIA_PUBSUB_MAX_DELIVERY_ATTEMPTS", str(MAX_ATTEMPTS))
    bad, flaky, other = invalid(fresh(samples["alert-sample"])), fresh(samples["incident-sample"]), \
        fresh(samples["alert-sample"])
    last_payload = (json.dumps(bad) + "\n" + json.dumps(flaky) + "\n").encode()
    server.state.fail_next(grpc.StatusCode.UNAVAILABLE, times=1000)
    app = functions_framework.create_app(target="pubsub_to_scc", source=str(MAIN), signature_type="cloudevent")
    module = sys.modules["main"]
    sink = module.sink()                                     # the instance's one sink
    real_send = sink.send
    last_sent, other_in_send, last_answered = threading.Event(), threading.Event(), threading.Event()

    def send(events):
        ids = {e["id"] for e in events}
        if other["id"] in ids:
            other_in_send.set()
            last_answered.wait(OVERLAP_WAIT)
            return real_send(events)
        report = real_send(events)
        last_sent.set()
        other_in_send.wait(OVERLAP_WAIT)
        return report

    sink.send = send
    statuses: dict[str, int] = {}

    def earlier() -> None:
        last_sent.wait(OVERLAP_WAIT)
        statuses["earlier"] = app.test_client().post(
            "/", json=attempt(json.dumps(other).encode(), "2", 1), headers=HEADERS).status_code

    thread = threading.Thread(target=earlier)
    thread.start()
    statuses["last"] = app.test_client().post("/", json=attempt(last_payload, "1", MAX_ATTEMPTS),
                                              headers=HEADERS).status_code
    last_answered.set()
    thread.join(30)
    assert statuses == {"last": 200, "earlier": 500}        # acknowledged; redelivered
    dead = dead_letters(capsys.readouterr().out)
    # before: only the flaky event; the invalid one was held back for a redelivery that never comes
    assert sorted(d["event"]["id"] for d in dead) == sorted([bad["id"], flaky["id"]])
    assert all(d["where"].startswith("pubsub:1:") for d in dead)


def test_a_request_that_cannot_have_the_sink_in_time_is_retried_or_kept_whole(configured, samples, capsys,
                                                                            monkeypatch):
    """Another request holding the sink past this one's budget (WIA_TIME_BUDGET): nothing is lost waiting for it. Pub/Sub: 500
    (redelivered), and on the last attempt the message dead-lettered whole and acknowledged; HTTP: 503 naming
    every value."""
    server, _ = configured
    monkeypatch.setenv("WIA_PUBSUB_MAX_DELIVERY_ATTEMPTS", str(MAX_ATTEMPTS))
    monkeypatch.setenv("WIA_TIME_BUDGET", "0.3")
    event = fresh(samples["alert-sample"])
    payload = json.dumps(event).encode()
    answers = []
    for target, signature in (("pubsub_to_scc", "cloudevent"), ("http_to_scc", "http")):
        app = functions_framework.create_app(target=target, source=str(MAIN), signature_type=signature)
        module = sys.modules["main"]
        with module._SINK_IN_USE:                           # another request of this instance delivering
            http = app.test_client()
            if target == "http_to_scc":
                answers.append(http.post("/", data=payload, headers={"Content-Type": "application/json"}))
            else:
                answers += [http.post("/", json=attempt(payload, "3", n), headers=HEADERS) for n in (1, MAX_ATTEMPTS)]
    assert [a.status_code for a in answers] == [500, 200, 503]
    assert answers[2].get_json()["retry"] == [0]
    [dead] = dead_letters(capsys.readouterr().out)
    assert dead["where"] == "pubsub:3" and dead["raw"] == payload.decode()
    assert "in use by another request" in dead["reason"]
    assert server.state.findings == {}
