"""A Kinesis batch that failed every retry is read back from the stream, not left there to expire.

Lambda's on-failure destination gets only the batch's shard and sequence range (the developer
guide's "Example invocation record": requestContext, responseContext, version, timestamp and
`KinesisBatchInfo`; built here from the records moto actually holds). The forwarder consumes that
queue (`WIA_KINESIS_FAILURE_QUEUE`), reads the range back from moto's stream and runs the records
through the normal path. Every test counts: for the values of the batch, delivered + dead-lettered
== sent, and records no longer in the stream are one dead letter naming stream, shard and range.
Throttling comes from tests/servers/fault_proxy.py in front of moto (moto never throttles); the
invocation's time from a fake Lambda context counted down by a test clock (`Clock`)."""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import lambda_events as shapes  # noqa: E402
import test_lambda_handler  # noqa: E402
from test_lambda_handler import SECURITYHUB, fresh, ndjson  # noqa: E402
from test_lambda_last_delivery import invalid  # noqa: E402

from servers.fault_proxy import Fault, FaultProxy  # noqa: E402
from s3_contract import S3Grants  # noqa: E402

forwarder = test_lambda_handler.forwarder      # the fixture: the handler configured against moto

STREAM = "wia-stream"
MAX_RECEIVES = 3
THROTTLED = json.dumps({"__type": "ProvisionedThroughputExceededException",
                        "message": "Rate exceeded for shard shardId-000000000000 in stream wia-stream"}).encode()
THROTTLED_HEADERS = {"Content-Type": "application/x-amz-json-1.1",
                     "x-amzn-ErrorType": "ProvisionedThroughputExceededException"}


def put(kinesis: Any, blobs: list[bytes]) -> list[dict[str, Any]]:
    """Put `blobs` on the stream and return them as GetRecords reads them back (sequence numbers, arrival)."""
    sequences = [kinesis.put_record(StreamName=STREAM, Data=blob, PartitionKey="p")["SequenceNumber"] for blob in blobs]
    shard = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER",
                                          StartingSequenceNumber=sequences[0])["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator, Limit=len(blobs))["Records"]
    assert [r["SequenceNumber"] for r in records] == sequences
    return records


def failure_record(kinesis: Any, batch: list[dict[str, Any]], **overrides: Any) -> str:
    """The on-failure invocation record Lambda sends for `batch` (the developer guide's shape, field by field)."""
    description = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]
    info = {
        "shardId": description["Shards"][0]["ShardId"],
        "startSequenceNumber": batch[0]["SequenceNumber"],
        "endSequenceNumber": batch[-1]["SequenceNumber"],
        "approximateArrivalOfFirstRecord": batch[0]["ApproximateArrivalTimestamp"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "approximateArrivalOfLastRecord": batch[-1]["ApproximateArrivalTimestamp"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "batchSize": len(batch),
        "streamArn": description["StreamARN"],
        **overrides,
    }
    return json.dumps({
        "requestContext": {"requestId": "c9b8fa9f-5a7f-4a1b-af9c-0c604cde93a5",
                           "functionArn": f"arn:aws:lambda:us-east-1:{shapes.ACCOUNT}:function:wia-forwarder",
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-12-05T08:38:06.021Z",
        "KinesisBatchInfo": info,
    })


class Setup:
    def __init__(self, fw: Any, monkeypatch: Any, *, max_receives: int = MAX_RECEIVES) -> None:
        self.fw = fw
        self.sqs = fw.aws.client("sqs")
        self.kinesis = fw.aws.client("kinesis")
        self.kinesis.create_stream(StreamName=STREAM, ShardCount=1)
        # the template's StreamFailureQueue: redriven to the asynchronous failure queue after MaxReceiveCount
        self.async_failures = self.sqs.create_queue(QueueName="wia-async-failures")["QueueUrl"]
        target = self.sqs.get_queue_attributes(QueueUrl=self.async_failures,
                                               AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue = self.sqs.create_queue(QueueName="wia-stream-failures", Attributes={"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": target, "maxReceiveCount": str(max_receives)})})["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue,
                                                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        monkeypatch.setenv("WIA_KINESIS_FAILURE_QUEUE", self.queue_arn)
        monkeypatch.setenv("WIA_SQS_MAX_RECEIVE_COUNT", str(max_receives))

    def poll(self, *, rounds: int, context: Callable[[], Any] | None = None) -> list[dict[str, Any]]:
        """The failure queue's event source mapping (BatchSize 1): receive, invoke (with `context()` as the
        Lambda context, when given), delete what was not reported back; a reported message is visible
        again at once (VisibilityTimeout 0)."""
        responses = []
        for _ in range(rounds):
            got = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=1, AttributeNames=["All"],
                                           VisibilityTimeout=0).get("Messages", [])
            if not got:
                break
            event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                                  "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                                  "eventSource": "aws:sqs", "eventSourceARN": self.queue_arn,
                                  "awsRegion": "us-east-1"} for m in got]}
            response = self.fw.handler(event, context() if context is not None else None)
            responses.append(response)
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            for m in got:
                if m["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])
        return responses

    def left_in(self, queue: str) -> list[str]:
        got = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        return [m["Body"] for m in got]


def test_a_failed_batch_is_read_back_and_every_value_delivered_or_dead_lettered(forwarder, samples, monkeypatch):
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    state = fw.aws.securityhub.state
    before, after = fresh(samples["alert-sample"]), fresh(samples["alert-sample"])
    ok = fresh(samples["alert-sample"])
    many = [fresh(samples["auth-event-sample"]) for _ in range(3)]
    bad = invalid(fresh(samples["alert-sample"]))
    down = fresh(samples["incident-sample"])           # the destination refused it all along: why the batch failed
    state.fail_finding(down["id"], "InternalException", "busy", times=1000)
    put(setup.kinesis, [json.dumps(before).encode()])                   # not in the failed batch
    batch = put(setup.kinesis, [json.dumps(ok).encode(), ndjson(many, gz=True), json.dumps(bad).encode(),
                                b"\x00garbage", json.dumps(down).encode()])
    put(setup.kinesis, [json.dumps(after).encode()])                    # nor this
    values = 1 + 3 + 1 + 1 + 1
    # the stream's own invocation of the two rejected records (the deliverable ones are left for the
    # recovery to deliver): the recovery must reject them under the same names and dead_letter_id
    assert fw.handler({"Records": [_as_lambda_record(r) for r in batch[2:4]]}, None) == {"batchItemFailures": []}
    first_dead = {d["where"]: d for d in fw.dead_letters()}
    assert len(first_dead) == 2 and fw.findings() == {}
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))

    responses = setup.poll(rounds=MAX_RECEIVES + 3)

    # the first receive settles the four records before the refused one and goes on from a new message
    # with that resume point, which comes back until its last receive
    assert len(responses) == 1 + MAX_RECEIVES and responses[0] == responses[-1] == {"batchItemFailures": []}
    assert all(len(r["batchItemFailures"]) == 1 for r in responses[1:-1])
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []
    found = set(fw.findings())
    delivered = {ok["id"], *(m["id"] for m in many)}
    assert delivered <= found and before["id"] not in found and after["id"] not in found and down["id"] not in found
    dead = fw.dead_letters()
    assert len(delivered) + len(dead) == values
    by_where = {d["where"]: d for d in dead}
    seq = [r["SequenceNumber"] for r in batch]
    # an event the destination refused to the end is named by its own record and line, as the stream's
    # own invocation names it: the same name, and dead_letter_id, on every repeat
    own_name = f"kinesis:{STREAM}:{seq[4]}:1"
    assert set(by_where) == {f"kinesis:{STREAM}:{seq[2]}:1", f"kinesis:{STREAM}:{seq[3]}:1", own_name}
    # the invalid line and the garbage: rejected once (their records settled on the first receive), with
    # the dead_letter_id the stream's own invocation gave them
    for where in (f"kinesis:{STREAM}:{seq[2]}:1", f"kinesis:{STREAM}:{seq[3]}:1"):
        assert by_where[where]["dead_letter_id"] == first_dead[where]["dead_letter_id"]
    assert by_where[f"kinesis:{STREAM}:{seq[2]}:1"]["reason"].startswith("invalid: /data")
    given_up = by_where[own_name]
    assert given_up["event"]["id"] == down["id"] and given_up["sink"] == "securityhub"
    assert given_up["reason"].startswith("gave up on the last receive (ApproximateReceiveCount reached "
                                         f"WIA_SQS_MAX_RECEIVE_COUNT={MAX_RECEIVES}")
    assert "InternalException: busy" in given_up["reason"]


def _as_lambda_record(record: dict[str, Any]) -> dict[str, Any]:
    import base64
    return {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": record["PartitionKey"],
                        "sequenceNumber": record["SequenceNumber"], "data": base64.b64encode(record["Data"]).decode(),
                        "approximateArrivalTimestamp": record["ApproximateArrivalTimestamp"].timestamp()},
            "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventName": "aws:kinesis:record",
            "eventID": f"shardId-000000000000:{record['SequenceNumber']}", "awsRegion": "us-east-1",
            "eventSourceARN": f"arn:aws:kinesis:us-east-1:{shapes.ACCOUNT}:stream/{STREAM}"}


def test_a_repeated_recovery_duplicates_nothing_at_id_keyed_destinations(forwarder, samples, monkeypatch):
    """The same failure record recovered twice (a second message: a redrive copy, or SQS's at-least-once
    delivery): Security Hub keeps one finding per event id and the S3 dead letter one object per
    dead_letter_id."""
    fw = forwarder(SECURITYHUB, dead_letter="s3://wia-dead/kinesis")
    s3 = fw.aws.client("s3")
    s3.create_bucket(Bucket="wia-dead")
    setup = Setup(fw, monkeypatch)
    events = [fresh(samples["alert-sample"]) for _ in range(4)]
    bad = invalid(fresh(samples["alert-sample"]))
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in events[:2]] + [json.dumps(bad).encode(), ndjson(events[2:])])
    body = failure_record(setup.kinesis, batch)

    def dead_objects() -> dict[str, dict[str, Any]]:
        listed = s3.list_objects_v2(Bucket="wia-dead", Prefix="kinesis/").get("Contents", [])
        return {o["Key"]: json.loads(gzip.decompress(s3.get_object(Bucket="wia-dead", Key=o["Key"])["Body"].read()))
                for o in listed}

    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)
    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]
    findings, dead = fw.findings(), dead_objects()
    assert set(findings) == {e["id"] for e in events} and len(dead) == 1
    assert len(findings) + len(dead) == 5

    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)
    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]
    assert fw.findings().keys() == findings.keys()
    again = dead_objects()
    assert again.keys() == dead.keys()
    (record,) = again.values()
    assert record["where"] == f"kinesis:{STREAM}:{batch[2]['SequenceNumber']}:1"
    assert record["dead_letter_id"] == next(iter(dead.values()))["dead_letter_id"]


@pytest.mark.parametrize("gone", ["stream deleted", "shard gone"])
def test_a_range_no_longer_in_the_stream_is_one_dead_letter_naming_shard_and_range(forwarder, samples, monkeypatch, gone):
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    batch = put(setup.kinesis, [json.dumps(fresh(samples["alert-sample"])).encode() for _ in range(3)])
    overrides = {}
    if gone == "shard gone":               # a parent shard that expired after a reshard
        overrides["shardId"] = "shardId-000000000007"
    body = failure_record(setup.kinesis, batch, **overrides)
    info = json.loads(body)["KinesisBatchInfo"]
    if gone == "stream deleted":
        setup.kinesis.delete_stream(StreamName=STREAM)

    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)
    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]      # not retried: retrying cannot bring it back

    assert fw.findings() == {}
    (dead,) = fw.dead_letters()
    start, end = info["startSequenceNumber"], info["endSequenceNumber"]
    assert dead["where"] == f"kinesis:{STREAM}:{info['shardId']}:{start}-{end}"
    assert dead["reason"].startswith(
        f"Kinesis records lost: 3 of the 3 records of the failed batch (shard {info['shardId']} of {info['streamArn']}, "
        f"sequence numbers {start} to {end}) are no longer in the stream")
    assert "ResourceNotFoundException" in dead["reason"]
    assert dead["errors"] == [{"code": "kinesis_records_lost", "stream_arn": info["streamArn"], "shard_id": info["shardId"],
                               "start_sequence_number": start, "end_sequence_number": end, "batch_size": 3,
                               "found": 0, "missing": 3}]
    assert json.loads(dead["raw"]) == json.loads(body)                # the failure record itself


