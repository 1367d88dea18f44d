"""AWS calls of the failure path whose answer never comes (not even its headers), through the handler with a
Lambda context (real time), against moto behind a fault proxy ("hang": the request is read and nothing answered
until the client hangs up, HANG_SECONDS at most; one hang, the next try is answered): a Kinesis read of the
failure record's batch, the resume point's SendMessage, and the dead-letter writes (the SQS queue the template sets,
and WIA_DEAD_LETTER=s3://).

Before: these calls used clients of botocore's own bounds (60 s connect and 60 s read timeouts per try; the
shared Kinesis and S3 clients 3 tries, the SQS dead letter's 1), while the invocation's time is weighed only
before a call starts: a hung call held the invocation past its end (Lambda stops it mid-write, and retries the
whole batch). Now each call's client fits the time left when it starts (settings.Clients.fitted: the Kinesis read
before the time reserve, the writes before the invocation's end, less handler.WRITE_MARGIN): the hung try is
given up within its bound, the SDK's next try is answered, and the invocation ends in its time."""
from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import lambda_events as shapes  # noqa: E402
import test_lambda_handler  # noqa: E402
from test_lambda_handler import SECURITYHUB, fresh, ndjson  # noqa: E402
from test_lambda_stream_recovery import Setup, _file_forwarder, _ids_in, failure_record, put  # noqa: E402

from servers.fault_proxy import Fault, FaultProxy  # noqa: E402

forwarder = test_lambda_handler.forwarder      # the fixture: the handler configured against moto
#: the Lambda context's time: a reserve of half of it (10 s), so 10 s are left for the reading
INVOCATION_SECONDS = 20.0
#: longer than the invocation: only the client's own bound ends the wait
HANG_SECONDS = 30.0


def passed() -> Fault:
    """A request forwarded and answered as it is (takes a fault's turn: the requests here all go to `/`)."""
    return Fault("rewrite", rewrite=lambda status, headers, body: (status, headers, body))


def invalid(event: dict) -> dict:
    return {**event, "severity": 42}


@pytest.fixture
def stalled(aws, monkeypatch):
    def start(service: str, *faults: Fault) -> FaultProxy:
        proxy = FaultProxy(aws.moto.url).start()
        proxy.add(*faults)
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service.upper()}", proxy.url)     # the forwarder's, not the test's
        proxies.append(proxy)
        return proxy
    proxies: list[FaultProxy] = []
    yield start
    for proxy in proxies:
        proxy.stop()


def test_a_kinesis_read_that_never_answers_during_recovery_is_given_up_in_time_and_the_batch_delivered(
        forwarder, samples, monkeypatch, tmp_path, stalled):
    fw, out = _file_forwarder(forwarder, tmp_path)
    setup = Setup(fw, monkeypatch)
    events = [fresh(samples["alert-sample"]) for _ in range(3)]
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in events])
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))
    # GetShardIterator answered, the first GetRecords hung
    proxy = stalled("kinesis", passed(), Fault("hang", seconds=HANG_SECONDS))

    started = time.monotonic()
    responses = setup.poll(rounds=1, context=lambda: shapes.LambdaContext(INVOCATION_SECONDS))
    elapsed = time.monotonic() - started

    assert proxy.hangs_abandoned_after(1) == 1                    # the forwarder hung up on the read
    assert elapsed < INVOCATION_SECONDS, elapsed                  # before: 30 s, the hang's own end
    assert responses == [{"batchItemFailures": []}]
    assert _ids_in(out) == [e["id"] for e in events]
    targets = [s.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1] for s in proxy.seen]
    assert targets[:3] == ["GetShardIterator", "GetRecords", "GetRecords"], targets


