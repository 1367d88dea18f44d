"""Nothing lost, and each loss explained: the Lambda forwarder against moto server's SQS (with a real
redrive policy), S3 and the Security Hub contract layer.

- an SQS message still failing on its last receive is dead-lettered with the reason (the events the
  destination kept refusing, or the whole body when it could not be read), not left to the redrive
  queue with the reason only in the log;
- a message's rejections before its last receive are held back, so a redelivery never dead-letters
  the same line twice;
- one malformed record of a multi-record S3 notification is dead-lettered alone, with its JSON path.

Every test counts: for N values in, delivered + dead-lettered == N, and no value dead-lettered twice."""
from __future__ import annotations

import copy
import gzip
import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import lambda_events as shapes  # noqa: E402
from lambda_events import LambdaContext  # noqa: E402
from test_lambda_handler import SECURITYHUB, forwarder, fresh, ndjson  # noqa: E402,F401  (fixture)

MAX_RECEIVES = 3


def ingest_queue(sqs: Any, max_receives: int = MAX_RECEIVES) -> tuple[str, str]:
    """An ingest queue whose redrive policy moves a message after `max_receives` receives (moto applies it)."""
    redrive = sqs.create_queue(QueueName="wia-ingest-redrive")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=redrive, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName="wia-ingest", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receives)})})["QueueUrl"]
    return queue, redrive


def poll(fw: Any, queue: str, *, rounds: int, context: Any = None) -> list[dict[str, Any]]:
    """What the SQS event source does: receive (attributes included), invoke, delete what was not
    reported back; a reported message is visible again at once (VisibilityTimeout 0)."""
    sqs = fw.aws.client("sqs")
    responses = []
    for _ in range(rounds):
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"],
                                  VisibilityTimeout=0).get("Messages", [])
        if not got:
            break
        event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                              "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                              "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:wia-ingest",
                              "awsRegion": "us-east-1"} for m in got]}
        response = fw.handler(event, context)
        responses.append(response)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for m in got:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    return responses


def waiting(sqs: Any, queue: str) -> list[str]:
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    return [m["Body"] for m in got]


def invalid(event: dict) -> dict:
    broken = copy.deepcopy(event)
    del broken["data"]["title"]
    return broken


def test_last_receive_dead_letters_with_the_reason_and_nothing_twice(forwarder, samples, monkeypatch):
    monkeypatch.setenv("WIA_SQS_MAX_RECEIVE_COUNT", str(MAX_RECEIVES))
    fw = forwarder(SECURITYHUB)
    sqs = fw.aws.client("sqs")
    queue, redrive = ingest_queue(sqs)
    state = fw.aws.securityhub.state
    ok, good, recovers = (fresh(samples["alert-sample"]) for _ in range(3))
    flaky, flaky2 = fresh(samples["incident-sample"]), fresh(samples["incident-sample"])
    bad, bad2 = invalid(fresh(samples["alert-sample"])), invalid(fresh(samples["alert-sample"]))
    state.fail_finding(flaky["id"], "InternalException", "busy", times=1000)       # never recovers
    state.fail_finding(flaky2["id"], "InternalException", "busy", times=1000)
    state.fail_finding(recovers["id"], "InternalException", "busy", times=3)       # fails one invocation (3 attempts)
    bodies = [json.dumps(ok),                              # delivered on the first receive
              json.dumps(flaky),                           # given up on the last receive
              ndjson([bad, good, flaky2]).decode(),        # invalid once, delivered, given up
              ndjson([bad2, recovers]).decode()]           # invalid once, delivered on the second receive
    for body in bodies:
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    values = 1 + 1 + 3 + 2

    responses = poll(fw, queue, rounds=MAX_RECEIVES + 2)

    assert len(responses) == MAX_RECEIVES               # the queue was empty after the third receive
    assert responses[-1] == {"batchItemFailures": []}     # the last receive reports nothing back
    assert waiting(sqs, redrive) == [] and waiting(sqs, queue) == []
    dead = fw.dead_letters()
    delivered = {ok["id"], good["id"], recovers["id"]}
    assert delivered <= set(fw.findings()) and not {flaky["id"], flaky2["id"]} & set(fw.findings())
    assert len(delivered) + len(dead) == values
    # each rejection exactly once: the invalid lines were held back while their messages came back
    keys = [(d.get("event") or {}).get("id") for d in dead]
    assert sorted(keys) == sorted([flaky["id"], flaky2["id"], bad["id"], bad2["id"]])
    by_id = {d["event"]["id"]: d for d in dead}
    for given_up in (flaky, flaky2):
        reason = by_id[given_up["id"]]["reason"]
        assert reason.startswith("gave up on the last receive (ApproximateReceiveCount reached "
                                 f"WIA_SQS_MAX_RECEIVE_COUNT={MAX_RECEIVES}")
        assert "InternalException: busy" in reason and by_id[given_up["id"]]["sink"] == "securityhub"
        assert by_id[given_up["id"]]["where"].startswith("sqs:")
    assert by_id[bad["id"]]["reason"].startswith("invalid: /data") and "title" in by_id[bad["id"]]["reason"]