def test_records_trimmed_from_the_head_of_the_range_are_counted_and_named(forwarder, samples, monkeypatch):
    """moto keeps every record, so a trimmed head is a range that starts just below the shard's first
    record and counts two records the stream no longer holds: the three still there are delivered, the two
    missing are one dead letter, and delivered + missing == batchSize."""
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    events = [fresh(samples["alert-sample"]) for _ in range(3)]
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in events])
    below = str(int(batch[0]["SequenceNumber"]) - 1)        # no record of the shard has it any more
    body = failure_record(setup.kinesis, batch, startSequenceNumber=below, batchSize=5)
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)

    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]

    assert set(fw.findings()) == {e["id"] for e in events}
    (dead,) = fw.dead_letters()
    assert dead["reason"].startswith("Kinesis records lost: 2 of the 5 records of the failed batch")
    assert dead["errors"][0]["found"] + dead["errors"][0]["missing"] == 5 and dead["errors"][0]["found"] == 3


def test_a_message_that_is_not_a_failure_record_is_read_as_an_ingest_message(forwarder, samples, monkeypatch):
    """The failure queue also takes what an operator moves there from the asynchronous failure queue (an
    S3 or EventBridge event): such a body goes the normal way; a broken failure record is dead-lettered."""
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    event = fresh(samples["alert-sample"])
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=json.dumps(shapes.eventbridge_event(event)))
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=json.dumps(
        {"version": "1.0", "KinesisBatchInfo": {"shardId": "shardId-000000000000", "batchSize": 2}}))
    assert setup.poll(rounds=3) == [{"batchItemFailures": []}] * 2
    assert set(fw.findings()) == {event["id"]}
    (dead,) = fw.dead_letters()
    assert dead["reason"] == ("unparseable input: Kinesis failure record: KinesisBatchInfo.streamArn is missing "
                              "or malformed")


@pytest.fixture
def throttling(aws, monkeypatch):
    """moto's Kinesis behind the fault proxy (boto3 finds it through AWS_ENDPOINT_URL_KINESIS)."""
    from wia_lambda import stream_recovery
    monkeypatch.setattr(stream_recovery, "THROTTLE_BACKOFF", 0.01)
    with FaultProxy(aws.moto.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_KINESIS", proxy.url)
        yield proxy


def _targets(proxy: FaultProxy) -> list[tuple[str, str | None]]:
    return [(s.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1], s.fault) for s in proxy.seen]


def test_throttled_reads_back_off_and_the_batch_is_still_recovered(forwarder, samples, monkeypatch, throttling):
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    events = [fresh(samples["alert-sample"]) for _ in range(3)]
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in events])
    # GetShardIterator passes; then GetRecords is throttled 4 times: botocore's 3 tries, and one of ours
    throttling.add(Fault("rewrite", rewrite=lambda *answer: answer),
                   *[Fault("reply", status=400, headers=THROTTLED_HEADERS, body=THROTTLED) for _ in range(4)])
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))

    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]

    assert throttling.unused() == []
    assert _targets(throttling)[:6] == [("GetShardIterator", "rewrite")] + [("GetRecords", "reply")] * 4 + \
        [("GetRecords", None)]
    assert set(fw.findings()) == {e["id"] for e in events} and fw.dead_letters() == []


def test_reads_throttled_throughout_are_retried_then_dead_lettered_naming_the_batch(forwarder, samples, monkeypatch,
                                                                                     throttling):
    """Throttled on every try: the message is reported back (the records are still in the stream), and on
    its last receive the failure record itself is dead-lettered with the reason, named by its batch."""
    from wia_lambda import stream_recovery
    monkeypatch.setattr(stream_recovery, "THROTTLE_TRIES", 2)
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch, max_receives=2)
    batch = put(setup.kinesis, [json.dumps(fresh(samples["alert-sample"])).encode() for _ in range(2)])
    body = failure_record(setup.kinesis, batch)
    for _ in range(2):                     # per receive: GetShardIterator, then 2 x botocore's 3 tries of GetRecords
        throttling.add(Fault("rewrite", rewrite=lambda *answer: answer),
                       *[Fault("reply", status=400, headers=THROTTLED_HEADERS, body=THROTTLED) for _ in range(6)])
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)

    responses = setup.poll(rounds=3)

    assert len(responses) == 2 and responses[0]["batchItemFailures"] and responses[1] == {"batchItemFailures": []}
    assert throttling.unused() == [] and fw.findings() == {}
    assert setup.left_in(setup.async_failures) == []
    (dead,) = fw.dead_letters()
    info = json.loads(body)["KinesisBatchInfo"]
    assert dead["where"] == f"kinesis:{STREAM}:{info['shardId']}:{info['startSequenceNumber']}-{info['endSequenceNumber']}"
    assert dead["reason"].startswith("gave up on the last receive")
    assert "RecoveryIncomplete: the shard's read throughput was exceeded on 2 tries" in dead["reason"]
    assert json.loads(dead["raw"]) == json.loads(body)


def _empty_pages(count: int, clock: "Clock | None" = None, seconds: float = 0.0) -> list[Fault]:
    """GetShardIterator passes (its iterator kept), then `count` GetRecords answers are replaced by what
    Kinesis may answer behind the tip: no records, MillisBehindLatest > 0, the same iterator to go on with;
    each of them taking `seconds` of the `clock`'s invocation."""
    kept: dict[str, str] = {}

    def keep(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        kept["iterator"] = json.loads(body)["ShardIterator"]
        return status, headers, body

    def empty(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if clock is not None:
            clock.now += seconds
        return status, headers, json.dumps({"Records": [], "NextShardIterator": kept["iterator"],
                                            "MillisBehindLatest": 5000}).encode()

    return [Fault("rewrite", rewrite=keep), *[Fault("rewrite", rewrite=empty) for _ in range(count)]]


def test_empty_pages_and_an_expired_iterator_are_read_past(forwarder, samples, monkeypatch, throttling):
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    events = [fresh(samples["alert-sample"]) for _ in range(3)]
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in events])
    expired = json.dumps({"__type": "ExpiredIteratorException", "message": "Iterator expired."}).encode()
    throttling.add(*_empty_pages(2), Fault("reply", status=400, body=expired, headers={
        "Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": "ExpiredIteratorException"}))
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))

    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]

    assert throttling.unused() == []
    assert _targets(throttling) == [("GetShardIterator", "rewrite"), ("GetRecords", "rewrite"), ("GetRecords", "rewrite"),
                                    ("GetRecords", "reply"), ("GetShardIterator", None), ("GetRecords", None)]
    assert set(fw.findings()) == {e["id"] for e in events} and fw.dead_letters() == []


def test_a_reading_that_makes_no_progress_stops_and_is_dead_lettered_naming_the_batch(forwarder, samples, monkeypatch,
                                                                                       throttling):
    from wia_lambda import stream_recovery
    monkeypatch.setattr(stream_recovery, "MAX_PAGES", 3)
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch, max_receives=1)
    batch = put(setup.kinesis, [json.dumps(fresh(samples["alert-sample"])).encode() for _ in range(2)])
    body = failure_record(setup.kinesis, batch)
    throttling.add(*_empty_pages(3))
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)

    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]

    assert throttling.unused() == [] and [t for t, _ in _targets(throttling)].count("GetRecords") == 3
    (dead,) = fw.dead_letters()
    assert dead["reason"].startswith("gave up on the last receive")
    assert "RecoveryIncomplete: no end of the range after 3 GetRecords calls" in dead["reason"]
    assert dead["where"].startswith(f"kinesis:{STREAM}:shardId-000000000000:") and json.loads(dead["raw"]) == json.loads(body)


def test_a_loss_that_cannot_be_dead_lettered_is_reported_back_then_left_to_the_redrive_queue(forwarder, samples,
                                                                                              monkeypatch):
    """The dead-letter queue is gone: the loss cannot be put on record, so the failure record is reported
    back on every receive, and SQS moves it on to the asynchronous failure queue (alarmed) after the last."""
    fw = forwarder(SECURITYHUB, dead_letter="sqs://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue")
    setup = Setup(fw, monkeypatch)
    batch = put(setup.kinesis, [json.dumps(fresh(samples["alert-sample"])).encode() for _ in range(2)])
    body = failure_record(setup.kinesis, batch)
    setup.kinesis.delete_stream(StreamName=STREAM)
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)

    responses = setup.poll(rounds=MAX_RECEIVES + 2)

    assert len(responses) == MAX_RECEIVES and all(len(r["batchItemFailures"]) == 1 for r in responses)
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == [body]


@pytest.mark.parametrize("member,value", [
    ("startSequenceNumber", "4962\u00b2"),          # a superscript two: str.isdigit() says yes, int() says no
    ("endSequenceNumber", "9" * 5000),              # past int()'s 4300-digit limit for decimal text
    ("batchSize", 10 ** 40),                        # no Kinesis batch is that big
])
def test_a_failure_record_with_absurd_numbers_is_dead_lettered_naming_the_member(forwarder, samples, monkeypatch,
                                                                                member, value):
    """A hand-made failure record (anyone allowed to SendMessage on the queue) is settled: one dead letter
    naming the member, never a traceback that fails the invocation and brings the message back until redrive."""
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    batch = put(setup.kinesis, [json.dumps(fresh(samples["alert-sample"])).encode()])
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch, **{member: value}))

    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]

    assert fw.findings() == {} and setup.left_in(setup.queue) == []
    (dead,) = fw.dead_letters()
    assert dead["reason"].startswith(f"unparseable input: Kinesis failure record: KinesisBatchInfo.{member} ")


# -- the invocation's time -------------------------------------------------------------------------

class Clock:
    """Fake time for the Lambda contexts of a test: each invocation (`context()`) has `timeout` seconds,
    counted down as the throttling backoff sleeps (stream_recovery.sleep) and as the fault proxy says a
    Kinesis call took; nothing really waits."""

    def __init__(self, timeout: float = 180.0) -> None:
        self.timeout = timeout
        self.now = 0.0
        self.started = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def spent(self) -> float:
        """Seconds the current invocation has used."""
        return self.now - self.started

    def context(self) -> Any:
        self.started = self.now
        clock, ends = self, self.now + self.timeout

        class Context:
            aws_request_id = "8f5e7d6c-1b2a-4c3d-9e8f-7a6b5c4d3e2f"

            def get_remaining_time_in_millis(self) -> int:
                return max(0, int((ends - clock.now) * 1000))
        return Context()


class NoJitter:
    """stream_recovery's random: the backoff waits its full, predictable length."""

    @staticmethod
    def uniform(low: float, high: float) -> float:
        return high


@pytest.fixture
def clock(monkeypatch):
    from types import SimpleNamespace

    from wia_lambda import handler, stream_recovery

    from wia_security.connectors import relay
    clock = Clock()
    monkeypatch.setattr(stream_recovery, "sleep", clock.sleep)
    # the handler's deadline for records (in_time -> relay.until) counts on the same clock as the context
    fake_time = SimpleNamespace(monotonic=lambda: clock.now)
    monkeypatch.setattr(handler, "time", fake_time)
    monkeypatch.setattr(relay, "time", fake_time)
    monkeypatch.setattr(stream_recovery, "random", NoJitter)
    monkeypatch.setenv("WIA_TIME_RESERVE", "90")          # of the 180 s each invocation has: 90 s to spend
    return clock


def _throttled(clock: Clock, seconds: float) -> Fault:
    """A GetRecords (or any) answer replaced by ProvisionedThroughputExceeded after `seconds` of the invocation."""
    def answer(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        clock.now += seconds
        return 400, THROTTLED_HEADERS, THROTTLED
    return Fault("rewrite", rewrite=answer)


def _short_page(clock: Clock, kinesis: Any, keep: int, seconds: float) -> Fault:
    """A GetRecords answer cut to its first `keep` records (Kinesis returns less than Limit when a page
    reaches its size limit) with the iterator after the last one, taking `seconds` of the invocation."""
    def answer(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        clock.now += seconds
        page = json.loads(body)
        page["Records"] = page["Records"][:keep]
        shard = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]["Shards"][0]["ShardId"]
        page["NextShardIterator"] = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
            StartingSequenceNumber=page["Records"][-1]["SequenceNumber"])["ShardIterator"]
        return status, headers, json.dumps(page).encode()
    return Fault("rewrite", rewrite=answer)