def test_an_sqs_dead_letter_write_that_never_answers_is_given_up_in_time_and_written_on_the_next_try(
        forwarder, samples, tmp_path, stalled):
    fw, out = _file_forwarder(forwarder, tmp_path)
    # GetQueueAttributes (the queue's message limit) answered, the first SendMessageBatch hung
    proxy = stalled("sqs", passed(), Fault("hang", seconds=HANG_SECONDS))
    good, bad = fresh(samples["alert-sample"]), invalid(fresh(samples["alert-sample"]))
    sqs = fw.aws.client("sqs")
    ingest = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]
    event = shapes.sqs_event(sqs, ingest, [ndjson([good, bad]).decode()])

    started = time.monotonic()
    response = fw.handler(event, shapes.LambdaContext(INVOCATION_SECONDS))
    elapsed = time.monotonic() - started

    assert proxy.hangs_abandoned_after(1) == 1
    assert elapsed < INVOCATION_SECONDS, elapsed                  # before: 30 s, then the message reported back
    assert response == {"batchItemFailures": []}
    assert _ids_in(out) == [good["id"]]
    [dead] = fw.dead_letters()
    assert dead["event"]["id"] == bad["id"] and dead["reason"].startswith("invalid: /severity")
    targets = [s.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1] for s in proxy.seen]
    assert targets == ["GetQueueAttributes", "SendMessageBatch", "SendMessageBatch"], targets


def test_an_s3_dead_letter_write_that_never_answers_is_given_up_in_time_and_written_on_the_next_try(
        forwarder, samples, tmp_path, stalled):
    fw, out = _file_forwarder_with_s3_dead_letter(forwarder, tmp_path)
    client = fw.aws.client("s3")
    client.create_bucket(Bucket="wia-dead")
    proxy = stalled("s3", Fault("hang", seconds=HANG_SECONDS, path="/wia-dead/letters/", method="PUT"))
    good, bad = fresh(samples["alert-sample"]), invalid(fresh(samples["alert-sample"]))
    sqs = fw.aws.client("sqs")
    ingest = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]
    event = shapes.sqs_event(sqs, ingest, [ndjson([good, bad]).decode()])

    started = time.monotonic()
    response = fw.handler(event, shapes.LambdaContext(INVOCATION_SECONDS))
    elapsed = time.monotonic() - started

    assert proxy.hangs_abandoned_after(1) == 1
    assert elapsed < INVOCATION_SECONDS, elapsed
    assert response == {"batchItemFailures": []}
    [key] = [o["Key"] for o in client.list_objects_v2(Bucket="wia-dead").get("Contents", [])]
    record = json.loads(gzip.decompress(client.get_object(Bucket="wia-dead", Key=key)["Body"].read()))
    assert record["event"]["id"] == bad["id"] and key.startswith("letters/")


def _file_forwarder_with_s3_dead_letter(forwarder, tmp_path):
    out = tmp_path / "out.ndjson"
    return forwarder(f'[destinations.archive]\nurl = "file://{out}"\n', dead_letter="s3://wia-dead/letters"), out


def test_a_resume_point_send_that_never_answers_is_given_up_in_time_and_sent_on_the_next_try(
        forwarder, samples, monkeypatch, stalled):
    """A failure record whose second record Security Hub keeps refusing (retryable): the first and third are
    settled, so the forwarder sends the failure queue the record again with a resume point (SendMessage)."""
    fw = forwarder(SECURITYHUB)
    setup = Setup(fw, monkeypatch)
    first, down, third = (fresh(samples["alert-sample"]) for _ in range(3))
    fw.aws.securityhub.state.fail_finding(down["id"], "InternalException", "busy", times=1000)
    batch = put(setup.kinesis, [json.dumps(e).encode() for e in (first, down, third)])
    setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))
    proxy = stalled("sqs", Fault("hang", seconds=HANG_SECONDS))       # the forwarder's only SQS call: the resume

    started = time.monotonic()
    responses = setup.poll(rounds=1, context=lambda: shapes.LambdaContext(INVOCATION_SECONDS))
    elapsed = time.monotonic() - started

    assert proxy.hangs_abandoned_after(1) == 1
    assert elapsed < INVOCATION_SECONDS, elapsed                  # before: 30 s, the hang's own end
    assert responses == [{"batchItemFailures": []}]               # resumed from a new message, not reported back
    [resumed] = [json.loads(body) for body in setup.left_in(setup.queue)]
    sequences = [record["SequenceNumber"] for record in batch]
    assert resumed["wiaResume"] == {"sequenceNumber": sequences[0], "values": 0, "found": 1,
                                    "settled": [[sequences[2], sequences[2]]]}
    targets = [s.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1] for s in proxy.seen]
    assert targets == ["SendMessage", "SendMessage"], targets