def writes_in_the_reserve(monkeypatch) -> None:
    """The 2 ms Lambda context of these tests is a device: no record starts. A real invocation stops starting records
    with its time reserve (WIA_TIME_RESERVE) still ahead, and writes its dead letters in it; the dead-letter writes
    fit their clients to the time left (handler.time_to_deadline), so here they are given 30 s past the context's
    end, as the reserve would give them."""
    from wia_lambda import handler
    monkeypatch.setattr(handler, "WRITE_MARGIN", -30.0)


def test_a_message_unread_on_its_last_receive_is_dead_lettered_whole(forwarder, samples, monkeypatch):
    """Out of time before the message could even start, on every receive: on the last one the body
    itself goes to the dead letter with the reason (before: the redrive queue, the reason only logged)."""
    monkeypatch.setenv("WIA_SQS_MAX_RECEIVE_COUNT", str(MAX_RECEIVES))
    monkeypatch.setenv("WIA_TIME_RESERVE", "90")
    writes_in_the_reserve(monkeypatch)
    fw = forwarder(SECURITYHUB)
    sqs = fw.aws.client("sqs")
    queue, redrive = ingest_queue(sqs)
    events = [fresh(samples["alert-sample"]) for _ in range(2)]
    body = ndjson(events).decode()
    sqs.send_message(QueueUrl=queue, MessageBody=body)

    responses = poll(fw, queue, rounds=MAX_RECEIVES + 2, context=LambdaContext(0.002))

    assert len(responses) == MAX_RECEIVES and responses[-1] == {"batchItemFailures": []}
    assert all(r["batchItemFailures"] for r in responses[:-1])
    (dead,) = fw.dead_letters()
    assert dead["raw"] == body and dead["where"] == f"sqs:{responses[0]['batchItemFailures'][0]['itemIdentifier']}"
    assert "gave up on the last receive" in dead["reason"] and "not started" in dead["reason"]
    assert waiting(sqs, redrive) == [] and fw.findings() == {}


def test_without_the_receive_count_a_failing_message_still_reaches_the_redrive_queue(forwarder, samples):
    """The exact behaviour when WIA_SQS_MAX_RECEIVE_COUNT is not set (a queue not made by the template):
    every failing receive is reported back, SQS moves the message to its redrive queue, and each
    receive dead-letters the message's invalid line again (same dead letter, no hold-back: the
    forwarder cannot tell the last receive, and holding back there would lose the reason)."""
    fw = forwarder(SECURITYHUB)
    sqs = fw.aws.client("sqs")
    queue, redrive = ingest_queue(sqs)
    flaky, bad = fresh(samples["incident-sample"]), invalid(fresh(samples["alert-sample"]))
    fw.aws.securityhub.state.fail_finding(flaky["id"], "InternalException", "busy", times=1000)
    body = ndjson([bad, flaky]).decode()
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    responses = poll(fw, queue, rounds=MAX_RECEIVES + 2)
    assert len(responses) == MAX_RECEIVES and all(r["batchItemFailures"] for r in responses)
    assert waiting(sqs, redrive) == [body]
    dead = fw.dead_letters()
    assert [d["event"]["id"] for d in dead] == [bad["id"]] * MAX_RECEIVES


def test_a_bad_receive_count_setting_is_a_configuration_error(forwarder, monkeypatch):
    from wia_security.errors import ConfigError
    monkeypatch.setenv("WIA_SQS_MAX_RECEIVE_COUNT", "five")
    fw = forwarder(SECURITYHUB)
    with pytest.raises(ConfigError, match="WIA_SQS_MAX_RECEIVE_COUNT"):
        fw.handler({"Records": [{"messageId": "m", "body": "{}", "eventSource": "aws:sqs"}]}, None)


# -- S3 notifications with one malformed record -----------------------------------------------------