def test_a_backoff_that_would_run_into_the_time_reserve_stops_the_reading_and_the_message_comes_back(
        forwarder, samples, monkeypatch, throttling, clock):
    """90 s to spend: a throttled GetRecords (the SDK's 3 tries, 6 s), a 40 s backoff that fits, the call
    throttled again (46 s to 52 s), then an 80 s backoff that would end past the 90 s: the reading stops
    there, the message is reported back, and the next receive recovers the batch."""
    from wia_lambda import stream_recovery
    monkeypatch.setattr(stream_recovery, "THROTTLE_BACKOFF", 40.0)
    monkeypatch.setattr(stream_recovery, "THROTTLE_MAX_WAIT", 80.0)
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    events = [fresh(samples["alert-sample"]) for _ in range(3)]
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in events])
    throttling.add(Fault("rewrite", rewrite=lambda *answer: answer), *[_throttled(clock, 2.0) for _ in range(6)])
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))

    (first,) = setup.poll(rounds=1, context=clock.context)

    assert len(first["batchItemFailures"]) == 1
    assert clock.slept == [40.0] and clock.spent() == 52.0           # the 80 s wait was never started
    assert throttling.unused() == [] and fw.findings() == {} and fw.dead_letters() == []

    assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]
    assert set(fw.findings()) == {e["id"] for e in events} and fw.dead_letters() == []
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_a_range_cut_short_by_time_goes_on_after_what_was_settled_and_nothing_is_lost_or_doubled(
        forwarder, samples, monkeypatch, throttling, clock):
    """A first page of two records took 30 s, the next GetRecords is throttled (15 s): a 20 s backoff fits
    in the 45 s left, but not with a call as slow as the first after it. The reading stops after the
    first page: its valid value delivered, its invalid one dead-lettered, and the failure queue gets the
    failure record again with a resume point after them (the message itself is deleted). The next
    receive reads from there: Security Hub gets each event once, the invalid value is dead-lettered once,
    and delivered + dead-lettered == the values sent. Before: the range was read again from its start and
    the first value handed over twice."""
    from wia_lambda import stream_recovery
    monkeypatch.setattr(stream_recovery, "THROTTLE_BACKOFF", 20.0)
    monkeypatch.setattr(stream_recovery, "THROTTLE_MAX_WAIT", 20.0)
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    state = fw.aws.securityhub.state
    events = [fresh(samples["alert-sample"]) for _ in range(3)]
    bad = invalid(fresh(samples["alert-sample"]))
    batch = put(setup.kinesis, [json.dumps(events[0]).encode(), json.dumps(bad).encode(),
                                json.dumps(events[1]).encode(), json.dumps(events[2]).encode()])
    throttling.add(Fault("rewrite", rewrite=lambda *answer: answer), _short_page(clock, setup.kinesis, 2, 30.0),
                   *[_throttled(clock, 5.0) for _ in range(3)])
    body = failure_record(setup.kinesis, batch)
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)
    imports = len(state.import_calls)

    (first,) = setup.poll(rounds=1, context=clock.context)

    assert first == {"batchItemFailures": []} and throttling.unused() == []
    assert clock.slept == [] and clock.spent() == 45.0
    assert set(fw.findings()) == {events[0]["id"]}
    (dead,) = fw.dead_letters()
    assert dead["where"] == f"kinesis:{STREAM}:{batch[1]['SequenceNumber']}:1" and dead["reason"].startswith("invalid:")
    (resumed,) = setup.left_in(setup.queue)
    assert json.loads(resumed) == {**json.loads(body), "wiaResume": {
        "sequenceNumber": batch[1]["SequenceNumber"], "values": 0, "found": 2}}

    assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]
    assert state.import_calls[imports:] == [1, 2]                   # each value handed over once
    assert set(fw.findings()) == {e["id"] for e in events} and fw.dead_letters() == []
    assert len(fw.findings()) + 1 == 4
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_a_forged_huge_range_is_cut_by_time_before_max_pages_then_settled_by_the_loss_dead_letter(
        forwarder, samples, monkeypatch, throttling, clock):
    """A failure record whose range runs far past the shard's tip (forged, or corrupted): empty pages
    behind the tip, 2 s each, are read only while 90 s last (44 GetRecords, under MAX_PAGES = 100; the 45th
    would have reached the records), with no loss dead letter for the unfinished reading; the next
    receive reads on to the tip and writes the one loss dead letter naming stream, shard, range and counts."""
    from wia_lambda import stream_recovery
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    events = [fresh(samples["alert-sample"]) for _ in range(2)]
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in events])
    end = "9" * 40
    body = failure_record(setup.kinesis, batch, endSequenceNumber=end, batchSize=stream_recovery.MAX_BATCH_SIZE)
    info = json.loads(body)["KinesisBatchInfo"]
    throttling.add(*_empty_pages(44, clock, 2.0))
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)

    (first,) = setup.poll(rounds=1, context=clock.context)

    reads = [t for t, _ in _targets(throttling)].count("GetRecords")
    assert len(first["batchItemFailures"]) == 1 and reads == 44 < stream_recovery.MAX_PAGES
    assert throttling.unused() == []
    assert clock.spent() == 88.0 and fw.findings() == {} and fw.dead_letters() == []

    assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]
    assert set(fw.findings()) == {e["id"] for e in events}
    (dead,) = fw.dead_letters()
    assert dead["where"] == f"kinesis:{STREAM}:{info['shardId']}:{info['startSequenceNumber']}-{end}"
    assert dead["reason"].startswith("Kinesis records lost: 9998 of the 10000 records of the failed batch (shard "
                                     f"{info['shardId']} of {info['streamArn']}, sequence numbers "
                                     f"{info['startSequenceNumber']} to {end})")
    assert "the stream's newest record comes before the end of the range" in dead["reason"]
    assert dead["errors"][0]["found"] == 2 and dead["errors"][0]["missing"] == 9998
    assert json.loads(dead["raw"]) == json.loads(body)


def test_a_reading_out_of_time_on_every_receive_is_dead_lettered_whole_on_the_last(
        forwarder, samples, monkeypatch, throttling, clock):
    """Pages of 30 s: two fit in each invocation's 90 s, never the end of the range. The message comes
    back until its last receive, where the failure record is dead-lettered naming the batch and saying the
    time ran out; nothing reaches the redrive queue."""
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch, max_receives=2)
    batch = put(setup.kinesis, [json.dumps(fresh(samples["alert-sample"])).encode() for _ in range(2)])
    body = failure_record(setup.kinesis, batch)
    throttling.add(*_empty_pages(2, clock, 30.0), *_empty_pages(2, clock, 30.0))
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)

    responses = setup.poll(rounds=3, context=clock.context)

    assert len(responses) == 2 and responses[0]["batchItemFailures"] and responses[1] == {"batchItemFailures": []}
    assert throttling.unused() == [] and [t for t, _ in _targets(throttling)].count("GetRecords") == 4
    assert fw.findings() == {}
    (dead,) = fw.dead_letters()
    info = json.loads(body)["KinesisBatchInfo"]
    start, end = info["startSequenceNumber"], info["endSequenceNumber"]
    assert dead["where"] == f"kinesis:{STREAM}:{info['shardId']}:{start}-{end}"
    assert dead["reason"].startswith("gave up on the last receive")
    assert "OutOfTime: not finished: reading the batch back from the stream, the next Kinesis call" in dead["reason"]
    assert json.loads(dead["raw"]) == json.loads(body)
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


# -- resuming a reading cut short: a destination that keeps no ids (a file) gets every value once ----

class SlowDestination:
    """The relay's sink as it is, each send() taking `seconds` of the clock's invocation (a destination
    slow to answer); `sends` counts the events handed to it."""

    def __init__(self, sink: Any, clock: "Clock", seconds: float) -> None:
        self.sink, self.clock, self.seconds = sink, clock, seconds
        self.name = getattr(sink, "name", "sink")
        self.sends: list[int] = []

    def send(self, events: Any) -> Any:
        self.clock.now += self.seconds
        self.sends.append(len(events))
        return self.sink.send(events)

    def flush(self) -> Any:
        return self.sink.flush()

    def close(self) -> None:
        self.sink.close()


def _file_forwarder(forwarder: Any, tmp_path: Path) -> tuple[Any, Path]:
    out = tmp_path / "out.ndjson"
    return forwarder(f'[destinations.archive]\nurl = "file://{out}"\n'), out


def _ids_in(out: Path) -> list[str]:
    return [json.loads(line)["id"] for line in out.read_text().splitlines()] if out.exists() else []


def test_a_record_cut_in_its_middle_by_time_goes_on_from_its_next_value_each_value_once_in_a_file(
        forwarder, samples, monkeypatch, clock, tmp_path):
    """A file keeps every copy it is given. Five records: one event, an NDJSON record of six, an invalid
    event, garbage, two events (11 values). The destination takes 40 s per chunk of two (the relay's chunk
    size set to 2); of the 90 s to spend, the third chunk ends at 120 s, inside the reserve: the reading
    stops between the fifth and sixth value of the NDJSON record, with the failure record sent again
    resuming after value 5 of that record. The next receive reads from the sixth value on. The file holds
    each of the 9 events exactly once, the 2 bad values are dead-lettered once each with their reasons:
    9 + 2 == 11, nothing lost, nothing doubled."""
    fw, out = _file_forwarder(forwarder, tmp_path)
    setup = Setup(fw, monkeypatch)
    events = [fresh(samples["alert-sample"]) for _ in range(9)]
    bad = invalid(fresh(samples["alert-sample"]))
    batch = put(setup.kinesis, [json.dumps(events[0]).encode(), ndjson(events[1:7]), json.dumps(bad).encode(),
                                b"\x00garbage", ndjson(events[7:], gz=True)])
    body = failure_record(setup.kinesis, batch)
    relay = fw.module.runtime().relay
    relay.chunk_events = 2
    relay.sink = slow = SlowDestination(relay.sink, clock, 40.0)
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)

    (first,) = setup.poll(rounds=1, context=clock.context)

    assert first == {"batchItemFailures": []}
    assert slow.sends == [2, 2, 2] and clock.spent() == 120.0
    assert _ids_in(out) == [e["id"] for e in events[:6]] and fw.dead_letters() == []
    (resumed,) = setup.left_in(setup.queue)
    # "objects": the S3 objects the cut record named up to its cut (none here), pinned for the skip
    assert json.loads(resumed)["wiaResume"] == {"sequenceNumber": batch[1]["SequenceNumber"], "values": 5, "found": 2,
                                                "objects": []}

    assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]

    assert slow.sends == [2, 2, 2, 2, 1]
    assert _ids_in(out) == [e["id"] for e in events]                 # each event once, in the stream's order
    dead = {d["where"]: d for d in fw.dead_letters()}
    seq = [r["SequenceNumber"] for r in batch]
    assert set(dead) == {f"kinesis:{STREAM}:{seq[2]}:1", f"kinesis:{STREAM}:{seq[3]}:1"}
    assert dead[f"kinesis:{STREAM}:{seq[2]}:1"]["reason"].startswith("invalid: /data")
    assert dead[f"kinesis:{STREAM}:{seq[3]}:1"]["reason"].startswith("unparseable input:")
    assert len(_ids_in(out)) + len(dead) == 11
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_a_resumed_reading_given_up_names_only_the_rest_of_the_batch_in_its_raw(
        forwarder, samples, monkeypatch, throttling, clock, tmp_path):
    """A first receive delivers the first page (two events, to a file) and runs out of time: the reading
    goes on from a new message resuming after them. That one is throttled throughout on both its
    receives: on its last, it is dead-lettered whole, and its `raw` is the failure record with the resume
    point, naming only the records not delivered (replaying it would not send the first two again).
    Before: the message was given up with the range from its start, both delivered events included."""
    from wia_lambda import stream_recovery
    monkeypatch.setattr(stream_recovery, "THROTTLE_TRIES", 2)
    fw, out = _file_forwarder(forwarder, tmp_path)
    setup = Setup(fw, monkeypatch, max_receives=2)
    events = [fresh(samples["alert-sample"]) for _ in range(4)]
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in events])
    body = failure_record(setup.kinesis, batch)
    throttled = [Fault("reply", status=400, headers=THROTTLED_HEADERS, body=THROTTLED) for _ in range(6)]
    # receive 1: a page of two taking 60 s, then no time for a call as slow; receives 2 and 3: throttled
    throttling.add(Fault("rewrite", rewrite=lambda *answer: answer), _short_page(clock, setup.kinesis, 2, 60.0),
                   Fault("rewrite", rewrite=lambda *answer: answer), *throttled,
                   Fault("rewrite", rewrite=lambda *answer: answer), *throttled)
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)

    responses = setup.poll(rounds=4, context=clock.context)

    assert [len(r["batchItemFailures"]) for r in responses] == [0, 1, 0] and throttling.unused() == []
    assert _ids_in(out) == [e["id"] for e in events[:2]]
    (dead,) = fw.dead_letters()
    info = json.loads(body)["KinesisBatchInfo"]
    assert dead["where"] == f"kinesis:{STREAM}:{info['shardId']}:{info['startSequenceNumber']}-{info['endSequenceNumber']}"
    assert dead["reason"].startswith("gave up on the last receive")
    assert "RecoveryIncomplete: the shard's read throughput was exceeded on 2 tries" in dead["reason"]
    assert json.loads(dead["raw"]) == {**json.loads(body), "wiaResume": {
        "sequenceNumber": batch[1]["SequenceNumber"], "values": 0, "found": 2}}
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_a_resume_point_that_cannot_be_written_leaves_the_message_to_be_read_again_from_its_start(
        forwarder, samples, monkeypatch, clock, tmp_path):
    """SendMessage to the failure queue fails (the function's SQS endpoint is unreachable): the message is
    reported back as before and read again from its start. Nothing is lost; the values already handed
    over are handed over again (the file gets them twice), as before the resume point existed."""
    fw, out = _file_forwarder(forwarder, tmp_path)
    setup = Setup(fw, monkeypatch)
    events = [fresh(samples["alert-sample"]) for _ in range(3)]
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in events])
    relay = fw.module.runtime().relay
    relay.chunk_events = 1
    relay.sink = slow = SlowDestination(relay.sink, clock, 50.0)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9")     # the discard port: nothing listens
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))

    (first,) = setup.poll(rounds=1, context=clock.context)

    assert len(first["batchItemFailures"]) == 1 and slow.sends == [1, 1]
    assert _ids_in(out) == [e["id"] for e in events[:2]]
    monkeypatch.setenv("WIA_TIME_RESERVE", "0")
    assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]
    assert _ids_in(out) == [e["id"] for e in events[:2]] + [e["id"] for e in events]
    assert setup.left_in(setup.queue) == []


