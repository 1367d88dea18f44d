"""Cloud Function: functions_framework's own test clients with real CloudEvent payloads (Pub/Sub
messagePublished, structured and binary content modes) and HTTP requests, delivering through the
real google-cloud-securitycenter client to the in-process gRPC contract server (tests/servers/scc_grpc.py)."""
from __future__ import annotations

import base64
import copy
import gzip
import json
import uuid
from pathlib import Path

import pytest

functions_framework = pytest.importorskip("functions_framework", reason="the gcp extra is not installed")

import grpc  # noqa: E402
from servers.scc_grpc import scc, scc_server  # noqa: E402,F401

from wia_security import validate_event  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "gcp_function" / "main.py"
TOPIC = "//pubsub.googleapis.com/projects/demo-proj/topics/wia-events"


@pytest.fixture
def configured(scc, monkeypatch):
    source = scc.create_source()
    monkeypatch.setenv("WIA_CONFIG", f'[destinations.scc]\nurl = "scc://{source}"\nendpoint = "{scc.endpoint}"\n'
                                     f'ca_file = "{scc.ca_file}"\nauth = "anonymous"\n'
                                     '[delivery]\nmax_attempts = 2\ninitial_backoff = 0.001\n')
    return scc, source


def client(target: str, signature: str):
    app = functions_framework.create_app(target=target, source=str(MAIN), signature_type=signature)
    return app.test_client()


def pubsub_data(payload: bytes, message_id: str) -> dict:
    return {"message": {"data": base64.b64encode(payload).decode(), "messageId": message_id,
                        "message_id": message_id, "publishTime": "2025-12-14T09:30:00.000Z",
                        "attributes": {"origin": "siem"}},
            "subscription": "projects/demo-proj/subscriptions/eventarc-us-central1-wia-sub"}


def structured(payload: bytes, message_id: str) -> dict:
    return {"specversion": "1.0", "type": "google.cloud.pubsub.topic.v1.messagePublished", "source": TOPIC,
            "id": message_id, "time": "2025-12-14T09:30:00.000Z", "datacontenttype": "application/json",
            "data": pubsub_data(payload, message_id)}


def binary_headers(message_id: str) -> dict:
    return {"ce-specversion": "1.0", "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
            "ce-source": TOPIC, "ce-id": message_id, "ce-time": "2025-12-14T09:30:00.000Z",
            "Content-Type": "application/json"}


def fresh(event: dict) -> dict:
    event = copy.deepcopy(validate_event(event, lenient=True).event)
    event["id"] = str(uuid.uuid4())
    return event


def finding_ids(server) -> set[str]:
    return {f.source_properties["wia_event_id"] for f in server.state.findings.values()}


def dead_letters(out: str) -> list[dict]:
    entries = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [e["wia_dead_letter"] for e in entries if "wia_dead_letter" in e]


def test_pubsub_structured_cloudevent_creates_findings(configured, samples, capsys):
    server, _ = configured
    events = [fresh(samples["alert-sample"]), fresh(samples["vulnerability-sample"])]
    payload = gzip.compress("\n".join(json.dumps(e) for e in events).encode() + b"\n{bad json\n")
    response = client("pubsub_to_scc", "cloudevent").post(
        "/", json=structured(payload, "1001"), headers={"Content-Type": "application/cloudevents+json"})
    assert response.status_code == 200, response.data
    assert finding_ids(server) == {e["id"] for e in events}
    dead = dead_letters(capsys.readouterr().out)
    assert len(dead) == 1 and dead[0]["where"] == "pubsub:1001:3" and dead[0]["raw"] == "{bad json"


def test_pubsub_binary_cloudevent(configured, samples):
    server, _ = configured
    event = fresh(samples["incident-sample"])
    response = client("pubsub_to_scc", "cloudevent").post(
        "/", data=json.dumps(pubsub_data(json.dumps(event).encode(), "2002")), headers=binary_headers("2002"))
    assert response.status_code == 200, response.data
    assert finding_ids(server) == {event["id"]}


def test_pubsub_retryable_failure_is_a_500_for_redelivery(configured, samples):
    server, _ = configured
    server.state.fail_next(grpc.StatusCode.UNAVAILABLE, times=10)
    event = fresh(samples["alert-sample"])
    response = client("pubsub_to_scc", "cloudevent").post(
        "/", json=structured(json.dumps(event).encode(), "3003"), headers={"Content-Type": "application/cloudevents+json"})
    assert response.status_code == 500                   # Pub/Sub redelivers (retry enabled on the trigger)
    server.state.faults.clear()
    response = client("pubsub_to_scc", "cloudevent").post(
        "/", json=structured(json.dumps(event).encode(), "3003"), headers={"Content-Type": "application/cloudevents+json"})
    assert response.status_code == 200 and finding_ids(server) == {event["id"]}


