"""The SQS dead letter when its GetQueueAttributes (the queue's MaximumMessageSize) gets no answer: boto3 -> the
fault proxy (one hang) -> moto, a queue of 1 MiB. The Lambda forwarder's writes are fitted to the invocation's
time, so a slow or cut answer is no longer rare there.

Before: any failure of that read was kept as the answer for the writer's life (256 KiB), so after one timeout a
1 MiB queue got every record over 256 KiB in parts, for as long as the function's execution environment lived.
Now only a refusal (a role without sqs:GetQueueAttributes) is kept; an unanswered read is asked again on the next
flush."""
from __future__ import annotations

import json

from servers.fault_proxy import Fault, FaultProxy
from wia_security.connectors.aws.dead_letter import CLASSIC_MESSAGE_BYTES, SqsDeadLetter
from wia_security.connectors.aws.securityhub import make_client
from wia_security.connectors.base import Rejected

QUEUE_BYTES = 1_048_576


def rejected(size: int, n: int) -> Rejected:
    return Rejected(f"refused {n}", raw=("x" * size).encode(), where=f"test:{n}")


def bodies(sqs, url) -> list[dict]:
    out = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in got:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return out


def test_contract_an_unanswered_limit_read_is_asked_again_on_the_next_flush(aws, monkeypatch):
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="wia-dead-big", Attributes={"MaximumMessageSize": str(QUEUE_BYTES)})["QueueUrl"]
    with FaultProxy(aws.moto.url) as proxy:
        proxy.add(Fault("hang", seconds=30))                                  # the first GetQueueAttributes
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxy.url)
        writer = SqsDeadLetter(url, client=make_client("sqs", "us-east-1", connect_timeout=1, read_timeout=1))
        writer.put(rejected(300_000, 1))
        assert writer.flush() == []
        first = bodies(sqs, url)
        writer.put(rejected(300_000, 2))
        assert writer.flush() == []
        second = bodies(sqs, url)
        assert proxy.hangs_abandoned_after(1) == 1
    # without the limit, 256 KiB messages: the record in parts; asked again, the queue's 1 MiB: one message
    assert len(first) > 1 and all(len(json.dumps(m)) <= CLASSIC_MESSAGE_BYTES for m in first)
    assert len(second) == 1 and second[0]["reason"] == "refused 2", [m.get("part") for m in second]
    assert writer.message_limit == QUEUE_BYTES