@pytest.mark.parametrize("resume,member", [
    ({"sequenceNumber": "1", "values": 0, "found": 1}, "sequenceNumber"),        # before the range
    ({"sequenceNumber": "SEQ", "values": -1, "found": 1}, "values"),
    ({"sequenceNumber": "SEQ", "values": 0, "found": True}, "found"),
    ({"sequenceNumber": "SEQ", "values": 0, "found": 1, "objects": []}, "objects"),     # pins of a whole record
    ({"sequenceNumber": "SEQ", "values": 2, "found": 1, "objects": [{"bucket": "wia-ingest"}]}, "objects"),
    ({"sequenceNumber": "SEQ", "values": 2, "found": 1, "objects": {"bucket": "b", "key": "k"}}, "objects"),
    # moto numbers the records 1 (before the range), 2 and 3 (the range)
    ({"sequenceNumber": "SEQ", "values": 0, "found": 1, "cut": {"sequenceNumber": "2", "values": 1, "objects": []}},
     "cut"),                                                                            # the head's own record
    ({"sequenceNumber": None, "values": 0, "found": 0, "cut": {"sequenceNumber": "3", "values": 0, "objects": []}},
     "cut"),
    ({"sequenceNumber": None, "values": 0, "found": 0, "settled": [["3", "3"]],
      "cut": {"sequenceNumber": "3", "values": 1, "objects": []}}, "cut"),                  # inside a settled run
    ({"sequenceNumber": None, "values": 0, "found": 0, "cut": {"sequenceNumber": "3", "values": 1}}, "cut"),
    ({"sequenceNumber": None, "values": 0, "found": 0,
      "cut": {"sequenceNumber": "3", "values": 1, "objects": [{"key": "k"}]}}, "cut.objects"),
    ("after 5", None),
])
def test_a_malformed_resume_point_is_dead_lettered_naming_the_member(forwarder, samples, monkeypatch, resume, member):
    """Anyone allowed to SendMessage on the queue could forge one: it is settled as one dead letter naming
    what is wrong, never read from a point outside the range."""
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    put(setup.kinesis, [json.dumps(fresh(samples["alert-sample"])).encode()])      # sequence number 1: before
    batch = put(setup.kinesis, [json.dumps(fresh(samples["alert-sample"])).encode() for _ in range(2)])
    if isinstance(resume, dict) and resume["sequenceNumber"] == "SEQ":
        resume = {**resume, "sequenceNumber": batch[0]["SequenceNumber"]}
    body = {**json.loads(failure_record(setup.kinesis, batch)), "wiaResume": resume}
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=json.dumps(body))

    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]

    assert fw.findings() == {}
    (dead,) = fw.dead_letters()
    assert dead["reason"].startswith("unparseable input: Kinesis failure record: wiaResume" +
                                     (f".{member} " if member else " is not an object"))


def test_a_range_holding_more_records_than_the_batch_is_forwarded_whole_with_a_warning(
        forwarder, samples, monkeypatch, capsys):
    """With ParallelizationFactor above 1 a range holds other virtual shards' records too: they cannot be
    told apart, so all are forwarded (none skipped) and a warning names the counts."""
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    events = [fresh(samples["alert-sample"]) for _ in range(5)]
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in events])
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch, batchSize=3))

    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]

    assert set(fw.findings()) == {e["id"] for e in events} and fw.dead_letters() == []
    warnings = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                if "ParallelizationFactor" in line]
    assert [(w["level"], w["batch_size"], w["found"]) for w in warnings] == [("WARNING", 3, 5)]


def test_a_range_holding_more_than_the_largest_parallelization_factor_allows_stops_and_is_dead_lettered(
        forwarder, samples, monkeypatch):
    """More records than MAX_PARALLELIZATION_FACTOR x batchSize (here 2 x 2) cannot be one failed batch
    (a forged range): the reading stops after 4, goes on from a resume point, stops again at once, and on
    that message's last receive the rest is dead-lettered whole naming why; 4 delivered + the rest in the
    dead letter's raw."""
    from wia_lambda import stream_recovery
    monkeypatch.setattr(stream_recovery, "MAX_PARALLELIZATION_FACTOR", 2)
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch, max_receives=1)
    events = [fresh(samples["alert-sample"]) for _ in range(5)]
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in events])
    body = failure_record(setup.kinesis, batch, batchSize=2)
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)

    assert setup.poll(rounds=3) == [{"batchItemFailures": []}] * 2

    assert set(fw.findings()) == {e["id"] for e in events[:4]}
    (dead,) = fw.dead_letters()
    assert "RecoveryIncomplete: the range holds more than 4 records (2 x batchSize 2" in dead["reason"]
    assert json.loads(dead["raw"])["wiaResume"] == {"sequenceNumber": batch[3]["SequenceNumber"], "values": 0,
                                                    "found": 4}
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_records_settled_after_one_still_failing_are_not_handed_over_again(forwarder, samples, monkeypatch, tmp_path):
    """Security Hub and a file. Security Hub refuses the batch's first event for the whole first receive
    (retryable, its 3 attempts); the file takes it. The three records after it are settled (two events
    and an NDJSON pair delivered to both, one invalid event dead-lettered): the failure record goes on
    from a new message whose resume point names no settled head (null) and one settled run. The next
    receive hands over only the first record again, so the file gets that event twice (a fan-out re-sends
    a value to every destination while one of them refuses it) and every other event once, and the invalid
    event is dead-lettered once. Before: every record after the refused one was read and handed over
    again, the file got them twice, the rejection was written twice."""
    out = tmp_path / "out.ndjson"
    fw = forwarder(SECURITYHUB + f'[destinations.archive]\nurl = "file://{out}"\n')
    setup = Setup(fw, monkeypatch)
    refused, *events = [fresh(samples["alert-sample"]) for _ in range(4)]
    bad = invalid(fresh(samples["alert-sample"]))
    fw.aws.securityhub.state.fail_finding(refused["id"], "InternalException", "busy", times=3)
    batch = put(setup.kinesis, [json.dumps(refused).encode(), json.dumps(events[0]).encode(), json.dumps(bad).encode(),
                                ndjson(events[1:])])
    body = failure_record(setup.kinesis, batch)
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=body)

    (first,) = setup.poll(rounds=1)

    assert first == {"batchItemFailures": []}
    (resumed,) = setup.left_in(setup.queue)
    seq = [r["SequenceNumber"] for r in batch]
    assert json.loads(resumed)["wiaResume"] == {"sequenceNumber": None, "values": 0, "found": 0,
                                                "settled": [[seq[1], seq[3]]]}
    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]

    assert _ids_in(out) == [refused["id"]] + [e["id"] for e in events] + [refused["id"]]
    assert set(fw.findings()) == {e["id"] for e in [refused, *events]}
    (dead,) = fw.dead_letters()
    assert dead["where"] == f"kinesis:{STREAM}:{seq[2]}:1" and dead["reason"].startswith("invalid: /data")
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


@pytest.mark.parametrize("settled", [[["SEQ0", "SEQ1"]], [["SEQ1", "SEQ0"]], "all", [["1", "SEQ1"]]])
def test_a_malformed_settled_run_is_dead_lettered(forwarder, samples, monkeypatch, settled):
    """A run must lie after the resume point, inside the range, first before last: a forged one that would
    skip records is refused (one dead letter), never trusted."""
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    put(setup.kinesis, [json.dumps(fresh(samples["alert-sample"])).encode()])      # sequence number 1: before
    batch = put(setup.kinesis, [json.dumps(fresh(samples["alert-sample"])).encode() for _ in range(3)])
    seq = {f"SEQ{i}": r["SequenceNumber"] for i, r in enumerate(batch)}
    runs = settled if isinstance(settled, str) else [[seq.get(n, n) for n in run] for run in settled]
    resume = {"sequenceNumber": seq["SEQ0"], "values": 0, "found": 1, "settled": runs}
    body = {**json.loads(failure_record(setup.kinesis, batch)), "wiaResume": resume}
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=json.dumps(body))

    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]

    assert fw.findings() == {}
    (dead,) = fw.dead_letters()
    assert dead["reason"].startswith("unparseable input: Kinesis failure record: wiaResume.settled is not a list")