def test_http_function_answers_per_value(configured, samples):
    server, _ = configured
    good = [fresh(samples["auth-event-sample"]), fresh(samples["endpoint-event-sample"])]
    body = json.dumps([good[0], {"type": "alert"}, good[1]])
    http = client("http_to_scc", "http")
    response = http.post("/", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.data
    answer = response.get_json()
    assert answer["accepted"] == 2 and answer["delivered"] == 2 and [r["index"] for r in answer["rejected"]] == [1]
    assert finding_ids(server) == {g["id"] for g in good}
    assert http.get("/").status_code == 405
    server.state.fail_next(grpc.StatusCode.UNAVAILABLE, times=10)
    retry = http.post("/", data=json.dumps(fresh(samples["alert-sample"])), headers={"Content-Type": "application/json"})
    assert retry.status_code == 503 and retry.headers["Retry-After"] == "5" and retry.get_json()["retry"] == [0]


def test_logs_are_structured_for_cloud_logging(configured, samples, capsys):
    event = fresh(samples["alert-sample"])
    client("pubsub_to_scc", "cloudevent").post(
        "/", json=structured(json.dumps(event).encode(), "4004"), headers={"Content-Type": "application/cloudevents+json"})
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    processed = [e for e in entries if e["message"] == "message processed"][0]
    assert processed["severity"] == "INFO" and processed["message_id"] == "4004" and processed["events"] == 1


CORRUPT_GZIP = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-garbage-garbage"


def test_pubsub_poison_gzip_is_dead_lettered_and_acknowledged(configured, capsys):
    # zlib.error escaped before: the function failed and Pub/Sub redelivered the message forever.
    response = client("pubsub_to_scc", "cloudevent").post(
        "/", json=structured(CORRUPT_GZIP, "4004"), headers={"Content-Type": "application/cloudevents+json"})
    assert response.status_code == 200, response.data
    [dead] = dead_letters(capsys.readouterr().out)
    assert dead["where"] == "pubsub:4004:1" and "corrupt gzip data before the first line" in dead["reason"]


def test_pubsub_gzip_cut_short_delivers_its_whole_lines_and_dead_letters_the_torn_one(configured, samples, capsys):
    server, _ = configured
    events = [fresh(samples["alert-sample"]) for _ in range(3)]
    cut = gzip.compress("\n".join(json.dumps(e) for e in events).encode())[:-12]   # into the last line
    response = client("pubsub_to_scc", "cloudevent").post(
        "/", json=structured(cut, "5005"), headers={"Content-Type": "application/cloudevents+json"})
    assert response.status_code == 200, response.data                   # acknowledged: retrying cannot mend it
    assert finding_ids(server) == {e["id"] for e in events[:2]}
    [dead] = dead_letters(capsys.readouterr().out)
    assert dead["where"] == "pubsub:5005:3"
    assert "the gzip stream is truncated in line 3 of pubsub:5005" in dead["reason"]
    assert json.dumps(events[2]).startswith(dead["raw"]) and len(dead["raw"]) > 100


def test_http_gzip_bodies_that_cannot_be_unpacked_are_400_and_a_bomb_is_413(configured):
    http = client("http_to_scc", "http")
    assert http.post("/", data=CORRUPT_GZIP).status_code == 400
    bomb = gzip.compress(b"\0" * (65 * 1024 * 1024), compresslevel=9)
    response = http.post("/", data=bomb)
    assert response.status_code == 413 and "inflates beyond" in response.get_json()["error"]


def test_log_lines_mask_known_secrets_in_tracebacks_too(capsys):
    """The function's Cloud Logging formatter writes tracebacks itself: a secret quoted by an exception (a
    server's answer echoing a credential) is masked there as in the record's message."""
    import importlib.util
    import logging

    from wia_security.redact import MASK, remember

    spec = importlib.util.spec_from_file_location("wia_gcp_main_for_logging", MAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    secret = f"scc-secret-{uuid.uuid4().hex[:12]}"
    remember(secret)
    try:
        raise RuntimeError(f"server said: Authorization: Bearer {secret}")
    except RuntimeError:
        record = logging.getLogger("t").makeRecord("t", logging.ERROR, __file__, 1, "delivery failed", (), None,
                                                   extra={"detail": f"token {secret}"})
        import sys
        record.exc_info = sys.exc_info()
    line = module._CloudLoggingFormatter().format(record)
    entry = json.loads(line)
    assert secret not in line and MASK in entry["exception"] and MASK in entry["detail"]
    assert "RuntimeError: server said: Authorization: Bearer" in entry["exception"]


def test_log_lines_mask_a_secret_that_json_escapes_differently(capsys):
    """The line is written with ensure_ascii=False and was masked after json.dumps: a secret holding both a quote (or
    a backslash) and a character outside ASCII is escaped there as neither of the core's forms (as written, or
    JSON-escaped with \\u escapes), so an exception quoting it reached Cloud Logging (helper 75, review)."""
    import importlib.util
    import logging

    from wia_security.redact import MASK, remember

    spec = importlib.util.spec_from_file_location("wia_gcp_main_for_logging_escapes", MAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    secret = f'sécret"{uuid.uuid4().hex[:10]}'
    remember(secret)
    try:
        raise RuntimeError(f"server said: token {secret} refused")
    except RuntimeError:
        record = logging.getLogger("t").makeRecord("t", logging.ERROR, __file__, 1, "delivery failed", (), None,
                                                   extra={"detail": f"token {secret}"})
        import sys
        record.exc_info = sys.exc_info()
    entry = json.loads(module._CloudLoggingFormatter().format(record))
    assert secret not in entry["exception"] and f"token {MASK} refused" in entry["exception"], entry["exception"]
    assert secret not in entry["detail"] and entry["detail"] == f"token {MASK}"