def _notification_with_a_hole(s3: Any, samples: dict) -> tuple[dict, list[dict], int]:
    s3.create_bucket(Bucket="wia-drop")
    first = [fresh(samples["network-event-sample"]) for _ in range(2)]
    second = fresh(samples["alert-sample"])
    s3.put_object(Bucket="wia-drop", Key="a.ndjson", Body=ndjson(first))
    s3.put_object(Bucket="wia-drop", Key="b.ndjson", Body=ndjson([second]) + b"{broken\n")
    notification = shapes.s3_notification("wia-drop", ["a.ndjson", "hole", "b.ndjson"])
    del notification["Records"][1]["s3"]["object"]["key"]
    # values: 3 events, 1 broken line, 1 malformed notification record
    return notification, [*first, second], 5


def test_a_malformed_record_of_a_direct_s3_notification_fails_alone(forwarder, samples):
    fw = forwarder(SECURITYHUB)
    notification, events, values = _notification_with_a_hole(fw.aws.client("s3"), samples)
    result = fw.handler(notification, None)
    assert result["retry"] == 0 and result["delivered"] == len(events) and result["dead_lettered"] == 2
    assert {e["id"] for e in events} <= set(fw.findings())
    dead = fw.dead_letters()
    assert len(events) + len(dead) == values
    (broken,) = [d for d in dead if d["where"].startswith("s3://")]
    (hole,) = [d for d in dead if not d["where"].startswith("s3://")]
    assert broken["where"] == "s3://wia-drop/b.ndjson:2" and broken["raw"] == "{broken"
    assert hole["where"].startswith("s3-notification/Records/1")
    assert hole["reason"] == "unparseable input: S3 notification has no object key (at /Records/1/s3/object/key)"
    assert hole["errors"][0]["path"] == "/Records/1/s3/object/key"
    assert json.loads(hole["raw"]) == notification["Records"][1]          # that record, not the notification


def test_a_malformed_record_of_an_s3_notification_in_a_queue_message_fails_alone(forwarder, samples):
    fw = forwarder(SECURITYHUB)
    notification, events, values = _notification_with_a_hole(fw.aws.client("s3"), samples)
    sqs = fw.aws.client("sqs")
    queue = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]
    event = shapes.sqs_event(sqs, queue, [json.dumps(notification)])
    assert fw.handler(event, None) == {"batchItemFailures": []}
    assert {e["id"] for e in events} <= set(fw.findings())
    dead = fw.dead_letters()
    assert len(events) + len(dead) == values
    (hole,) = [d for d in dead if d["where"].startswith("sqs:")]
    assert hole["reason"].endswith("has no object key (at /Records/1/s3/object/key)")
    assert json.loads(hole["raw"]) == notification["Records"][1]


# -- retried asynchronous invocations ---------------------------------------------------------------

def _retried_three_times(fw: Any, samples: dict) -> tuple[list[dict], int]:
    """An S3 object [broken line, flaky event, good event] whose notification Lambda invokes three times
    (the first two raise RetryInvocation; the destination recovers on the third)."""
    from wia_lambda.triggers import RetryInvocation
    s3 = fw.aws.client("s3")
    s3.create_bucket(Bucket="wia-drop")
    flaky, good = fresh(samples["incident-sample"]), fresh(samples["alert-sample"])
    s3.put_object(Bucket="wia-drop", Key="mixed.ndjson", Body=b"{broken\n" + ndjson([flaky, good]))
    fw.aws.securityhub.state.fail_finding(flaky["id"], "InternalException", "busy", times=6)   # 2 invocations x 3 attempts
    notification = shapes.s3_notification("wia-drop", ["mixed.ndjson"])
    for _ in range(2):
        with pytest.raises(RetryInvocation):
            fw.handler(notification, None)
    assert fw.handler(notification, None)["retry"] == 0
    assert {flaky["id"], good["id"]} <= set(fw.findings())
    return [flaky, good], 3


def test_retried_async_invocations_overwrite_their_s3_dead_letter(forwarder, samples):
    fw = forwarder(SECURITYHUB, dead_letter="s3://wia-dead/forwarder")
    s3 = fw.aws.client("s3")
    s3.create_bucket(Bucket="wia-dead")
    delivered, values = _retried_three_times(fw, samples)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="wia-dead").get("Contents", [])]
    assert len(keys) == 1                              # three rejections of one line, one object
    (line,) = gzip.decompress(s3.get_object(Bucket="wia-dead", Key=keys[0])["Body"].read()).decode().splitlines()
    dead = json.loads(line)
    assert dead["where"] == "s3://wia-drop/mixed.ndjson:1" and dead["raw"] == "{broken"
    assert keys[0] == f"forwarder/{dead['dead_letter_id']}.ndjson.gz"
    assert len(delivered) + len(keys) == values


