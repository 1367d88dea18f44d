"""The Cloud Function under hostile input: Pub/Sub CloudEvents whose envelope is not a Pub/Sub message,
messages without data or with data that is not base64, and empty HTTP bodies. A poison message is
dead-lettered with the reason and acknowledged (200), never nacked (500) into endless redelivery; an
empty HTTP body is a 400."""
from __future__ import annotations

import base64
import json

import pytest

pytest.importorskip("functions_framework", reason="the gcp extra is not installed")

from servers.scc_grpc import scc, scc_server  # noqa: E402,F401  (fixtures)
from test_gcp_main import TOPIC, client, configured, dead_letters, finding_ids, fresh  # noqa: E402,F401


def cloudevent(data, message_id: str = "ce-77") -> dict:
    return {"specversion": "1.0", "type": "google.cloud.pubsub.topic.v1.messagePublished", "source": TOPIC,
            "id": message_id, "time": "2025-12-14T09:30:00.000Z", "datacontenttype": "application/json",
            "data": data}


POISON = [
    # before: AttributeError/TypeError -> 500 -> Pub/Sub redelivered the message until its retention ran out
    ("a string envelope", "hello", "the CloudEvent carries no Pub/Sub message", "pubsub:ce-77:0"),
    ("a message that is not an object", {"message": "x"}, "the CloudEvent carries no Pub/Sub message", "pubsub:ce-77:0"),
    ("data that is not a string", {"message": {"messageId": "m5", "data": 5}}, "not a base64 string", "pubsub:m5:0"),
    # before: 200 with nothing recorded: the message was acknowledged and vanished
    ("no data", {"message": {"messageId": "m6", "attributes": {"a": "b"}}}, "the Pub/Sub message has no data",
     "pubsub:m6:0"),
    ("no envelope at all", None, "the CloudEvent carries no Pub/Sub message", "pubsub:ce-77:0"),
]


@pytest.mark.parametrize("name, data, says, where", POISON, ids=[p[0] for p in POISON])
def test_a_poison_pubsub_message_is_dead_lettered_and_acknowledged(configured, capsys, name, data, says, where):
    server, _ = configured
    response = client("pubsub_to_scc", "cloudevent").post(
        "/", json=cloudevent(data), headers={"Content-Type": "application/cloudevents+json"})
    assert response.status_code == 200, response.data
    (dead,) = dead_letters(capsys.readouterr().out)
    assert says in dead["reason"] and dead["where"] == where
    assert finding_ids(server) == set()


def test_a_message_of_many_values_adds_up(configured, samples, capsys):
    server, _ = configured
    goods = [fresh(samples["alert-sample"]) for _ in range(2)]
    payload = "\n".join([json.dumps(goods[0]), "42", "{}", "[" * 3000 + "]" * 3000, json.dumps(goods[1]),
                         '{"truncated": ']).encode()
    data = {"message": {"messageId": "m9", "data": base64.b64encode(payload).decode()}}
    response = client("pubsub_to_scc", "cloudevent").post(
        "/", json=cloudevent(data), headers={"Content-Type": "application/cloudevents+json"})
    assert response.status_code == 200, response.data
    out = capsys.readouterr().out
    dead = dead_letters(out)
    assert finding_ids(server) == {g["id"] for g in goods}
    assert [d["where"] for d in dead] == ["pubsub:m9:2", "pubsub:m9:3", "pubsub:m9:4", "pubsub:m9:6"]
    (summary,) = [json.loads(line) for line in out.splitlines() if '"message processed"' in line]
    assert summary["delivered"] + summary["dead_lettered"] == 6 and summary["retry"] == 0


@pytest.mark.parametrize("body", [b"", b" \n "])
def test_an_empty_http_body_is_400_not_an_empty_success(configured, body):
    # before: 200 {"accepted": 0, ...}, as if the events had been taken
    response = client("http_to_scc", "http").post("/", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "empty body" in response.get_json()["error"]


@pytest.mark.parametrize("text", ['[destinations.scc\nurl = "scc://x"', '{"destinations": '])
def test_a_config_that_is_not_toml_or_json_is_a_configuration_error_naming_the_setting(monkeypatch, capsys, text):
    """Before: tomllib's or json's own error escaped, Flask answered its HTML 500 page, and the log did not say
    which setting was wrong (the Azure Function already named it)."""
    monkeypatch.setenv("WIA_CONFIG", text)
    response = client("http_to_scc", "http").post("/", data=b'{"a": 1}', headers={"Content-Type": "application/json"})
    assert response.status_code == 500
    assert response.get_json() == {"error": "the function is misconfigured; see its logs"}
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any("WIA_CONFIG" in entry["message"] and "not TOML or JSON" in entry["message"] for entry in logged)


def test_a_partial_delivery_table_keeps_the_functions_retry_bounds(scc, monkeypatch, samples):
    """A [delivery] table giving only some keys keeps FUNCTION_DELIVERY for the rest (3 tries within 30 s): before,
    any [delivery] table replaced them all, and the policy's 6 tries within 120 s broke the time budget's worst
    case."""
    import grpc
    source = scc.create_source()
    monkeypatch.setenv("WIA_CONFIG", f'[destinations.scc]\nurl = "scc://{source}"\nendpoint = "{scc.endpoint}"\n'
                                     f'ca_file = "{scc.ca_file}"\nauth = "anonymous"\n'
                                     '[delivery]\ninitial_backoff = 0.001\nmax_backoff = 0.01\n')
    scc.state.fail_next(grpc.StatusCode.UNAVAILABLE, times=100)
    calls = len(scc.state.calls)
    response = client("http_to_scc", "http").post("/", data=json.dumps(fresh(samples["alert-sample"])),
                                                  headers={"Content-Type": "application/json"})
    assert response.status_code == 503
    assert scc.state.calls[calls:].count("CreateFinding") == 3                   # before: 6


def test_an_unreadable_time_budget_is_warned_about_and_the_default_used(configured, samples, monkeypatch, capsys):
    """Before: silently replaced by the default."""
    server, _ = configured
    monkeypatch.setenv("WIA_TIME_BUDGET", "2min")
    event = fresh(samples["alert-sample"])
    response = client("http_to_scc", "http").post("/", data=json.dumps(event), headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and finding_ids(server) == {event["id"]}
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [e["message"] for e in logged if "WIA_TIME_BUDGET" in e["message"]] == [
        "WIA_TIME_BUDGET='2min' is not a number of seconds >= 0; using the default 120 s"]
    assert all(e["severity"] == "WARNING" for e in logged if "WIA_TIME_BUDGET" in e["message"])