def test_settled_runs_past_the_cap_do_not_make_a_new_message_on_every_receive(forwarder, samples, monkeypatch, tmp_path):
    """MAX_SETTLED_RUNS set to 1; Security Hub refuses two events for ever, each followed by a deliverable
    one. Receive 1 settles both deliverable records but keeps only the first run; later receives settle
    the second again (past the cap), which must not count as progress: the message comes back until its
    last receive (3), where the refused events are dead-lettered. The first deliverable event reaches the
    file once, the second on each of the 4 receives (the cost of the cap), nothing is lost."""
    from wia_lambda import stream_recovery
    monkeypatch.setattr(stream_recovery, "MAX_SETTLED_RUNS", 1)
    out = tmp_path / "out.ndjson"
    fw = forwarder(SECURITYHUB + f'[destinations.archive]\nurl = "file://{out}"\n')
    setup = Setup(fw, monkeypatch)
    refused1, kept, refused2, past_cap = [fresh(samples["alert-sample"]) for _ in range(4)]
    for event in (refused1, refused2):
        fw.aws.securityhub.state.fail_finding(event["id"], "InternalException", "busy", times=1000)
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in (refused1, kept, refused2, past_cap)])
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))

    responses = setup.poll(rounds=8)

    assert [len(r["batchItemFailures"]) for r in responses] == [0, 1, 1, 0]
    ids = _ids_in(out)
    assert ids.count(kept["id"]) == 1 and ids.count(past_cap["id"]) == 4
    assert set(fw.findings()) == {kept["id"], past_cap["id"]}
    dead = fw.dead_letters()
    assert sorted(d["event"]["id"] for d in dead) == sorted([refused1["id"], refused2["id"]])
    assert all(d["reason"].startswith("gave up on the last receive") for d in dead)
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_a_failure_record_nested_too_deep_is_dead_lettered_not_a_failed_invocation(forwarder, samples, monkeypatch):
    """A message on the failure queue naming KinesisBatchInfo and nested 5,000 levels deep (10 KB; anyone
    allowed to SendMessage on the queue): the standard library's parser raises RecursionError, not a
    ValueError. It is read as an ingest message and dead-lettered naming the nesting, beside a failure
    record recovered in the same batch (helper 62). Before: the RecursionError escaped the handler, failing
    every message of the batch on every receive until the redrive queue took them all, reasons lost."""
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    event = fresh(samples["alert-sample"])
    batch = put(setup.kinesis, [json.dumps(event).encode()])
    deep = '{"KinesisBatchInfo": {}, "x": ' + "[" * 5000 + "]" * 5000 + "}"
    records = [{"messageId": f"m{i}", "receiptHandle": f"r{i}", "body": body, "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs", "eventSourceARN": setup.queue_arn, "awsRegion": "us-east-1"}
               for i, body in enumerate([deep, failure_record(setup.kinesis, batch)])]

    assert fw.handler({"Records": records}, None) == {"batchItemFailures": []}

    assert set(fw.findings()) == {event["id"]}
    (dead,) = fw.dead_letters()
    assert dead["reason"].startswith("unparseable input:") and "nesting deeper than" in dead["reason"]


def test_skipping_the_settled_values_of_a_resumed_record_stops_at_the_time_reserve(
        forwarder, samples, monkeypatch, clock, tmp_path):
    """A record of 12 values resumed after its 10th, each value taking 10 s to read (a record naming a
    large S3 object streams it): skipping the 10 settled ones runs into the 90 s to spend, and the reading
    stops there, handing nothing over after the reserve (the message comes back); with the whole 180 s,
    the next receive skips them and delivers the last two, once each (helper 62). Before: the skip never
    looked at the time and value 11 was handed over at 110 s, inside the reserve meant for the delivery
    under way and the dead-letter writes (a skip longer than the whole invocation: Lambda ends it, the
    message goes on to the redrive queue with no reason)."""
    from wia_lambda import stream_recovery
    fw, out = _file_forwarder(forwarder, tmp_path)
    setup = Setup(fw, monkeypatch)
    events = [fresh(samples["alert-sample"]) for _ in range(12)]
    batch = put(setup.kinesis, [ndjson(events)])
    body = {**json.loads(failure_record(setup.kinesis, batch)),
            "wiaResume": {"sequenceNumber": batch[0]["SequenceNumber"], "values": 10, "found": 1}}
    read_values = stream_recovery.body_items

    def slow_values(*args: Any, **kwargs: Any) -> Any:
        for item in read_values(*args, **kwargs):
            clock.now += 10.0
            yield item
    monkeypatch.setattr(stream_recovery, "body_items", slow_values)
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=json.dumps(body))

    (first,) = setup.poll(rounds=1, context=clock.context)

    assert len(first["batchItemFailures"]) == 1 and _ids_in(out) == []
    assert clock.spent() == 90.0
    monkeypatch.setenv("WIA_TIME_RESERVE", "0")
    assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]
    assert _ids_in(out) == [e["id"] for e in events[10:]] and fw.dead_letters() == []
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def _cut_in_an_s3_object(fw: Any, setup: Setup, samples: Any, clock: Clock, *, versioned: bool = False,
                         versioning_after: str | None = None) -> Any:
    """A Kinesis record naming an S3 object of 10 events; the first receive delivers 6 (chunks of two,
    40 s each, 90 s to spend) and resumes after them. `versioning_after` ("Enabled", "Suspended"): the
    bucket's versioning set after the object was written (its version is S3's "null" one). Returns (s3
    client, events, batch, notification, the slow sink)."""
    from types import SimpleNamespace
    s3 = fw.aws.client("s3")
    s3.create_bucket(Bucket="wia-ingest")
    if versioned:
        s3.put_bucket_versioning(Bucket="wia-ingest", VersioningConfiguration={"Status": "Enabled"})
    events = [fresh(samples["alert-sample"]) for _ in range(10)]
    s3.put_object(Bucket="wia-ingest", Key="alerts/1.ndjson", Body=ndjson(events))
    if versioning_after:
        s3.put_bucket_versioning(Bucket="wia-ingest", VersioningConfiguration={"Status": versioning_after})
    notification = json.dumps(shapes.s3_notification("wia-ingest", ["alerts/1.ndjson"])).encode()
    batch = put(setup.kinesis, [notification])
    relay = fw.module.runtime().relay
    relay.chunk_events = 2
    relay.sink = slow = SlowDestination(relay.sink, clock, 40.0)
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))
    assert setup.poll(rounds=1, context=clock.context) == [{"batchItemFailures": []}]
    return SimpleNamespace(s3=s3, events=events, batch=batch, notification=notification, slow=slow, relay=relay)


def _take_resumed(setup: Setup) -> dict[str, Any]:
    """The failure record with its resume point, taken off the failure queue."""
    (message,) = setup.sqs.receive_message(QueueUrl=setup.queue, MaxNumberOfMessages=10).get("Messages", [])
    setup.sqs.delete_message(QueueUrl=setup.queue, ReceiptHandle=message["ReceiptHandle"])
    return json.loads(message["Body"])


@pytest.mark.parametrize("change", ["unchanged", "rewritten longer", "rewritten shorter", "deleted",
                                    "versioned, rewritten longer", "versioned, version deleted"])
def test_a_resumed_record_reads_the_s3_object_version_it_read_before_or_says_what_changed(
        forwarder, samples, monkeypatch, clock, tmp_path, change):
    """The resume point pins the S3 objects a record cut in its middle had opened (ETag, and VersionId in a
    versioned bucket); the next receive skips the settled values only in that version (GetObject IfMatch /
    VersionId). Unchanged, or a versioned bucket's object rewritten: the pinned version's last 4 events are
    delivered, each event once in all. Rewritten in an unversioned bucket (longer or shorter), or the
    pinned version deleted: the object as it is now is read from its start (its first events sent again:
    duplicates over a silent loss), and one dead letter says what changed, that 6 values were settled and
    that values of the earlier version not yet delivered are lost unless it still holds them. Deleted: one
    dead letter saying so. Before: the first 6 values of whatever the key held now were skipped as
    settled, so an object rewritten longer lost its new values 1-6 (and more) with no dead letter."""
    fw, out = _file_forwarder(forwarder, tmp_path)
    setup = Setup(fw, monkeypatch)
    versioned = change.startswith("versioned")
    cut = _cut_in_an_s3_object(fw, setup, samples, clock, versioned=versioned)
    events, s3, key = cut.events, cut.s3, "alerts/1.ndjson"
    assert _ids_in(out) == [e["id"] for e in events[:6]]
    (resumed,) = setup.left_in(setup.queue)
    head = s3.head_object(Bucket="wia-ingest", Key=key)
    pin = {"bucket": "wia-ingest", "key": key, "eTag": head["ETag"],
           **({"versionId": head["VersionId"]} if versioned else {})}
    assert json.loads(resumed)["wiaResume"] == {"sequenceNumber": cut.batch[0]["SequenceNumber"], "values": 6,
                                                "found": 1, "objects": [pin]}
    more = [fresh(samples["alert-sample"]) for _ in range(4)]
    now = {"unchanged": events, "rewritten longer": events + more, "rewritten shorter": events[:3],
           "deleted": None, "versioned, rewritten longer": events + more,
           "versioned, version deleted": events + more}[change]
    if now is None:
        s3.delete_object(Bucket="wia-ingest", Key=key)
    elif now is not events:
        s3.put_object(Bucket="wia-ingest", Key=key, Body=ndjson(now))
    if change == "versioned, version deleted":
        s3.delete_object(Bucket="wia-ingest", Key=key, VersionId=head["VersionId"])
    cut.relay.sink = cut.slow.sink                          # the destination answers at once from now on

    assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]

    dead = fw.dead_letters()
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []
    if change in ("unchanged", "versioned, rewritten longer"):
        # the version read before, to its end: each of its events once, nothing to dead-letter
        assert _ids_in(out) == [e["id"] for e in events] and dead == []
        return
    (note,) = dead
    assert note["where"] == f"kinesis:{STREAM}:{cut.batch[0]['SequenceNumber']}:0"
    assert json.loads(note["raw"])["settledValues"] == 6 and json.loads(note["raw"])["eTag"] == head["ETag"]
    what = {"rewritten longer": f"was rewritten (its ETag is no longer {head['ETag']})",
            "rewritten shorter": f"was rewritten (its ETag is no longer {head['ETag']})",
            "deleted": "was deleted",
            "versioned, version deleted": f"lost the version read before ({head.get('VersionId')}: deleted)"}[change]
    then = ("its values not yet delivered are lost" if now is None else
            "it is read as it is now, from its start (values delivered before are sent again); values of the "
            "version read before that were not yet delivered are lost unless it still holds them")
    assert note["reason"] == (f"unparseable input: the S3 object s3://wia-ingest/{key} named by this record {what} "
                              "between two receives of its failure record, after 6 values of the record from it on "
                              f"were settled: {then}")
    # what the object holds now is delivered whole after the 6 delivered before: nothing of it skipped
    assert _ids_in(out) == [e["id"] for e in events[:6]] + [e["id"] for e in now or []]