def test_retried_async_invocations_repeat_the_queue_dead_letter_identically(forwarder, samples):
    """The exact behaviour with the template's SQS dead-letter queue (a standard queue cannot drop a
    repeat): one message per attempt, identical but for `failed_at`; docs/cloud/aws.md says how to
    count them once, and that `s3://` avoids the repeats."""
    fw = forwarder(SECURITYHUB)
    delivered, values = _retried_three_times(fw, samples)
    dead = fw.dead_letters()
    assert len(dead) == 3
    assert len({json.dumps({k: v for k, v in d.items() if k != "failed_at"}, sort_keys=True) for d in dead}) == 1
    assert dead[0]["where"] == "s3://wia-drop/mixed.ndjson:1"
    assert len({d["dead_letter_id"] for d in dead}) == 1 and len(dead[0]["dead_letter_id"]) == 32   # counted once by it


def test_a_failed_asynchronous_invocation_names_each_object_and_its_reason(forwarder, samples):
    """After Lambda's last retry the event goes to the failure queue with the error message as its
    `ErrorMessage` attribute (truncated to 1 KB by Lambda): the message names every object to retry with
    the destination's reason, within that size."""
    from wia_lambda.triggers import ERROR_MESSAGE_BYTES, RetryInvocation
    fw = forwarder(SECURITYHUB)
    s3 = fw.aws.client("s3")
    s3.create_bucket(Bucket="wia-drop")
    keys = [f"batch-{i:02}.json" for i in range(40)]
    for key in keys:
        flaky = fresh(samples["incident-sample"])
        s3.put_object(Bucket="wia-drop", Key=key, Body=json.dumps(flaky).encode())
        fw.aws.securityhub.state.fail_finding(flaky["id"], "InternalException", "busy", times=100)
    with pytest.raises(RetryInvocation) as one:
        fw.handler(shapes.s3_notification("wia-drop", keys[:1]), None)
    assert str(one.value).startswith("1 record(s) to retry: s3://wia-drop/batch-00.json: ")
    assert str(one.value).endswith("Security Hub FailedFindings InternalException: busy")
    with pytest.raises(RetryInvocation) as many:
        fw.handler(shapes.s3_notification("wia-drop", keys), None)
    text = str(many.value)
    assert text.startswith("40 record(s) to retry: s3://wia-drop/batch-00.json: ") and "; s3://wia-drop/batch-01" in text
    assert len(text.encode()) <= ERROR_MESSAGE_BYTES and text.endswith("...")


def test_a_body_too_big_for_one_dead_letter_message_is_dead_lettered_in_parts(forwarder, samples, monkeypatch):
    """A whole body given up does not fit one SQS dead-letter message with its record when it is nearly the
    queues' limit (1 MiB, SQS's default, for both): it is dead-lettered in parts on its last receive (joined in
    part order they are the record, the body whole in `raw`), so it never reaches the redrive queue with its
    reason only in the log."""
    monkeypatch.setenv("WIA_SQS_MAX_RECEIVE_COUNT", str(MAX_RECEIVES))
    writes_in_the_reserve(monkeypatch)
    fw = forwarder(SECURITYHUB)
    sqs = fw.aws.client("sqs")
    queue, redrive = ingest_queue(sqs)
    event = fresh(samples["alert-sample"])
    line = json.dumps(event)
    body = line + " " * (1024 * 1024 - 100 - len(line))       # padding the reader ignores
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    responses = poll(fw, queue, rounds=MAX_RECEIVES + 2, context=LambdaContext(0.002))
    assert len(responses) == MAX_RECEIVES
    assert all(r["batchItemFailures"] for r in responses[:-1]) and responses[-1]["batchItemFailures"] == []
    parts = sorted(fw.dead_letters(), key=lambda p: p["part"])
    assert len(parts) == parts[0]["parts"] > 1 and len({p["dead_letter_id"] for p in parts}) == 1
    record = json.loads("".join(p["record_part"] for p in parts))
    assert record["raw"] == body and record["reason"].startswith("gave up on the last receive")
    assert waiting(sqs, redrive) == []
