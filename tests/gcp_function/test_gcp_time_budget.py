"""The functions' time budget (WIA_TIME_BUDGET, default 120 s of the deploy's --timeout=540): a request starts no
new delivery after it, so a message too big for the timeout is not cut off by the platform on every delivery (and
moved to the dead-letter topic with no reason on record). Values not started are retried; on the last delivery
attempt the message is dead-lettered whole with the reason; the HTTP function answers 503 naming them.
functions_framework's test client, the real SCC client, the gRPC contract server; the first chunk's findings are
refused (UNAVAILABLE with a 1 s RetryInfo) past a 0.5 s budget."""
from __future__ import annotations

import json

import grpc

from servers.scc_grpc import scc, scc_server  # noqa: F401  (fixtures)
from test_gcp_last_delivery import HEADERS, MAX_ATTEMPTS, attempt
from test_gcp_main import client, configured, dead_letters, finding_ids, fresh  # noqa: F401  (fixture)

CHUNK = 100                                   # the function's CHUNK_EVENTS


def test_a_message_too_big_for_its_budget_is_retried_then_dead_lettered_whole(configured, samples, capsys,
                                                                             monkeypatch):
    server, _ = configured
    monkeypatch.setenv("WIA_PUBSUB_MAX_DELIVERY_ATTEMPTS", str(MAX_ATTEMPTS))
    monkeypatch.setenv("WIA_TIME_BUDGET", "0.5")
    events = [fresh(samples["network-event-sample"]) for _ in range(CHUNK + 50)]
    payload = ("\n".join(json.dumps(e) for e in events) + "\n").encode()
    server.state.fail_next(grpc.StatusCode.UNAVAILABLE, times=2 * CHUNK, retry_delay=1)   # both tries of chunk 1
    fn = client("pubsub_to_scc", "cloudevent")
    assert fn.post("/", json=attempt(payload, "41", 1), headers=HEADERS).status_code == 500
    assert finding_ids(server) == set()       # before: the 50 events after the first chunk were still sent
    assert dead_letters(capsys.readouterr().out) == []
    server.state.fail_next(grpc.StatusCode.UNAVAILABLE, times=2 * CHUNK, retry_delay=1)
    assert fn.post("/", json=attempt(payload, "41", MAX_ATTEMPTS), headers=HEADERS).status_code == 200
    parts = dead_letters(capsys.readouterr().out)       # over a LogEntry's size: written in parts
    assert [p["part"] for p in parts] == list(range(1, parts[0]["parts"] + 1))
    dead = json.loads("".join(p["record_part"] for p in parts))
    assert dead["where"] == "pubsub:41" and dead["raw"] == payload.decode()
    assert "not finished: within the request's 0.5s budget" in dead["reason"] and "UNAVAILABLE" in dead["reason"]


def test_the_http_function_answers_503_for_values_not_started_within_its_budget(configured, samples, monkeypatch):
    server, _ = configured
    monkeypatch.setenv("WIA_TIME_BUDGET", "0.5")
    events = [fresh(samples["network-event-sample"]) for _ in range(CHUNK + 5)]
    server.state.fail_next(grpc.StatusCode.UNAVAILABLE, times=2 * CHUNK, retry_delay=1)
    response = client("http_to_scc", "http").post("/", data=json.dumps(events),
                                                  headers={"Content-Type": "application/json"})
    assert response.status_code == 503
    assert response.get_json()["retry"] == list(range(CHUNK + 5))       # the first chunk refused, the rest not started
    assert finding_ids(server) == set()
