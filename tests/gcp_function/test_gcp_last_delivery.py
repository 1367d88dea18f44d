"""Pub/Sub redelivery through the Cloud Function (functions_framework's test client, the real SCC client
against the gRPC contract server): with the subscription's dead-letter policy known
(`WIA_PUBSUB_MAX_DELIVERY_ATTEMPTS`, and Pub/Sub's `deliveryAttempt` in the push envelope), a message
still failing on its last attempt is dead-lettered with the reason and acknowledged, and a rejection is
logged once however often the message comes back. For N values in, delivered + dead-lettered == N."""
from __future__ import annotations

import copy
import json

import grpc
import pytest

from servers.scc_grpc import scc, scc_server  # noqa: F401  (fixtures)
from test_gcp_main import client, configured, dead_letters, finding_ids, fresh, structured  # noqa: F401  (fixture)

MAX_ATTEMPTS = 5
HEADERS = {"Content-Type": "application/cloudevents+json"}


def attempt(payload: bytes, message_id: str, delivery_attempt: int | None) -> dict:
    cloud_event = structured(payload, message_id)
    if delivery_attempt is not None:          # set by Pub/Sub only for a subscription with a dead-letter policy
        cloud_event["data"]["deliveryAttempt"] = delivery_attempt
    return cloud_event


def invalid(event: dict) -> dict:
    broken = copy.deepcopy(event)
    del broken["data"]["title"]
    return broken


def test_the_last_delivery_attempt_dead_letters_with_the_reason_once(configured, samples, capsys, monkeypatch):
    server, _ = configured
    monkeypatch.setenv("WIA_PUBSUB_MAX_DELIVERY_ATTEMPTS", str(MAX_ATTEMPTS))
    bad, flaky = invalid(fresh(samples["alert-sample"])), fresh(samples["incident-sample"])
    payload = (json.dumps(bad) + "\n" + json.dumps(flaky) + "\n").encode()
    server.state.fail_next(grpc.StatusCode.UNAVAILABLE, times=1000)
    fn = client("pubsub_to_scc", "cloudevent")
    statuses = []
    for n in range(1, MAX_ATTEMPTS + 1):
        statuses.append(fn.post("/", json=attempt(payload, "5005", n), headers=HEADERS).status_code)
        if n < MAX_ATTEMPTS:
            assert dead_letters(capsys.readouterr().out) == []          # held back: the message comes back
    assert statuses == [500] * (MAX_ATTEMPTS - 1) + [200]              # acknowledged on the last attempt
    dead = dead_letters(capsys.readouterr().out)
    assert finding_ids(server) == set() and len(dead) == 2             # 0 delivered + 2 dead-lettered == 2
    by_id = {d["event"]["id"]: d for d in dead}
    assert by_id[bad["id"]]["reason"].startswith("invalid: /data")
    gave_up = by_id[flaky["id"]]
    assert gave_up["reason"].startswith(f"gave up on delivery attempt {MAX_ATTEMPTS} "
                                        f"(WIA_PUBSUB_MAX_DELIVERY_ATTEMPTS={MAX_ATTEMPTS}")
    assert "UNAVAILABLE" in gave_up["reason"] and gave_up["sink"] == "scc"
    assert gave_up["where"] == "pubsub:5005:2"            # the message and the line that carried the event
    assert len({d["dead_letter_id"] for d in dead}) == 2


def test_a_message_that_recovers_logs_its_rejection_once(configured, samples, capsys, monkeypatch):
    server, _ = configured
    monkeypatch.setenv("WIA_PUBSUB_MAX_DELIVERY_ATTEMPTS", str(MAX_ATTEMPTS))
    bad, good = invalid(fresh(samples["alert-sample"])), fresh(samples["alert-sample"])
    payload = (json.dumps(bad) + "\n" + json.dumps(good) + "\n").encode()
    server.state.fail_next(grpc.StatusCode.UNAVAILABLE, times=2)         # both attempts of the first delivery
    fn = client("pubsub_to_scc", "cloudevent")
    assert fn.post("/", json=attempt(payload, "6006", 1), headers=HEADERS).status_code == 500
    assert fn.post("/", json=attempt(payload, "6006", 2), headers=HEADERS).status_code == 200
    dead = dead_letters(capsys.readouterr().out)
    assert finding_ids(server) == {good["id"]} and [d["event"]["id"] for d in dead] == [bad["id"]]


def test_a_message_arriving_first_on_its_last_attempt_dead_letters_each_event(configured, samples, capsys,
                                                                              monkeypatch):
    """Only the last attempt is seen (earlier ones went to another instance): every event the destination
    refused is dead-lettered on its own with the reason, and the message is acknowledged."""
    server, _ = configured
    monkeypatch.setenv("WIA_PUBSUB_MAX_DELIVERY_ATTEMPTS", str(MAX_ATTEMPTS))
    events = [fresh(samples["alert-sample"]) for _ in range(2)]
    payload = ("\n".join(json.dumps(e) for e in events) + "\n").encode()
    server.state.fail_next(grpc.StatusCode.UNAVAILABLE, times=1000)
    response = client("pubsub_to_scc", "cloudevent").post("/", json=attempt(payload, "7007", MAX_ATTEMPTS),
                                                          headers=HEADERS)
    assert response.status_code == 200
    dead = dead_letters(capsys.readouterr().out)
    assert sorted(d["event"]["id"] for d in dead) == sorted(e["id"] for e in events)
    assert all(d["reason"].startswith("gave up on delivery attempt 5") for d in dead)


def test_without_a_dead_letter_policy_each_redelivery_logs_the_same_dead_letter(configured, samples, capsys):
    """The exact behaviour with no dead-letter policy (no `deliveryAttempt`: no last attempt to wait
    for): each delivery logs the rejection, each time with the same `dead_letter_id`, so a log query
    can count it once."""
    server, _ = configured
    bad, flaky = invalid(fresh(samples["alert-sample"])), fresh(samples["incident-sample"])
    payload = (json.dumps(bad) + "\n" + json.dumps(flaky) + "\n").encode()
    server.state.fail_next(grpc.StatusCode.UNAVAILABLE, times=1000)
    fn = client("pubsub_to_scc", "cloudevent")
    assert [fn.post("/", json=attempt(payload, "8008", None), headers=HEADERS).status_code for _ in range(3)] == [500] * 3
    dead = dead_letters(capsys.readouterr().out)
    assert [d["event"]["id"] for d in dead] == [bad["id"]] * 3
    assert len({d["dead_letter_id"] for d in dead}) == 1


def test_a_bad_max_delivery_attempts_setting_is_refused(configured, samples, monkeypatch):
    monkeypatch.setenv("WIA_PUBSUB_MAX_DELIVERY_ATTEMPTS", "3")          # Pub/Sub allows 5 to 100
    response = client("pubsub_to_scc", "cloudevent").post(
        "/", json=attempt(json.dumps(fresh(samples["alert-sample"])).encode(), "9009", 1), headers=HEADERS)
    assert response.status_code == 500


@pytest.fixture(autouse=True)
def _no_leftover_setting(monkeypatch):
    monkeypatch.delenv("WIA_PUBSUB_MAX_DELIVERY_ATTEMPTS", raising=False)
