"""The Lambda forwarder under hostile input, a destination that echoes its credential, and a destination
that answers slowly: poison records are dead-lettered with the reason (never reported back for retry),
secrets never reach the response, the logs or the dead letter, and a slow destination never lets Lambda
kill the function mid-batch (records not started in time are reported back, the others settled)."""
from __future__ import annotations

import copy
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import lambda_events as shapes  # noqa: E402
from lambda_events import LambdaContext  # noqa: E402
from servers.hec_contract import Fault, HecContractServer  # noqa: E402

from wia_security import validate_event  # noqa: E402

FAST = "[delivery]\nmax_attempts = 2\ninitial_backoff = 0.001\nmax_backoff = 0.01\n"
DEAD_LETTER = "sqs://sqs.us-east-1.amazonaws.com/123456789012/wia-dead-letter"


def fresh(event: dict) -> dict:
    event = copy.deepcopy(validate_event(event, lenient=True).event)
    event["id"] = str(uuid.uuid4())
    return event


@pytest.fixture
def handler(aws, monkeypatch):
    sqs = aws.client("sqs")
    queue = sqs.create_queue(QueueName="wia-dead-letter")["QueueUrl"]

    def configure(config: str):
        monkeypatch.setenv("WIA_CONFIG", FAST + config)
        monkeypatch.setenv("WIA_DEAD_LETTER", DEAD_LETTER)
        from wia_lambda import handler as module
        module.reset()
        return module.handler

    def dead_letters() -> list[dict]:
        found = []
        while got := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            for m in got:
                found.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        return found

    configure.dead_letters = dead_letters
    configure.aws = aws
    yield configure
    from wia_lambda import handler as module
    module.reset()


def archive(tmp_path: Path) -> str:
    return f'[destinations.archive]\nurl = "file://{tmp_path / "out.ndjson"}"\n'


def archived(tmp_path: Path) -> list[dict]:
    path = tmp_path / "out.ndjson"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def hand_made_sqs(bodies: list[str]) -> dict:
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": f"rh{i}", "body": body, "eventSource": "aws:sqs",
                         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:wia-ingest", "awsRegion": "us-east-1"}
                        for i, body in enumerate(bodies)]}


# -- poison records are dead-lettered, never reported back ---------------------------------------------

MALFORMED_NOTIFICATIONS = [
    # before: KeyError / TypeError while reading the record -> "could not read the record" -> reported back
    # for retry on every receive until the redrive queue took it, with no reason on record
    ({"Records": [{"eventSource": "aws:s3", "s3": {}}]}, "has no bucket name (at /Records/0/s3/bucket/name)"),
    ({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": 7}}}]}, "has no object key (at /Records/0/s3/object/key)"),
    ({"Records": [{"s3": "not an object"}]}, "is not an S3 event record (at /Records/0/s3)"),
    ({"source": "aws.s3", "detail-type": "Object Created", "detail": {"object": {"key": "k"}}},
     "has no bucket name (at /detail/bucket/name)"),
]


@pytest.mark.parametrize("notification, says", MALFORMED_NOTIFICATIONS)
def test_a_malformed_s3_notification_in_a_queue_message_is_dead_lettered_not_retried(handler, samples, tmp_path,
                                                                                      notification, says):
    run = handler(archive(tmp_path))
    good = fresh(samples["alert-sample"])
    event = hand_made_sqs([json.dumps(good), json.dumps(notification)])
    assert run(event, None) == {"batchItemFailures": []}
    (dead,) = handler.dead_letters()
    assert dead["where"].startswith("sqs:m1") and says in dead["reason"]
    # the malformed notification record itself (or the EventBridge detail), for replay after fixing
    assert json.loads(dead["raw"]) == (notification["Records"][0] if "Records" in notification else notification["detail"])
    assert dead["errors"][0]["path"] == says.rpartition("(at ")[2].rstrip(")")
    assert [e["id"] for e in archived(tmp_path)] == [good["id"]]


def test_a_malformed_direct_s3_notification_is_dead_lettered_not_raised(handler, tmp_path):
    # before: KeyError out of the handler -> Lambda's asynchronous retries, then the failure queue
    run = handler(archive(tmp_path))
    event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {}}}]}
    result = run(event, None)
    assert result["retry"] == 0 and result["dead_lettered"] == 1
    (dead,) = handler.dead_letters()
    assert "has no bucket name" in dead["reason"] and dead["where"].startswith("s3-notification/Records/0")