@pytest.mark.parametrize("change, now", [("deleted", 1), ("rewritten with 6 events", 6)])
def test_a_resume_point_without_pinned_objects_dead_letters_what_its_record_no_longer_holds(
        forwarder, samples, monkeypatch, clock, tmp_path, change, now):
    """A resume point written before S3 objects were pinned (no `objects`: a message queued across an
    upgrade) trusts the object as it is now. A Kinesis record naming an S3 object of 10 events: the first
    receive delivers 6 and resumes after them (a cut leaves a value after it, so an unchanged object gives
    more than 6); the object is then deleted or rewritten shorter. The next receive finds 1 value (the
    object's not-found item) or 6 where 6 were settled: the record's content changed, and what was never
    delivered is one dead letter naming the record, the counts and the notification (helper 62)."""
    fw, out = _file_forwarder(forwarder, tmp_path)
    setup = Setup(fw, monkeypatch)
    cut = _cut_in_an_s3_object(fw, setup, samples, clock)
    events, s3 = cut.events, cut.s3
    assert _ids_in(out) == [e["id"] for e in events[:6]]
    body = _take_resumed(setup)
    assert body["wiaResume"]["values"] == 6
    del body["wiaResume"]["objects"]
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=json.dumps(body))
    if change == "deleted":
        s3.delete_object(Bucket="wia-ingest", Key="alerts/1.ndjson")
    else:
        s3.put_object(Bucket="wia-ingest", Key="alerts/1.ndjson", Body=ndjson(events[:6]))

    assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]

    assert _ids_in(out) == [e["id"] for e in events[:6]]
    (dead,) = fw.dead_letters()
    assert dead["where"] == f"kinesis:{STREAM}:{cut.batch[0]['SequenceNumber']}:0"
    assert dead["reason"] == (f"unparseable input: the record now gives {now} value{'s' if now > 1 else ''} "
                              "where 6 were settled on an earlier receive: what it names changed (an S3 object rewritten or deleted), and "
                              "its values not yet delivered are not known")
    assert json.loads(dead["raw"]) == json.loads(cut.notification)
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_a_record_cut_after_opening_more_objects_than_can_be_pinned_is_read_again_from_its_start(
        forwarder, samples, monkeypatch, clock, tmp_path):
    """MAX_PINNED_OBJECTS set to 1: a record naming two S3 objects of 4 events is cut after 6 values (the
    second object opened): its objects cannot all be pinned, so no resume point inside it is written and
    the message comes back; the next receive reads the record from its start. The file gets the first 6
    events twice and the last 2 once: repeats, never a skip of values that could have changed."""
    from wia_lambda import stream_recovery
    monkeypatch.setattr(stream_recovery, "MAX_PINNED_OBJECTS", 1)
    fw, out = _file_forwarder(forwarder, tmp_path)
    setup = Setup(fw, monkeypatch)
    s3 = fw.aws.client("s3")
    s3.create_bucket(Bucket="wia-ingest")
    events = [fresh(samples["alert-sample"]) for _ in range(8)]
    s3.put_object(Bucket="wia-ingest", Key="alerts/1.ndjson", Body=ndjson(events[:4]))
    s3.put_object(Bucket="wia-ingest", Key="alerts/2.ndjson", Body=ndjson(events[4:]))
    notification = shapes.s3_notification("wia-ingest", ["alerts/1.ndjson", "alerts/2.ndjson"])
    batch = put(setup.kinesis, [json.dumps(notification).encode()])
    relay = fw.module.runtime().relay
    relay.chunk_events = 2
    relay.sink = slow = SlowDestination(relay.sink, clock, 40.0)
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))

    (first,) = setup.poll(rounds=1, context=clock.context)

    assert len(first["batchItemFailures"]) == 1 and _ids_in(out) == [e["id"] for e in events[:6]]
    relay.sink = slow.sink
    assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]
    assert _ids_in(out) == [e["id"] for e in events[:6]] + [e["id"] for e in events] and fw.dead_letters() == []
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_a_record_cut_by_time_after_one_still_to_retry_goes_on_from_its_next_value(
        forwarder, samples, monkeypatch, clock, tmp_path):
    """Security Hub and a file, 40 s a chunk of two. Security Hub refuses the first record's event for the
    whole first receive (its 3 attempts; the file takes it); the next record, an NDJSON of 6, is cut by the
    time after its 5th value. The failure record goes on from a new message whose resume point has no
    settled head and a `cut`: that record, 5 values settled. The next receive hands over the refused event
    again and only the 6th value of the cut record: the file gets each of the 6 once (and the refused
    event twice, a fan-out's retry). Before: the cut record, after one still to retry, was sent again
    whole (its 5 settled events twice)."""
    out = tmp_path / "out.ndjson"
    fw = forwarder(SECURITYHUB + f'[destinations.archive]\nurl = "file://{out}"\n')
    setup = Setup(fw, monkeypatch)
    refused, *events = [fresh(samples["alert-sample"]) for _ in range(7)]
    fw.aws.securityhub.state.fail_finding(refused["id"], "InternalException", "busy", times=3)
    batch = put(setup.kinesis, [json.dumps(refused).encode(), ndjson(events)])
    relay = fw.module.runtime().relay
    relay.chunk_events = 2
    relay.sink = slow = SlowDestination(relay.sink, clock, 40.0)
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))

    (first,) = setup.poll(rounds=1, context=clock.context)

    assert first == {"batchItemFailures": []} and slow.sends == [2, 2, 2]
    assert _ids_in(out) == [refused["id"]] + [e["id"] for e in events[:5]]
    (resumed,) = setup.left_in(setup.queue)
    assert json.loads(resumed)["wiaResume"] == {"sequenceNumber": None, "values": 0, "found": 0, "cut": {
        "sequenceNumber": batch[1]["SequenceNumber"], "values": 5, "objects": []}}
    relay.sink = slow.sink

    assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]

    assert _ids_in(out) == [refused["id"]] + [e["id"] for e in events[:5]] + [refused["id"], events[5]["id"]]
    assert set(fw.findings()) == {e["id"] for e in [refused, *events]} and fw.dead_letters() == []
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_a_cut_record_not_reached_again_keeps_what_it_settled_when_the_head_moves(
        forwarder, samples, monkeypatch, clock, tmp_path):
    """As above with a first record of two events (Security Hub refuses the first on receive 1): receive 1
    cuts the NDJSON record of 6 after its 4th value. Receive 2 (100 s a chunk) settles the first record and
    runs out of time before the cut record: the new resume point's head is the first record and it keeps
    the cut. Receive 3 hands over only the cut record's last 2 values: each of its events once in the file."""
    out = tmp_path / "out.ndjson"
    fw = forwarder(SECURITYHUB + f'[destinations.archive]\nurl = "file://{out}"\n')
    setup = Setup(fw, monkeypatch)
    refused, other, *events = [fresh(samples["alert-sample"]) for _ in range(8)]
    fw.aws.securityhub.state.fail_finding(refused["id"], "InternalException", "busy", times=3)
    batch = put(setup.kinesis, [ndjson([refused, other]), ndjson(events)])
    relay = fw.module.runtime().relay
    relay.chunk_events = 2
    relay.sink = slow = SlowDestination(relay.sink, clock, 40.0)
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))
    seq = [r["SequenceNumber"] for r in batch]
    cut = {"sequenceNumber": seq[1], "values": 4, "objects": []}

    assert setup.poll(rounds=1, context=clock.context) == [{"batchItemFailures": []}]
    (resumed,) = setup.left_in(setup.queue)
    assert json.loads(resumed)["wiaResume"] == {"sequenceNumber": None, "values": 0, "found": 0, "cut": cut}
    slow.seconds = 100.0
    assert setup.poll(rounds=1, context=clock.context) == [{"batchItemFailures": []}]
    (resumed,) = setup.left_in(setup.queue)
    assert json.loads(resumed)["wiaResume"] == {"sequenceNumber": seq[0], "values": 0, "found": 1, "cut": cut}
    relay.sink = slow.sink

    assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]

    ids = [e["id"] for e in events]
    assert _ids_in(out) == [refused["id"], other["id"], *ids[:4], refused["id"], other["id"], *ids[4:]]
    assert set(fw.findings()) == {e["id"] for e in [refused, other, *events]} and fw.dead_letters() == []
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_a_resume_record_cut_in_its_middle_and_trimmed_since_dead_letters_its_lost_values(
        forwarder, samples, monkeypatch):
    """moto keeps every record, so a trimmed record is a sequence number no record has: the range starts
    just below the shard's first record and a resume point names that number, cut after 3 of its values.
    Reading AT it starts at the next record: the three records still there are delivered, and the record
    cut in its middle is one dead letter saying its values after the 3 settled are lost (it was counted
    when it was cut, so found == batchSize and there is no loss dead letter). Before: nothing said so."""
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    events = [fresh(samples["alert-sample"]) for _ in range(3)]
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in events])
    below = str(int(batch[0]["SequenceNumber"]) - 1)
    body = {**json.loads(failure_record(setup.kinesis, batch, startSequenceNumber=below, batchSize=4)),
            "wiaResume": {"sequenceNumber": below, "values": 3, "found": 1, "objects": []}}
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=json.dumps(body))

    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]

    assert set(fw.findings()) == {e["id"] for e in events}
    (dead,) = fw.dead_letters()
    info = body["KinesisBatchInfo"]
    assert dead["where"] == f"kinesis:{STREAM}:{below}:0"
    assert dead["reason"] == (f"unparseable input: the record {below} (shard {info['shardId']} of {info['streamArn']}, "
                              f"sequence numbers {below} to {info['endSequenceNumber']}) is no longer in the stream "
                              "(trimmed after its retention period, or the shard or stream is gone): 3 of its values "
                              "were settled on an earlier receive, and the ones after them are lost")
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


INVALID_ARGUMENT = json.dumps({"__type": "InvalidArgumentException", "message": "StartingSequenceNumber is older "
                               "than the trim horizon"}).encode()
INVALID_ARGUMENT_HEADERS = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": "InvalidArgumentException"}


