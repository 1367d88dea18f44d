"""The SQS dead letter and characters SQS refuses, against moto behind an SQS contract layer.

SQS takes message bodies of XML 1.0 characters only: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to
#xFFFD | #x10000 to #x10FFFF (SQS message quotas, "Message content"; SendMessage's error
InvalidMessageContents: "Invalid binary character '#xFFFF' was found in the message body, ..."). JSON
escapes the control characters, but U+FFFE and U+FFFF are valid UTF-8 and JSON writes them as they are,
so a dead letter of a line holding one was refused. moto checks none of it: `SqsContents` is a fault
proxy (tests/servers/fault_proxy.py) in front of moto's SQS (boto3 reaches it through
AWS_ENDPOINT_URL_SQS, JSON protocol) answering SendMessage and SendMessageBatch with a body outside
the set 400 InvalidMessageContents. That a batch is refused whole (not the entry in `Failed`) is a
contract assumption; either way the record was not stored."""
from __future__ import annotations

import json
import re
from typing import Any

import pytest

from servers.fault_proxy import FaultProxy
from wia_security.connectors.aws.dead_letter import SqsDeadLetter
from wia_security.connectors.base import Rejected

#: what SQS refuses in a message body (the complement of the allowed set; lone surrogates cannot reach JSON)
REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class SqsContents(FaultProxy):
    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.refused = 0

    def forward(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), "")
        if target in ("AmazonSQS.SendMessage", "AmazonSQS.SendMessageBatch"):
            request = json.loads(body)
            bodies = ([request.get("MessageBody", "")] if target.endswith("SendMessage")
                      else [e.get("MessageBody", "") for e in request.get("Entries", [])])
            bad = next((m.group() for text in bodies if (m := REFUSED.search(text))), None)
            if bad is not None:
                with self.lock:
                    self.refused += 1
                message = (f"Invalid binary character '#x{ord(bad):X}' was found in the message body, the set of "
                           "allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
                return 400, {"Content-Type": "application/x-amz-json-1.0",
                             "x-amzn-query-error": "InvalidMessageContents;Sender"}, json.dumps(
                    {"__type": "com.amazonaws.sqs#InvalidMessageContents", "message": message}).encode()
        return super().forward(method, path, headers, body)


def sqs_client() -> Any:
    """A client as the function makes one: its endpoint from AWS_ENDPOINT_URL_SQS (the contract layer)."""
    import boto3
    return boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def sqs_contents(aws, monkeypatch):
    with SqsContents(aws.moto.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxy.url)
        yield proxy


def test_contract_lines_with_characters_sqs_refuses_are_dead_lettered_and_read_back_the_same(aws, sqs_contents):
    sqs = sqs_client()
    # at the classic 256 KiB (a 1 MiB queue, SQS's default since 2025, takes `big` whole)
    url = sqs.create_queue(QueueName="wia-dead-letter", Attributes={"MaximumMessageSize": "262144"})["QueueUrl"]
    dead_letter = SqsDeadLetter(url, client=sqs)
    odd = "not json \uffff and \ufffe, a tab\tand a bell\x07"
    big = ("\uffff" + "z" * 99) * 4_000                                # 400K characters: sent in parts
    rejected = [Rejected("unparseable input", raw=odd.encode(), where="s3://drop/a.ndjson:7"),
                Rejected("invalid: /data/title", event={"id": "e-1", "note": "\uffff"}, where="kinesis:s:1:1"),
                Rejected("invalid: /data", event={"id": "e-2"}, where="kinesis:s:2:1"),
                Rejected("unparseable input", raw=big.encode(), where="s3://drop/b.ndjson:1")]
    for r in rejected:
        dead_letter.put(r)

    assert dead_letter.flush() == [] and dead_letter.count == 4
    assert sqs_contents.refused == 0
    records, parts = {}, []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in got:
            record = json.loads(m["Body"])
            (parts.append(record) if "record_part" in record else records.__setitem__(record["where"], record))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    joined = json.loads("".join(p["record_part"] for p in sorted(parts, key=lambda p: p["part"])))
    assert len(parts) > 1 and joined["raw"] == big
    assert records["s3://drop/a.ndjson:7"]["raw"] == odd
    assert records["kinesis:s:1:1"]["event"] == {"id": "e-1", "note": "\uffff"}
    assert records["kinesis:s:2:1"]["event"] == {"id": "e-2"}


def test_contract_the_layer_refuses_what_sqs_refuses(aws, sqs_contents):
    """The contract itself: a body with U+FFFF is refused as SQS documents, one without goes through."""
    from botocore.exceptions import ClientError
    sqs = sqs_client()
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=url, MessageBody="a \uffff b")
    assert refused.value.response["Error"]["Code"] == "InvalidMessageContents"
    sqs.send_message(QueueUrl=url, MessageBody="a \\uffff b")
    assert sqs_contents.refused == 1
