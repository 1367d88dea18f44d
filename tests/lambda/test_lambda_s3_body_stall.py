"""An S3 object whose body stalls mid-read, through the handler with a Lambda context, against moto behind a
layer that trickles the body (tests/lambda/s3_contract.py S3Trickle: the first bytes at once, then a
byte every quarter second, so no read timeout fires: not botocore's 60 s, nor the 1 s the object's client
has when 3 s are left before the reserve, settings.s3_read_bounds, with margin on a loaded machine).

Before: the reader's only bound inside one read was botocore's read timeout; the time budget
(handler.in_time) is checked between values. A trickling body held the invocation to its end: Lambda
killed it and retried the whole batch (the other messages' events delivered again) or invocation. Now the
body's read stops at the invocation's time reserve: the record is reported back (OutOfTime), alone."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import lambda_events as shapes  # noqa: E402
import test_lambda_handler  # noqa: E402
from s3_contract import S3Trickle  # noqa: E402

forwarder = test_lambda_handler.forwarder      # the fixture: the handler configured against moto
#: the Lambda context's time: half of it (3 s) is kept as the reserve (at most half the invocation)
INVOCATION_SECONDS = 6.0
#: far longer than the invocation: only the reader's own bound can end the read in time
TRICKLE_SECONDS = 30.0


def events(samples: dict[str, Any], count: int, prefix: str) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        event = json.loads(json.dumps(samples["alert-sample"]))
        event["id"] = f"{prefix}-{i:04x}-9a53-6a4f6c1d0e11"
        out.append(event)
    return out


def stalled_object(fw: Any, samples: dict[str, Any]) -> tuple[bytes, int]:
    """An object of 4 events whose body stalls inside the fourth: (its bytes, the bytes sent at once)."""
    s3 = fw.aws.client("s3")
    s3.create_bucket(Bucket="wia-drop")
    lines = [json.dumps(e).encode() for e in events(samples, 4, "7b1c1f8e-5d0a")]
    data = b"\n".join(lines) + b"\n"
    s3.put_object(Bucket="wia-drop", Key="stalled.ndjson", Body=data)
    return data, len(b"\n".join(lines[:3])) + 1 + 10


@pytest.fixture
def trickle(aws, monkeypatch):
    with S3Trickle(aws.moto.url, interval=0.25, seconds=TRICKLE_SECONDS) as layer:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", layer.url)          # the forwarder's S3 client, not the test's
        yield layer


def test_contract_a_trickling_body_on_the_queue_reports_its_message_back_alone_in_time(forwarder, samples, trickle,
                                                                                         tmp_path):
    fw = forwarder(f'[destinations.archive]\nurl = "file://{tmp_path}/out.ndjson"\n')
    _, first = stalled_object(fw, samples)
    trickle.trickle("wia-drop", "stalled.ndjson", first)
    sqs = fw.aws.client("sqs")
    ingest = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]
    other = events(samples, 2, "2c0ffee0-5d0a")
    event = shapes.sqs_event(sqs, ingest, ["\n".join(json.dumps(e) for e in other),
                                           json.dumps(shapes.s3_notification("wia-drop", ["stalled.ndjson"]))])
    started = time.monotonic()
    response = fw.handler(event, shapes.LambdaContext(INVOCATION_SECONDS))
    elapsed = time.monotonic() - started

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert elapsed < INVOCATION_SECONDS, elapsed          # before: ~30 s, the whole trickle, past the invocation
    assert trickle.abandoned_after(1) == 1                # the forwarder hung up on the trickling body
    # the other message is settled; the stalled object's record is retried whole (its first lines had not
    # reached the reader: a 64 KiB read waits for all of it), so nothing of it is delivered twice
    delivered = [json.loads(line)["id"] for line in (tmp_path / "out.ndjson").read_text().splitlines()]
    assert sorted(delivered) == sorted(e["id"] for e in other)


def test_contract_a_trickling_body_of_an_s3_notification_is_retried_naming_the_time(forwarder, samples, trickle):
    from wia_lambda.triggers import RetryInvocation
    fw = forwarder('[destinations.archive]\nurl = "file:///dev/null"\n')
    _, first = stalled_object(fw, samples)
    trickle.trickle("wia-drop", "stalled.ndjson", first)
    started = time.monotonic()
    with pytest.raises(RetryInvocation, match="s3://wia-drop/stalled.ndjson: could not read the record: OutOfTime: "
                                              "not finished: the S3 object's body was still being read when"):
        fw.handler(shapes.s3_notification("wia-drop", ["stalled.ndjson"]), shapes.LambdaContext(INVOCATION_SECONDS))
    assert time.monotonic() - started < INVOCATION_SECONDS
    assert trickle.abandoned_after(1) == 1


def test_a_body_read_in_time_is_unaffected_and_its_timer_cancelled(forwarder, samples):
    """The bound only cuts a read still going at the reserve: objects read before it are forwarded whole, and
    each body's timer is cancelled when its reading ends (it would otherwise shut down a connection back in
    the pool)."""
    import threading
    fw = forwarder('[destinations.archive]\nurl = "file:///dev/null"\n')
    s3 = fw.aws.client("s3")
    s3.create_bucket(Bucket="wia-drop")
    for name in ("a", "b"):
        s3.put_object(Bucket="wia-drop", Key=f"{name}.ndjson",
                      Body="\n".join(json.dumps(e) for e in events(samples, 3, f"{name * 8}-5d0a")).encode())
    before = set(threading.enumerate())
    for _ in range(2):
        result = fw.handler(shapes.s3_notification("wia-drop", ["a.ndjson", "b.ndjson"]), shapes.LambdaContext(600.0))
        assert result["events"] == 6 and result["retry"] == 0
    timers = [t for t in set(threading.enumerate()) - before if isinstance(t, threading.Timer)]
    for timer in timers:
        timer.join(5)
    assert not [t for t in timers if t.is_alive()]


def test_contract_a_trickling_gzip_body_is_retried_not_dead_lettered_as_truncated(forwarder, samples, trickle):
    """A gzip object (GunzipStream over the cut body): the cut is OutOfTime, retried, not a gzip stream
    "truncated" at the byte the cut fell on (that would dead-letter a record retrying can read whole)."""
    import gzip

    from wia_lambda.triggers import RetryInvocation
    fw = forwarder('[destinations.archive]\nurl = "file:///dev/null"\n')
    s3 = fw.aws.client("s3")
    s3.create_bucket(Bucket="wia-drop")
    data = gzip.compress(b"\n".join(json.dumps(e).encode() for e in events(samples, 40, "5a1e0c2d-5d0a")) + b"\n")
    s3.put_object(Bucket="wia-drop", Key="stalled.ndjson.gz", Body=data)
    trickle.trickle("wia-drop", "stalled.ndjson.gz", len(data) // 2)
    started = time.monotonic()
    with pytest.raises(RetryInvocation, match="s3://wia-drop/stalled.ndjson.gz: could not read the record: OutOfTime: "
                                              "not finished: the S3 object's body was still being read when"):
        fw.handler(shapes.s3_notification("wia-drop", ["stalled.ndjson.gz"]), shapes.LambdaContext(INVOCATION_SECONDS))
    assert time.monotonic() - started < INVOCATION_SECONDS
    assert trickle.abandoned_after(1) == 1
    assert fw.dead_letters() == []                   # nothing dead-lettered as a broken gzip stream