@pytest.mark.parametrize("resumed", [False, True])
def test_a_refused_starting_sequence_number_reads_on_from_the_trim_horizon(
        forwarder, samples, monkeypatch, throttling, resumed):
    """Kinesis refuses the sequence number the reading starts at (InvalidArgumentException: trimmed, the
    fault proxy's answer in front of moto): the shard is read from its trim horizon and only the range's
    records from the starting point on are handed over (not the record before the range, nor the one the
    resume point settled): the rest of the range is delivered, found == batchSize, no dead letter. Before:
    the whole rest of the range was one loss dead letter though its records were still there."""
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    before = fresh(samples["alert-sample"])
    events = [fresh(samples["alert-sample"]) for _ in range(3)]
    put(setup.kinesis, [json.dumps(before).encode()])
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in events])
    body = json.loads(failure_record(setup.kinesis, batch))
    if resumed:                                 # the first record settled on an earlier receive
        body["wiaResume"] = {"sequenceNumber": batch[0]["SequenceNumber"], "values": 0, "found": 1}
    throttling.add(Fault("reply", status=400, headers=INVALID_ARGUMENT_HEADERS, body=INVALID_ARGUMENT))
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=json.dumps(body))

    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]

    assert throttling.unused() == []
    assert [t for t, _ in _targets(throttling)][:2] == ["GetShardIterator", "GetShardIterator"]
    assert set(fw.findings()) == {e["id"] for e in events[1 if resumed else 0:]} and fw.dead_letters() == []
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_a_resume_point_stays_under_the_sqs_message_size_when_its_pins_would_not(
        forwarder, samples, monkeypatch, clock, tmp_path):
    """The failure queue at 256 KiB (SQS's default before 2025: a queue keeps the size it was created with,
    and the template sets none). A first record of one event, then a record naming 100 S3 objects whose keys
    are 254 emoji after a number (1,019 UTF-8 bytes, within S3's 1,024; 3 KB each as JSON escapes them): the second
    is cut by the time after 104 of its values, inside its 100th object. Pinning its 100 objects would make
    a resume point of over 300 KB, which SQS refuses: the record is resumed at its start instead (as past
    MAX_PINNED_OBJECTS), and the resume point after the first record is written. The next receive sends
    the first event no more (once in the file) and the second record's values again from its start (repeats,
    never a skip). Before: the SendMessage of the oversized point failed, the message came back, and the
    first record was handed over again on every receive."""
    fw, out = _file_forwarder(forwarder, tmp_path)
    setup = Setup(fw, monkeypatch)
    setup.sqs.set_queue_attributes(QueueUrl=setup.queue, Attributes={"MaximumMessageSize": "262144"})
    s3 = fw.aws.client("s3")
    s3.create_bucket(Bucket="wia-ingest")
    first, *events = [fresh(samples["alert-sample"]) for _ in range(1 + 99 + 10)]
    keys = [f"{i:03d}" + "\U0001F600" * 254 for i in range(100)]
    for key, content in zip(keys, [[e] for e in events[:99]] + [events[99:]]):
        s3.put_object(Bucket="wia-ingest", Key=key, Body=ndjson(content))
    notification = shapes.s3_notification("wia-ingest", keys)
    batch = put(setup.kinesis, [json.dumps(first).encode(), json.dumps(notification).encode()])
    relay = fw.module.runtime().relay
    relay.chunk_events = 35
    relay.sink = slow = SlowDestination(relay.sink, clock, 40.0)
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))

    (response,) = setup.poll(rounds=1, context=clock.context)

    assert response == {"batchItemFailures": []} and slow.sends == [35, 35, 35]
    assert _ids_in(out) == [e["id"] for e in [first, *events[:104]]]
    (resumed,) = setup.left_in(setup.queue)
    assert json.loads(resumed)["wiaResume"] == {"sequenceNumber": batch[0]["SequenceNumber"], "values": 0,
                                                "found": 1}
    relay.sink = slow.sink

    assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]

    assert _ids_in(out) == [e["id"] for e in [first, *events[:104], *events]] and fw.dead_letters() == []
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_the_largest_resume_point_the_forwarder_writes_fits_in_an_sqs_message():
    """The most a resume point holds: two pinned lists (the settled head's and the cut's) each just under
    MAX_PINS_BYTES, MAX_SETTLED_RUNS runs of the longest sequence numbers, in a failure record of Lambda's
    shape with a long stream ARN: under MAX_MESSAGE_BYTES (256 KiB), so SQS takes it."""
    from wia_lambda import stream_recovery as recovery
    from wia_lambda.payloads import ObjectVersion
    longest = "9" * 129                                 # the Kinesis API's sequence number pattern allows 129 digits
    pins: list[ObjectVersion] = []
    for i in range(recovery.MAX_PINNED_OBJECTS):
        pin = ObjectVersion("b" * 63, f"{i:03d}" + "\U0001F600" * 255, '"' + "f" * 32 + '-10000"', "v" * 32)
        if not recovery._pinnable([*pins, pin]):
            break
        pins.append(pin)
    assert len(recovery.json.dumps(recovery._pins_json(pins))) > recovery.MAX_PINS_BYTES - 4_000
    arn = f"arn:aws:kinesis:us-east-1:{shapes.ACCOUNT}:stream/{'s' * 128}"
    document = {"requestContext": {"requestId": "c9b8fa9f-5a7f-4a1b-af9c-0c604cde93a5", "functionArn":
                                   f"arn:aws:lambda:us-east-1:{shapes.ACCOUNT}:function:{'f' * 64}:$LATEST",
                                   "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                "version": "1.0", "timestamp": "2026-12-05T08:38:06.021Z",
                "KinesisBatchInfo": {"shardId": "shardId-000000000000", "startSequenceNumber": "1" + "0" * 128,
                                     "endSequenceNumber": longest, "approximateArrivalOfFirstRecord":
                                     "2026-12-05T08:38:06.021Z", "approximateArrivalOfLastRecord":
                                     "2026-12-05T08:38:06.021Z", "batchSize": 10_000, "streamArn": arn}}
    info = recovery.batch_info(document)
    runs = tuple((int(longest) - 3 * i - 1, int(longest) - 3 * i) for i in range(recovery.MAX_SETTLED_RUNS, 0, -1))
    point = recovery.Resume("2" + "0" * 128, 1 << 31, 10_000, runs, tuple(pins),
                            recovery.Cut("3" + "0" * 128, 1 << 31, tuple(pins)))
    body = recovery.Reading("m", "", document, info, None).resumed_body(point)
    assert recovery.resume_of(recovery.json.loads(body), info) == point        # a point it reads back
    assert len(body.encode()) <= recovery.MAX_MESSAGE_BYTES


@pytest.mark.parametrize("member, forged", [
    ("eTag", '"0f343b0931126a20f133d67c2b018a3b"\r\nx-amz-server-side-encryption: AES256'),   # a header injected
    ("eTag", "*"),                                      # If-Match's "any object": would pass for a rewritten one
    ("eTag", 'W/"0f343b0931126a20f133d67c2b018a3b"'),   # weak: never S3's
    ("versionId", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY\n"),
])
def test_a_resume_point_pinning_an_etag_or_version_s3_never_gives_is_dead_lettered_naming_it(
        forwarder, samples, monkeypatch, clock, tmp_path, member, forged):
    """A record naming an S3 object cut after 6 of its 10 values; its resume point is forged (anyone allowed
    to SendMessage on the queue) with a pin whose ETag or VersionId no GetObject can carry or S3 ever gives.
    It is one dead letter naming `wiaResume.objects`, as any malformed resume point. Before: it was taken
    as is; a CR LF made botocore refuse the request (HTTPClientError: Invalid header value) on every
    receive, so the message came back until its last and the rest of the batch was given up whole; `*`
    matched whatever the key holds now."""
    fw, out = _file_forwarder(forwarder, tmp_path)
    setup = Setup(fw, monkeypatch)
    cut = _cut_in_an_s3_object(fw, setup, samples, clock, versioned=True)
    body = _take_resumed(setup)
    (pin,) = body["wiaResume"]["objects"]
    pin[member] = forged
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=json.dumps(body))
    cut.relay.sink = cut.slow.sink

    assert setup.poll(rounds=MAX_RECEIVES + 1, context=clock.context) == [{"batchItemFailures": []}]

    assert _ids_in(out) == [e["id"] for e in cut.events[:6]]
    (dead,) = fw.dead_letters()
    assert dead["reason"].startswith("unparseable input: Kinesis failure record: wiaResume.objects is not a list")
    assert json.loads(dead["raw"]) == body
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_a_pin_the_reader_would_refuse_is_never_written():
    """What the forwarder writes it must read back: an ETag or VersionId `_pins_of` refuses (an S3-compatible
    store answering an unquoted or weak ETag) makes the record's objects unpinnable, so it is resumed at its
    start (repeats) instead of a resume point the next receive dead-letters as malformed."""
    from wia_lambda import stream_recovery as recovery
    from wia_lambda.payloads import ObjectVersion
    good = ObjectVersion("wia-ingest", "alerts/1.ndjson", '"0f343b0931126a20f133d67c2b018a3b-2"', "3/L4kqtJlcp+X")
    assert recovery._pinnable([good, ObjectVersion("wia-ingest", "gone.ndjson", None)])
    for etag, version in [("0f343b0931126a20f133d67c2b018a3b", None), ('W/"0f34"', None), ('"0f34"', "a b")]:
        assert not recovery._pinnable([good, ObjectVersion("wia-ingest", "alerts/2.ndjson", etag, version)])


def test_a_resume_point_without_pins_carried_to_a_new_message_stays_without_pins(
        forwarder, samples, monkeypatch, tmp_path):
    """A resume point written before objects were pinned (a message queued across an upgrade): a record
    naming an S3 object of 10 events, 6 settled. Security Hub refuses its 8th event on the first receive,
    the record after it (one event) is settled: the new message keeps the point as it was (no `objects`:
    the object trusted as it is now) with that record's run. The next receive skips the 6 again and sends
    events 7-10 once more (the record still to retry), with no dead letter. Before: the point was carried
    with `"objects": []`, pins of no object, so the next receive took the object for one not pinned: a
    dead letter saying values may be lost, and the 6 settled events sent again."""
    out = tmp_path / "out.ndjson"
    fw = forwarder(SECURITYHUB + f'[destinations.archive]\nurl = "file://{out}"\n')
    setup = Setup(fw, monkeypatch)
    s3 = fw.aws.client("s3")
    s3.create_bucket(Bucket="wia-ingest")
    events = [fresh(samples["alert-sample"]) for _ in range(10)]
    after = fresh(samples["alert-sample"])
    s3.put_object(Bucket="wia-ingest", Key="alerts/1.ndjson", Body=ndjson(events))
    fw.aws.securityhub.state.fail_finding(events[7]["id"], "InternalException", "busy", times=3)
    notification = shapes.s3_notification("wia-ingest", ["alerts/1.ndjson"])
    batch = put(setup.kinesis, [json.dumps(notification).encode(), json.dumps(after).encode()])
    seq = [r["SequenceNumber"] for r in batch]
    old = {"sequenceNumber": seq[0], "values": 6, "found": 1}
    body = {**json.loads(failure_record(setup.kinesis, batch)), "wiaResume": old}
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=json.dumps(body))

    assert setup.poll(rounds=1) == [{"batchItemFailures": []}]
    (resumed,) = setup.left_in(setup.queue)
    assert json.loads(resumed)["wiaResume"] == {**old, "settled": [[seq[1], seq[1]]]}

    assert setup.poll(rounds=2) == [{"batchItemFailures": []}]

    ids = [e["id"] for e in events[6:]]
    assert _ids_in(out) == [*ids, after["id"], *ids] and fw.dead_letters() == []
    assert set(fw.findings()) == {e["id"] for e in [*events[6:], after]}
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your '
             b'request rate.</Message></Error>')


def test_a_pinned_read_s3_throttles_throughout_is_retried_not_dead_lettered_nor_skipped(
        forwarder, samples, monkeypatch, clock, tmp_path, aws):
    """S3 in front of the fault proxy: the pinned GetObject of a resumed record (cut after 6 of its object's
    10 events) is answered 503 SlowDown on each of the SDK's 3 tries. That is neither a change nor a loss:
    the message is reported back with nothing handed over and no dead letter; the next receive reads the
    pinned version and delivers events 7-10, each event once in all."""
    with FaultProxy(aws.moto.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)       # the forwarder's S3 client, not the test's
        fw, out = _file_forwarder(forwarder, tmp_path)
        setup = Setup(fw, monkeypatch)
        cut = _cut_in_an_s3_object(fw, setup, samples, clock)
        assert _ids_in(out) == [e["id"] for e in cut.events[:6]]
        cut.relay.sink = cut.slow.sink
        proxy.add(*[Fault("reply", status=503, headers={"Content-Type": "application/xml"}, body=SLOW_DOWN,
                          path="/wia-ingest/alerts/1.ndjson", method="GET") for _ in range(3)])

        (response,) = setup.poll(rounds=1, context=clock.context)

        assert len(response["batchItemFailures"]) == 1 and proxy.unused() == []
        assert [s.headers.get("If-Match") for s in proxy.seen if s.fault] == [
            cut.s3.head_object(Bucket="wia-ingest", Key="alerts/1.ndjson")["ETag"]] * 3
        assert _ids_in(out) == [e["id"] for e in cut.events[:6]] and fw.dead_letters() == []

        assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]

    assert _ids_in(out) == [e["id"] for e in cut.events] and fw.dead_letters() == []
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_a_pinned_read_answered_with_another_object_is_taken_for_a_change_not_skipped(
        forwarder, samples, monkeypatch, clock, tmp_path, aws):
    """An endpoint that ignores If-Match (an S3-compatible store, a caching proxy; the fault proxy here)
    answers the pinned GetObject with what the key holds now: 200, another ETag. The object was rewritten
    longer (14 events) after 6 of its 10 were settled: the answer's ETag is not the pinned one, so it is a
    change (read from its start, one dead letter saying so), never a skip of the new object's first 6 values.
    Before: the 200 was trusted and new values 1-6 (4 of them never delivered) skipped with no record."""
    with FaultProxy(aws.moto.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        fw, out = _file_forwarder(forwarder, tmp_path)
        setup = Setup(fw, monkeypatch)
        cut = _cut_in_an_s3_object(fw, setup, samples, clock)
        head = cut.s3.head_object(Bucket="wia-ingest", Key="alerts/1.ndjson")
        now = [*[fresh(samples["alert-sample"]) for _ in range(4)], *cut.events]
        cut.s3.put_object(Bucket="wia-ingest", Key="alerts/1.ndjson", Body=ndjson(now))
        cut.relay.sink = cut.slow.sink

        def if_match_ignored(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
            current = cut.s3.get_object(Bucket="wia-ingest", Key="alerts/1.ndjson")
            data = current["Body"].read()
            return 200, {"ETag": current["ETag"], "Content-Type": "application/octet-stream"}, data
        proxy.add(Fault("rewrite", rewrite=if_match_ignored, path="/wia-ingest/alerts/1.ndjson", method="GET"))

        assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]

        (ignored,) = [s for s in proxy.seen if s.fault]
        assert proxy.unused() == [] and ignored.headers.get("If-Match") == head["ETag"]
    assert _ids_in(out) == [e["id"] for e in [*cut.events[:6], *now]]
    (note,) = fw.dead_letters()
    assert note["reason"].startswith("unparseable input: the S3 object s3://wia-ingest/alerts/1.ndjson named by this "
                                     f"record was rewritten (its ETag is no longer {head['ETag']})")
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_contract_a_pinned_object_deleted_under_a_role_without_list_bucket_is_named_on_the_last_receive(
        forwarder, samples, monkeypatch, clock, tmp_path, aws):
    """On AWS a role without s3:ListBucket on the bucket gets 403 AccessDenied, not 404 NoSuchKey, for a
    GetObject of a deleted key (the S3 contract layer answers so; moto answers 404). A record cut after 6 of
    its object's 10 events, the object deleted: the pinned read is refused on every receive, which cannot be
    told from a read the role is refused, so the message is reported back with nothing handed over (the
    reason names both causes); on its last receive the object is given up as the record's one dead letter
    naming AccessDenied, s3:ListBucket and the 6 values settled, and the message settles. Before: it was
    retried to its last receive and dead-lettered whole ('gave up on the last receive'), the object never
    named as deleted."""
    with S3Grants(aws.moto.url, list_bucket=False) as s3_as_the_role:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_as_the_role.url)   # the forwarder's S3 client, not the test's
        fw, out = _file_forwarder(forwarder, tmp_path)
        setup = Setup(fw, monkeypatch)
        cut = _cut_in_an_s3_object(fw, setup, samples, clock)
        head = cut.s3.head_object(Bucket="wia-ingest", Key="alerts/1.ndjson")
        cut.s3.delete_object(Bucket="wia-ingest", Key="alerts/1.ndjson")
        cut.relay.sink = cut.slow.sink

        before_last = setup.poll(rounds=MAX_RECEIVES - 1, context=clock.context)

        assert [len(r["batchItemFailures"]) for r in before_last] == [1] * (MAX_RECEIVES - 1)
        assert len(s3_as_the_role.denied) == MAX_RECEIVES - 1 and fw.dead_letters() == []
        assert _ids_in(out) == [e["id"] for e in cut.events[:6]]

        assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]

    (note,) = fw.dead_letters()
    assert note["where"] == f"kinesis:{STREAM}:{cut.batch[0]['SequenceNumber']}:0"
    assert note["reason"] == (
        "unparseable input: the S3 object s3://wia-ingest/alerts/1.ndjson named by this record was deleted or cannot "
        "be read by the function: S3 answered AccessDenied to its read on each receive up to the last (what S3 "
        "answers for a missing key to a role without s3:ListBucket on the bucket) between two receives of its "
        "failure record, after 6 values of the record from it on were settled: its values not yet delivered are "
        "not forwarded (still in the object if it is there)")
    assert json.loads(note["raw"]) == {"bucket": "wia-ingest", "key": "alerts/1.ndjson", "eTag": head["ETag"],
                                       "versionId": None, "settledValues": 6, "change": "AccessDenied"}
    assert _ids_in(out) == [e["id"] for e in cut.events[:6]]
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


