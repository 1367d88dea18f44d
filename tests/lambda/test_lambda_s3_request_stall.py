"""A GetObject whose answer never comes (not even its headers), through the handler with a Lambda context,
against moto behind the suite's S3 layer (tests/lambda/s3_contract.py S3Trickle, a fault proxy: "hang"
reads the request and answers nothing until the client hangs up, 30 s at most).

Before: the S3 client had botocore's own bounds, a 60 s connect and a 60 s read timeout per attempt and 3
attempts, and the time budget is checked between values: a hung request held the invocation until Lambda
killed it and retried the whole batch (the other messages' events delivered again). Now the client that
reads an object has timeouts and attempts that fit the time left before the reserve
(settings.s3_read_bounds): the record is reported back alone, in time."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import lambda_events as shapes  # noqa: E402
import test_lambda_handler  # noqa: E402
from s3_contract import S3Trickle  # noqa: E402
from servers.fault_proxy import Fault  # noqa: E402
from test_lambda_s3_body_stall import events  # noqa: E402

forwarder = test_lambda_handler.forwarder      # the fixture: the handler configured against moto
#: the Lambda context's time: half of it (5 s) is kept as the reserve, so 5 s are left for the read
INVOCATION_SECONDS = 10.0
#: far longer than the invocation: only the reader's own bound can end the wait
HANG_SECONDS = 30.0


@pytest.fixture
def hung(aws, monkeypatch):
    with S3Trickle(aws.moto.url) as layer:
        # every try of the request hangs (a fault is used by one request)
        layer.add(*[Fault(kind="hang", path="/wia-drop/hung.ndjson", method="GET", seconds=HANG_SECONDS)] * 3)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", layer.url)          # the forwarder's S3 client, not the test's
        yield layer


def test_contract_a_get_object_that_never_answers_reports_its_message_back_alone_in_time(forwarder, samples, hung,
                                                                                        tmp_path):
    fw = forwarder(f'[destinations.archive]\nurl = "file://{tmp_path}/out.ndjson"\n')
    s3 = fw.aws.client("s3")
    s3.create_bucket(Bucket="wia-drop")
    s3.put_object(Bucket="wia-drop", Key="hung.ndjson", Body=b"\n".join(
        json.dumps(e).encode() for e in events(samples, 2, "3d1e5a7c-5d0a")))
    sqs = fw.aws.client("sqs")
    ingest = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]
    other = events(samples, 2, "4e0c1b9a-5d0a")
    event = shapes.sqs_event(sqs, ingest, [json.dumps(shapes.s3_notification("wia-drop", ["hung.ndjson"])),
                                           "\n".join(json.dumps(e) for e in other)])
    started = time.monotonic()
    response = fw.handler(event, shapes.LambdaContext(INVOCATION_SECONDS))
    elapsed = time.monotonic() - started

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert elapsed < INVOCATION_SECONDS, elapsed          # before: 30 s per hung try, past the invocation
    assert hung.hangs_abandoned_after(1) >= 1             # the forwarder hung up on the request
    delivered = [json.loads(line)["id"] for line in (tmp_path / "out.ndjson").read_text().splitlines()]
    assert sorted(delivered) == sorted(e["id"] for e in other)


@pytest.mark.parametrize("left, bounds", [(600.0, (60.0, 3)), (400.0, (60.0, 3)), (90.0, (8.0, 3)),
                                          (5.0, (1.0, 2)), (3.0, (1.0, 1)), (2.0, (1.0, 1)), (1.9, None)])
def test_read_bounds_fit_the_time_left(left, bounds):
    from wia_lambda.settings import s3_read_bounds
    assert s3_read_bounds(left) == bounds
    if bounds is not None:
        timeout, attempts = bounds
        assert attempts * 2 * timeout + 2 ** (attempts - 1) - 1 <= left


def test_too_little_time_for_one_try_is_out_of_time_not_a_request():
    from wia_lambda.settings import Clients
    from wia_security.connectors.relay import OutOfTime
    with pytest.raises(OutOfTime, match="not started: reading an S3 object needs at least 2s and 1.0s were left"):
        Clients().s3_reader(1.0)
