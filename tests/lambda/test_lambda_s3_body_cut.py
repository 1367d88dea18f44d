"""How the S3 body's time bound (payloads._StreamingBodyIO, 715d926) reaches the socket, pinned for the
botocore and urllib3 installed (the Lambda zip's test venv and the suite's venv), against moto and the
trickling layer (tests/lambda/s3_contract.py S3Trickle).

The cut goes through urllib3's response: HTTPResponse.shutdown() from urllib3 2.3, http.client's socket
file before. Those are other libraries' internals: when neither is found the cut cannot unblock a read
(closing a socket from another thread leaves a blocked recv blocked), and that is logged, not silent."""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from s3_contract import S3Trickle  # noqa: E402


def urllib3_version() -> tuple[int, ...]:
    import urllib3
    return tuple(int(p) for p in urllib3.__version__.split(".")[:2])


#: how the installed urllib3 lets the cut reach the socket of a body being read
EXPECTED_CUT = "urllib3 HTTPResponse.shutdown" if urllib3_version() >= (2, 3) else "http.client socket file"


@pytest.fixture
def s3(aws, monkeypatch):
    from wia_security.connectors.aws.securityhub import make_client
    client = aws.client("s3")
    client.create_bucket(Bucket="wia-drop")
    lines = [json.dumps({"n": i, "pad": "p" * 200}).encode() for i in range(2_000)]
    client.put_object(Bucket="wia-drop", Key="big.ndjson", Body=b"\n".join(lines) + b"\n")
    client.put_object(Bucket="wia-drop", Key="small.ndjson", Body=b'{"n": 1}\n')
    with S3Trickle(aws.moto.url, interval=0.5, seconds=30.0) as layer:
        layer.trickle("wia-drop", "big.ndjson", 1_000)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", layer.url)
        # the forwarder's client (make_client, as settings.Clients makes it), through the trickle
        yield make_client("s3", "us-east-1", max_attempts=3), layer


def test_contract_a_trickling_body_is_cut_through_the_installed_urllib3(s3):
    from wia_lambda.payloads import _StreamingBodyIO
    from wia_security.connectors.relay import OutOfTime
    client, layer = s3
    body = _StreamingBodyIO(client.get_object(Bucket="wia-drop", Key="big.ndjson")["Body"],
                            time.monotonic() + 0.5, "the test's bound")
    started = time.monotonic()
    with pytest.raises(OutOfTime, match="still being read when the test's bound"):
        while body.readinto(bytearray(1 << 16)):
            pass
    body.close()
    assert time.monotonic() - started < 20            # the trickle lasts 30 s
    assert body.shut_by == EXPECTED_CUT
    assert layer.abandoned_after(1) == 1


def test_contract_a_body_of_a_kept_alive_connection_is_cut_through_the_installed_urllib3(aws, monkeypatch):
    """A connection kept alive (moto answers keep-alive): cut before its end, the body's read fails with
    OutOfTime, and the next request of the same client gets a working connection (urllib3 drops the shut one)."""
    from wia_lambda.payloads import _StreamingBodyIO
    from wia_security.connectors.aws.securityhub import make_client
    from wia_security.connectors.relay import OutOfTime
    aws.client("s3").create_bucket(Bucket="wia-drop")
    aws.client("s3").put_object(Bucket="wia-drop", Key="a.ndjson", Body=b'{"n": 1}\n' * 50_000)
    client = make_client("s3", "us-east-1", max_attempts=1)          # no retry hides a broken connection
    body = _StreamingBodyIO(client.get_object(Bucket="wia-drop", Key="a.ndjson")["Body"], None, "the test's bound")
    assert body.readinto(bytearray(1024)) == 1024
    body._cut_off()                                 # what the timer does at the reserve
    assert body.shut_by == EXPECTED_CUT
    with pytest.raises(OutOfTime):
        body.readinto(bytearray(1 << 16))
    body.close()
    assert client.get_object(Bucket="wia-drop", Key="a.ndjson")["Body"].read() == b'{"n": 1}\n' * 50_000


def test_contract_a_timer_after_the_last_read_leaves_the_pooled_connection_alone(aws, caplog):
    """The body read to its end but not yet closed (its generator still handing out buffered values): its
    connection is back in urllib3's pool. The timer firing then finds no socket, shuts nothing down and warns
    of nothing; the next request reuses that connection."""
    from wia_lambda.payloads import _StreamingBodyIO
    from wia_security.connectors.aws.securityhub import make_client
    aws.client("s3").create_bucket(Bucket="wia-drop")
    aws.client("s3").put_object(Bucket="wia-drop", Key="a.ndjson", Body=b'{"n": 1}\n' * 100)
    client = make_client("s3", "us-east-1", max_attempts=1)
    response = client.get_object(Bucket="wia-drop", Key="a.ndjson")
    sock = response["Body"]._raw_stream.connection.sock       # the pooled connection's socket
    body = _StreamingBodyIO(response["Body"], None, "the test's bound")
    while body.readinto(bytearray(1 << 16)):
        pass
    with caplog.at_level(logging.WARNING, logger="wia_lambda"):
        body._cut_off()
    assert body.shut_by is None and "could not find the socket" not in caplog.text
    again = client.get_object(Bucket="wia-drop", Key="a.ndjson")
    assert again["Body"]._raw_stream.connection.sock is sock   # the same connection, not shut down
    assert again["Body"].read() == b'{"n": 1}\n' * 100
    body.close()


def test_a_body_whose_socket_cannot_be_found_is_logged_not_silently_unbounded(caplog):
    """A StreamingBody over a stream that is not urllib3's (what another botocore or urllib3 would look like
    to this code): the cut cannot reach a socket, and says so once per body (before: silent)."""
    import io

    from botocore.response import StreamingBody

    from wia_lambda.payloads import _StreamingBodyIO
    body = _StreamingBodyIO(StreamingBody(io.BytesIO(b"x" * 100), 100), None, "the test's bound")
    with caplog.at_level(logging.WARNING, logger="wia_lambda"):
        body._cut_off()
    assert body.shut_by is None
    assert "could not find the socket of an S3 object's body still being read" in caplog.text
    body.close()
