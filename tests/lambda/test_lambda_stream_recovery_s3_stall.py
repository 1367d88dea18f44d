"""A GetObject whose answer never comes (not even its headers) while a Kinesis failure record is read back,
through the handler with a Lambda context (real time), against moto behind a fault proxy ("hang": the request
is read and nothing answered until the client hangs up, 30 s at most).

Before: the recovery read S3 with the shared client (botocore's 60 s connect and read timeouts per attempt, 3
attempts), and its time budget is checked before a read starts, not during it: a hung request held the
invocation past its end (Lambda kills it, and the failure record's progress on that receive is lost). Now the
client is the time-fitted one the S3 trigger uses (settings.s3_read_bounds): the read ends before the time
reserve, the rest of the batch is delivered, and the record naming the object is retried from a resume point,
then dead-lettered with the reason on its last receive."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import lambda_events as shapes  # noqa: E402
import test_lambda_handler  # noqa: E402
from test_lambda_handler import fresh, ndjson  # noqa: E402
from test_lambda_stream_recovery import STREAM, Setup, _file_forwarder, _ids_in, failure_record, put  # noqa: E402

from servers.fault_proxy import Fault, FaultProxy  # noqa: E402

forwarder = test_lambda_handler.forwarder      # the fixture: the handler configured against moto
#: the Lambda context's time: half of it (5 s) is kept as the reserve, so under 5 s are left for the read
INVOCATION_SECONDS = 10.0
#: far longer than the invocation: only the reader's own bound can end the wait
HANG_SECONDS = 30.0


def test_an_s3_read_that_never_answers_during_recovery_ends_in_time_and_the_rest_of_the_batch_is_delivered(
        forwarder, samples, monkeypatch, tmp_path, aws):
    with FaultProxy(aws.moto.url) as proxy:
        # every try of the hung object's read hangs (a fault is used by one request)
        proxy.add(*[Fault(kind="hang", path="/wia-ingest/hung.ndjson", method="GET", seconds=HANG_SECONDS)
                    for _ in range(6)])
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)             # the forwarder's S3 client
        fw, out = _file_forwarder(forwarder, tmp_path)
        setup = Setup(fw, monkeypatch, max_receives=1)                    # the second reading is the last
        s3 = fw.aws.client("s3")
        s3.create_bucket(Bucket="wia-ingest")
        hung = [fresh(samples["alert-sample"]) for _ in range(2)]
        s3.put_object(Bucket="wia-ingest", Key="hung.ndjson", Body=ndjson(hung))
        before, after = ([fresh(samples["alert-sample"]) for _ in range(2)] for _ in range(2))
        batch = put(setup.kinesis, [ndjson(before), json.dumps(shapes.s3_notification("wia-ingest", ["hung.ndjson"])
                                                                 ).encode(), ndjson(after)])
        setup.sqs.send_message(QueueUrl=setup.queue, MessageBody=failure_record(setup.kinesis, batch))

        readings, delivered = [], []
        for _receive in range(2):                   # the failure record, then the one with its resume point
            started = time.monotonic()
            responses = setup.poll(rounds=1, context=lambda: shapes.LambdaContext(INVOCATION_SECONDS))
            readings.append((time.monotonic() - started, responses))
            delivered.append(_ids_in(out))
        assert proxy.hangs_abandoned_after(2) >= 2                        # the forwarder hung up on each read

    # each receive ends within its time (before: 60 s per hung try, past the invocation's end)
    assert [elapsed < INVOCATION_SECONDS for elapsed, _ in readings] == [True, True], readings
    assert [responses for _, responses in readings] == [[{"batchItemFailures": []}]] * 2
    # the first receive delivers the records around the hung one; the second reads only the hung one again
    assert delivered == [[e["id"] for e in [*before, *after]]] * 2
    # and, its last receive, gives it up: one dead letter naming the batch and the read's failure, the failure
    # record with the resume point (after the first record, the third settled) as its raw
    (dead,) = fw.dead_letters()
    assert dead["reason"].startswith("gave up on the last receive"), dead["reason"]
    assert "Read timeout" in dead["reason"] and "hung.ndjson" in dead["reason"], dead["reason"]
    sequences = [record["SequenceNumber"] for record in batch]
    assert dead["where"] == f"kinesis:{STREAM}:shardId-000000000000:{sequences[0]}-{sequences[2]}"
    assert json.loads(dead["raw"])["wiaResume"] == {"sequenceNumber": sequences[0], "values": 0, "found": 1,
                                                    "settled": [[sequences[2], sequences[2]]]}
    assert setup.left_in(setup.queue) == [] and setup.left_in(setup.async_failures) == []