def test_eventbridge_object_created_without_a_bucket_is_dead_lettered(handler, tmp_path):
    run = handler(archive(tmp_path))
    event = shapes.eventbridge_event({"object": {"key": "k"}}, source="aws.s3", detail_type="Object Created")
    result = run(event, None)                                          # no RetryInvocation
    assert result["retry"] == 0 and result["dead_lettered"] == 1
    assert "has no bucket name (at /detail/bucket/name)" in handler.dead_letters()[0]["reason"]


def test_a_body_with_a_lone_surrogate_fails_one_record_not_the_batch(handler, samples, tmp_path):
    # before: UnicodeEncodeError out of the handler, so the whole batch (the good message too) came back
    run = handler(archive(tmp_path))
    good = fresh(samples["alert-sample"])
    assert run(hand_made_sqs([json.dumps(good), '{"id": "\ud800"}']), None) == {"batchItemFailures": []}
    (dead,) = handler.dead_letters()
    assert dead["where"].startswith("sqs:m1") and "not valid UTF-8" in dead["reason"]
    assert [e["id"] for e in archived(tmp_path)] == [good["id"]]


def test_a_mixed_batch_of_hostile_bodies_adds_up(handler, samples, tmp_path, capsys):
    """Every kind of hostile body in one batch: each one dead-lettered with its reason, the good ones
    delivered, nothing reported back, and delivered + dead-lettered == values received (the log's summary)."""
    run = handler(archive(tmp_path))
    goods = [fresh(samples["alert-sample"]) for _ in range(3)]
    hostile = ["42", "null", '"text"', "{}", "[" * 5000 + "]" * 5000, '{"truncated": ',
               json.dumps({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": "\udcff"}),
               "\x1f\x8b not really gzip"]
    bodies = [json.dumps(goods[0]), *hostile[:4], json.dumps(goods[1]), *hostile[4:], json.dumps(goods[2])]
    assert run(hand_made_sqs(bodies), None) == {"batchItemFailures": []}
    dead = handler.dead_letters()
    delivered = archived(tmp_path)
    assert [e["id"] for e in delivered] == [g["id"] for g in goods]
    assert len(dead) == len(hostile)
    assert all(d["reason"].startswith(("invalid:", "unparseable input:")) for d in dead)
    (summary,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                  if '"batch processed"' in line]
    assert summary["delivered"] + summary["dead_lettered"] == summary["events"] + summary["invalid"] + \
        summary["unparseable"] == len(bodies)


def test_a_kinesis_gzip_bomb_is_dead_lettered_among_good_records(handler, samples, tmp_path):
    import base64
    import gzip
    run = handler(archive(tmp_path))
    good = fresh(samples["alert-sample"])
    blobs = [json.dumps(good).encode(), gzip.compress(b"\n" * (65 * 1024 * 1024)), b"not base64 at all"]
    records = [{"kinesis": {"sequenceNumber": f"4959{i}", "partitionKey": "p",
                            "data": base64.b64encode(blob).decode() if i < 2 else "!!!"},
                "eventSource": "aws:kinesis", "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s"}
               for i, blob in enumerate(blobs)]
    assert run({"Records": records}, None) == {"batchItemFailures": []}
    dead = sorted(handler.dead_letters(), key=lambda d: d["where"])
    assert [d["where"].split(":")[2] for d in dead] == ["49591", "49592"]
    assert "inflates beyond 67,108,864 bytes" in dead[0]["reason"] and "not base64" in dead[1]["reason"]
    assert [e["id"] for e in archived(tmp_path)] == [good["id"]]


# -- secrets: a destination that echoes the credential ---------------------------------------------------

class EchoingHec(BaseHTTPRequestHandler):
    """A misbehaving HEC endpoint: refuses every request quoting the Authorization header it got."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"text": f"Invalid token in header '{self.headers.get('Authorization')}'", "code": 4}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_destination_echoing_the_token_never_leaks_it(handler, samples, capsys):
    token = uuid.uuid4().hex
    arn = handler.aws.client("secretsmanager").create_secret(
        Name="wia/echo-hec", SecretString=json.dumps({"token": token}))["ARN"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingHec)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        run = handler(f'[destinations.splunk]\nurl = "splunk+http://127.0.0.1:{server.server_address[1]}"\n'
                      f'token_secretsmanager = "{arn}#token"\n')
        event = fresh(samples["alert-sample"])
        response = run(shapes.function_url_event(json.dumps(event)), LambdaContext(60))
    finally:
        server.shutdown()
        server.server_close()
    answer = json.loads(response["body"])
    assert response["statusCode"] == 200 and answer["dead_lettered"] == 1
    reason = answer["rejected"][0]["reason"]
    assert "Invalid token in header" in reason                          # the destination's words are kept ...
    dead = handler.dead_letters()
    out = capsys.readouterr().out
    for text in (response["body"], json.dumps(dead), out):
        assert token not in text                                        # ... without the credential
    assert len(dead) == 1 and "Invalid token in header" in dead[0]["reason"]


# -- time: a slow destination never lets Lambda kill the function mid-batch ------------------------------

def test_records_not_started_in_time_are_reported_back_not_killed(handler, samples, monkeypatch):
    """Four SQS messages of 100 events each, a slow HEC destination, an invocation with 5 s left and a
    2.5 s reserve. The relay hands the destination 100 events at a time (one HEC request), and the
    handler stops starting records once less than the reserve is left: the first is delivered, the
    other three reported back untouched, and the handler returns in time. Before, it ignored the
    deadline: a slow destination ran the invocation past its timeout, and Lambda redelivered the whole
    batch, delivered messages included.

    The first answer is held for the reserve itself, so it comes after the reserve is reached however
    busy the machine (the reserve is counted from before the first request is sent), and the second
    record is not started. With 1.5 s answers, where the reserve fell depended on the CPU: on a loaded
    machine it fell inside the second record, whose first 91 events were then still sent and took the
    invocation to 6.7 s."""
    token = uuid.uuid4().hex
    arn = handler.aws.client("secretsmanager").create_secret(
        Name="wia/slow-hec", SecretString=json.dumps({"token": token}))["ARN"]
    monkeypatch.setenv("WIA_TIME_RESERVE", "2.5")
    messages = [[fresh(samples["auth-event-sample"]) for _ in range(100)] for _ in range(4)]
    bodies = ["\n".join(json.dumps(e) for e in events) for events in messages]
    with HecContractServer({token: {}}) as hec:
        hec.state.faults.append(Fault("delay", seconds=2.5))          # the reserve (WIA_TIME_RESERVE)
        hec.state.faults.extend(Fault("delay", seconds=1.5) for _ in range(3))    # asked only past the deadline
        run = handler(f'[destinations.splunk]\nurl = "splunk+http://127.0.0.1:{hec.port}"\n'
                      f'token_secretsmanager = "{arn}#token"\n')
        from wia_lambda import handler as module
        module.runtime()                                  # the cold start is not part of the invocation here
        context = LambdaContext(5.0)
        started = time.monotonic()
        response = run(hand_made_sqs(bodies), context)
        took = time.monotonic() - started
        indexed = {e["event"]["id"] for e in hec.events}
    assert took < 5.0, took
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m{i}"} for i in (1, 2, 3)]}
    assert indexed == {e["id"] for e in messages[0]}
    assert handler.dead_letters() == []                   # nothing dead-lettered: the rest is retried


def test_the_reserve_never_takes_more_than_half_the_invocation(handler, samples, tmp_path, monkeypatch):
    # a reserve above the function's timeout must not stop every record forever
    monkeypatch.setenv("WIA_TIME_RESERVE", "900")
    run = handler(archive(tmp_path))
    good = fresh(samples["alert-sample"])
    assert run(hand_made_sqs([json.dumps(good)]), LambdaContext(3)) == {"batchItemFailures": []}
    assert [e["id"] for e in archived(tmp_path)] == [good["id"]]


def test_an_http_event_whose_body_is_not_text_is_400(handler, samples, tmp_path):
    # before: AttributeError out of the handler (a 502 from the Function URL, no reason given)
    run = handler(archive(tmp_path))
    event = shapes.function_url_event("{}")
    event["body"] = fresh(samples["alert-sample"])                        # a console test event's parsed JSON
    response = run(event, None)
    assert response["statusCode"] == 400 and "must be a string" in json.loads(response["body"])["error"]
    assert archived(tmp_path) == []