@pytest.mark.parametrize("change", ["unchanged", "rewritten"])
def test_contract_a_pinned_version_the_role_may_not_read_by_version_id_is_read_by_its_etag(
        forwarder, samples, monkeypatch, clock, tmp_path, aws, change):
    """A versioned bucket the template does not create, its role granted s3:GetObject (and s3:ListBucket)
    but not s3:GetObjectVersion: S3 answers the pinned read by VersionId 403 AccessDenied (the contract
    layer). The pin's ETag still tells the version apart: read by If-Match alone, an unchanged object is
    skipped to event 7 and events 7-10 delivered, each event once in all; a rewritten one fails If-Match
    (412) and is a change, read as it is now from its start with one dead letter saying so. Before: the
    denied read was retried to the message's last receive and the record dead-lettered whole."""
    with S3Grants(aws.moto.url, list_bucket=True, get_object_version=False) as s3_as_the_role:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_as_the_role.url)
        fw, out = _file_forwarder(forwarder, tmp_path)
        setup = Setup(fw, monkeypatch)
        cut = _cut_in_an_s3_object(fw, setup, samples, clock, versioned=True)
        head = cut.s3.head_object(Bucket="wia-ingest", Key="alerts/1.ndjson")
        now = [*[fresh(samples["alert-sample"]) for _ in range(4)], *cut.events]
        if change == "rewritten":
            cut.s3.put_object(Bucket="wia-ingest", Key="alerts/1.ndjson", Body=ndjson(now))
        cut.relay.sink = cut.slow.sink

        assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]

        assert s3_as_the_role.denied == [f"/wia-ingest/alerts/1.ndjson?versionId={head['VersionId']}"]
    if change == "unchanged":
        assert _ids_in(out) == [e["id"] for e in cut.events] and fw.dead_letters() == []
    else:
        (note,) = fw.dead_letters()
        assert note["reason"].startswith("unparseable input: the S3 object s3://wia-ingest/alerts/1.ndjson named by "
                                         f"this record was rewritten (its ETag is no longer {head['ETag']})")
        assert _ids_in(out) == [e["id"] for e in [*cut.events[:6], *now]]
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


@pytest.mark.parametrize("bucket, change", [("enabled after the write", "unchanged"),
                                            ("enabled after the write", "rewritten"),
                                            ("enabled after the write", "null version deleted"),
                                            ("suspended after the write", "rewritten"),
                                            ("never versioned", "unchanged")])
def test_contract_an_object_written_before_versioning_is_pinned_by_its_null_version(
        forwarder, samples, monkeypatch, clock, tmp_path, aws, bucket, change):
    """An object written before its bucket's versioning was set has S3's version "null" (GetObject answers
    x-amz-version-id: null, which the contract layer adds where moto sends none) and is read again with
    VersionId=null. The bucket's versioning enabled after the write: the object rewritten since is a new
    version on top of the null one, so the null version is read on to its end (events 7-10 of it, each
    event once in all, no dead letter), as any pinned version; the null version deleted is a change naming
    it. Suspended: a rewrite replaces the null version in place, so If-Match fails and it is a change. A
    bucket never versioned answers no VersionId, and the pin is its ETag alone. Before: "null" was never
    pinned, so a rewrite in a versioned bucket was taken for a change (its first 6 events sent twice and a
    dead letter) where the version read before was still there to read."""
    with S3Grants(aws.moto.url, list_bucket=True, get_object_version=True) as s3_as_the_role:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_as_the_role.url)
        fw, out = _file_forwarder(forwarder, tmp_path)
        setup = Setup(fw, monkeypatch)
        after = {"enabled after the write": "Enabled", "suspended after the write": "Suspended"}.get(bucket)
        cut = _cut_in_an_s3_object(fw, setup, samples, clock, versioning_after=after)
        key, events = "alerts/1.ndjson", cut.events
        etag = cut.s3.head_object(Bucket="wia-ingest", Key=key)["ETag"]
        (resumed,) = setup.left_in(setup.queue)
        assert json.loads(resumed)["wiaResume"]["objects"] == [
            {"bucket": "wia-ingest", "key": key, "eTag": etag, **({"versionId": "null"} if after else {})}]
        now = [*[fresh(samples["alert-sample"]) for _ in range(4)], *events]
        if change == "rewritten":
            cut.s3.put_object(Bucket="wia-ingest", Key=key, Body=ndjson(now))
        elif change == "null version deleted":
            cut.s3.put_object(Bucket="wia-ingest", Key=key, Body=ndjson(now))
            cut.s3.delete_object(Bucket="wia-ingest", Key=key, VersionId="null")
        cut.relay.sink = cut.slow.sink

        assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]

        pinned = [s.path for s in s3_as_the_role.seen if s.headers.get("If-Match") == etag]
        assert pinned == [f"/wia-ingest/{key}" + ("?versionId=null" if after else "")]
    if (bucket, change) in (("enabled after the write", "unchanged"), ("enabled after the write", "rewritten"),
                            ("never versioned", "unchanged")):
        assert _ids_in(out) == [e["id"] for e in events] and fw.dead_letters() == []
    else:
        (note,) = fw.dead_letters()
        what = ("lost the version read before (null: deleted)" if change == "null version deleted"
                else f"was rewritten (its ETag is no longer {etag})")
        assert note["reason"].startswith("unparseable input: the S3 object s3://wia-ingest/alerts/1.ndjson named by "
                                         f"this record {what}")
        assert json.loads(note["raw"])["versionId"] == "null"
        assert _ids_in(out) == [e["id"] for e in [*events[:6], *now]]
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def _slow_read(clock: Clock, key: str, seconds: float) -> Fault:
    """A GetObject of `key` (moto's answer, as it is) taking `seconds` of the invocation."""
    def answer(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        clock.now += seconds
        return status, headers, body
    return Fault("rewrite", rewrite=answer, path=f"/wia-ingest/{key}", method="GET")


@pytest.mark.parametrize("slow, spent_each", [
    ({"a.ndjson": [50.0], "b.ndjson": [50.0]}, [50.0, 50.0, 0.0]),
    ({"a.ndjson": [50.0, 50.0, 50.0], "b.ndjson": [30.0]}, [50.0, 80.0, 50.0])])
def test_an_s3_read_that_could_end_inside_the_time_reserve_is_not_started_and_the_record_resumes_before_it(
        forwarder, samples, monkeypatch, clock, tmp_path, aws, slow, spent_each):
    """A Kinesis record naming three S3 objects of 2 events each; S3 (the fault proxy in front of moto) takes
    50 s to answer a GetObject of a.ndjson (and b.ndjson), 90 s to spend. First receive: a.ndjson read (50 s)
    and its 2 events handed over; b.ndjson's read, counted as long as the slowest S3 read of the reading,
    could end inside the reserve (40 s left), so it is not started: the record is cut after 2 values and
    resumes from a new message (pinning a.ndjson), the invocation having spent 50 s. Second receive: a.ndjson
    skipped (read again in 50 s in the second case), b.ndjson read (nothing handed over yet on this receive,
    so it is started while time is left, even when the slowest read so far would not fit: not starting it
    would make no progress, receive after receive) and handed over, c.ndjson not started; third: c.ndjson.
    Each event once, no dead letter, no receive past its 90 s. Before: the S3 reads were not weighed against
    the time, b.ndjson was read from 50 s to 100 s, 10 s into the reserve kept for the delivery under way and
    the dead-letter writes (a read slow enough lets Lambda end the invocation, its progress lost)."""
    with FaultProxy(aws.moto.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        fw, out = _file_forwarder(forwarder, tmp_path)
        setup = Setup(fw, monkeypatch)
        s3 = fw.aws.client("s3")
        s3.create_bucket(Bucket="wia-ingest")
        keys = ("a.ndjson", "b.ndjson", "c.ndjson")
        events = {key: [fresh(samples["alert-sample"]) for _ in range(2)] for key in keys}
        for key, objects in events.items():
            s3.put_object(Bucket="wia-ingest", Key=key, Body=ndjson(objects))
        batch = put(setup.kinesis, [json.dumps(shapes.s3_notification("wia-ingest", list(events))).encode()])
        proxy.add(*[_slow_read(clock, key, seconds) for key, times in slow.items() for seconds in times])
        setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))
        spent, resumed = [], []
        for _ in range(5):                                  # receive until the failure queue is empty
            responses = setup.poll(rounds=1, context=clock.context)
            if not responses:
                break
            assert responses == [{"batchItemFailures": []}]
            spent.append(clock.spent())
            resumed += [json.loads(b)["wiaResume"] for b in setup.left_in(setup.queue)]

        assert spent == spent_each and proxy.unused() == []
    assert [(r["values"], [o["key"] for o in r["objects"]]) for r in resumed] == [
        (2, ["a.ndjson"]), (4, ["a.ndjson", "b.ndjson"])]
    assert _ids_in(out) == [e["id"] for key in keys for e in events[key]]
    assert fw.dead_letters() == []
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []


def test_an_s3_read_of_the_next_record_that_could_end_inside_the_time_reserve_waits_for_the_next_message(
        forwarder, samples, monkeypatch, clock, tmp_path, aws):
    """Two Kinesis records, each naming an S3 object of 2 events that S3 takes 50 s to answer, 90 s to spend.
    First receive: record 1's object read (50 s) and delivered; record 2's read could end inside the reserve
    (40 s left, counted as 50 s) and values were handed over on this receive, so it is not started: record 2
    fails, and the rest is read from a new message after record 1, this invocation having spent 50 s. Second
    receive: record 2's object (nothing handed over yet, so it is started) and its 2 events. Each event
    once, no dead letter. Before (a read weighed only once values of its own record were handed over):
    record 2's read ran from 50 s to 100 s, into the reserve."""
    with FaultProxy(aws.moto.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        fw, out = _file_forwarder(forwarder, tmp_path)
        setup = Setup(fw, monkeypatch)
        s3 = fw.aws.client("s3")
        s3.create_bucket(Bucket="wia-ingest")
        keys = ("a.ndjson", "b.ndjson")
        events = {key: [fresh(samples["alert-sample"]) for _ in range(2)] for key in keys}
        for key, objects in events.items():
            s3.put_object(Bucket="wia-ingest", Key=key, Body=ndjson(objects))
        batch = put(setup.kinesis, [json.dumps(shapes.s3_notification("wia-ingest", [key])).encode() for key in keys])
        proxy.add(_slow_read(clock, "a.ndjson", 50.0), _slow_read(clock, "b.ndjson", 50.0))
        setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))

        assert setup.poll(rounds=1, context=clock.context) == [{"batchItemFailures": []}]
        assert clock.spent() == 50.0 and _ids_in(out) == [e["id"] for e in events["a.ndjson"]]
        (resumed,) = setup.left_in(setup.queue)
        assert json.loads(resumed)["wiaResume"] == {"sequenceNumber": batch[0]["SequenceNumber"], "values": 0,
                                                    "found": 1}
        assert setup.poll(rounds=2, context=clock.context) == [{"batchItemFailures": []}]
        assert clock.spent() == 50.0 and proxy.unused() == []

    assert _ids_in(out) == [e["id"] for key in keys for e in events[key]] and fw.dead_letters() == []
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []
