"""The SQS dead letter and records bigger than one message, against moto server.

A queue takes at most its MaximumMessageSize: 262,144 bytes for a queue created before 2025 (and still
the most a queue set to it takes), 1 MiB since. moto enforces the queue's MaximumMessageSize on
SendMessage/SendMessageBatch (InvalidParameterValue "Message must be shorter than ..."), in characters
where SQS counts bytes, so the sizes here are checked as SQS would; test_sqs_dead_letter_queue_limit_contract.py
runs queues below 256 KiB through a layer that counts bytes (tests/servers/sqs_contract.py)."""
from __future__ import annotations

import base64
import json
from collections import defaultdict
from typing import Any

import pytest

from wia_security.connectors.aws.dead_letter import SqsDeadLetter
from wia_security.connectors.base import Rejected

CLASSIC_LIMIT = 262_144


def queue_at_classic_limit(aws: Any) -> str:
    return aws.client("sqs").create_queue(
        QueueName="wia-dead-letter", Attributes={"MaximumMessageSize": str(CLASSIC_LIMIT)})["QueueUrl"]


def received_bodies(aws: Any, url: str) -> list[str]:
    sqs, bodies = aws.client("sqs"), []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for message in got:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def joined_records(bodies: list[str]) -> list[dict[str, Any]]:
    """Whole records as they are, parted ones joined in part order (the recipe docs/cloud/aws.md gives)."""
    whole, parts = [], defaultdict(list)
    for body in bodies:
        assert len(body.encode()) <= CLASSIC_LIMIT
        message = json.loads(body)
        if "record_part" in message:
            parts[message["dead_letter_id"]].append(message)
        else:
            whole.append(message)
    for pieces in parts.values():
        pieces.sort(key=lambda p: p["part"])
        assert [p["part"] for p in pieces] == list(range(1, pieces[0]["parts"] + 1))
        record = json.loads("".join(p["record_part"] for p in pieces))
        assert all(p["dead_letter_id"] == record["dead_letter_id"] and p["where"] == record["where"]
                   and record["reason"].startswith(p["reason"]) for p in pieces)
        whole.append(record)
    return whole


def test_records_bigger_than_one_message_are_stored_in_parts_that_join_back(aws):
    url = queue_at_classic_limit(aws)
    dead_letter = SqsDeadLetter(url, client=aws.client("sqs"))
    line = ("x" * 599_990 + " not json").encode()                                   # a 600 KB unreadable line
    binary = bytes(range(256)) * 2_400                                               # 600 KB, not UTF-8: raw_base64
    controls = ("\x01" * 300_000).encode()                                            # 6 bytes each once escaped
    event = {"id": "big-1", "data": {"description": "é" * 300_000}}                   # 600 KB refused by a destination
    rejected = [
        Rejected("unparseable input: Expecting value", raw=line, where="sqs:m-1:1"),
        Rejected("unparseable input: not UTF-8", raw=binary, where="s3://drop/a.bin:1"),
        Rejected("unparseable input: control characters", raw=controls, where="sqs:m-3:1"),
        Rejected("Security Hub FailedFindings InvalidInput: finding over 240 KB", event=event,
                 where="kinesis:s:49:1", sink="securityhub"),
        Rejected("invalid: /data/title", event={"id": "small"}, where="sqs:m-5:1"),
    ]
    for r in rejected:
        dead_letter.put(r)

    assert dead_letter.flush() == []
    assert dead_letter.count == 5
    bodies = received_bodies(aws, url)
    assert len(bodies) > 5 and max(len(b.encode()) for b in bodies) <= CLASSIC_LIMIT
    records = {r["where"]: r for r in joined_records(bodies)}
    assert records["sqs:m-1:1"]["raw"] == line.decode()
    assert base64.b64decode(records["s3://drop/a.bin:1"]["raw_base64"]) == binary
    assert records["sqs:m-3:1"]["raw"] == controls.decode()
    assert records["kinesis:s:49:1"]["event"] == event and records["kinesis:s:49:1"]["sink"] == "securityhub"
    assert records["sqs:m-5:1"]["reason"] == "invalid: /data/title"        # a small record stays one message


def test_a_record_bigger_than_a_small_queue_takes_is_stored_in_parts_within_its_limit(aws):
    """A queue at SQS's smallest MaximumMessageSize (1 KiB): the record is cut to the queue's limit, read with
    GetQueueAttributes (it was cut at 256 KiB, every part refused, the record returned unstored)."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="tiny", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    dead_letter = SqsDeadLetter(url, client=sqs)
    big = Rejected("unparseable input: " + "r" * 2_000, raw=b"y" * 20_000, where="sqs:m-9:1")
    dead_letter.put(big)
    assert dead_letter.flush() == []
    assert dead_letter.count == 1
    bodies = received_bodies(aws, url)
    assert len(bodies) > 20 and max(len(b.encode()) for b in bodies) <= 1024
    [record] = joined_records(bodies)
    assert record["raw"] == "y" * 20_000 and record["reason"] == big.reason


def test_a_message_over_a_small_queue_does_not_take_its_batch_with_it(aws):
    """A record over the queue's limit among small ones: all stored, the big one in parts of the queue's size."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="small", Attributes={"MaximumMessageSize": "2048"})["QueueUrl"]
    dead_letter = SqsDeadLetter(url, client=sqs)
    small = [Rejected("invalid: /data", event={"id": f"e-{i}"}, where=f"sqs:m-{i}:1") for i in range(3)]
    big = Rejected("unparseable input", raw=b"z" * 5_000, where="sqs:m-big:1")
    for r in (small[0], big, *small[1:]):
        dead_letter.put(r)

    assert dead_letter.flush() == []
    assert dead_letter.count == 4
    records = {r["where"]: r for r in joined_records(received_bodies(aws, url))}
    assert sorted(records) == ["sqs:m-0:1", "sqs:m-1:1", "sqs:m-2:1", "sqs:m-big:1"]
    assert records["sqs:m-big:1"]["raw"] == "z" * 5_000


@pytest.mark.parametrize("code, message, limit", [
    ("InvalidParameterValue", "One or more parameters are invalid. Reason: Message must be shorter than 40000 bytes.", 40000),
    # the Query API's older wording
    ("InvalidParameterValue", "Value for parameter MessageBody is invalid. Reason: Message body must be shorter than "
                              "262144 bytes.", 262144),
    # the batch total: the limit, not what was sent
    ("AWS.SimpleQueueService.BatchRequestTooLong", "Batch requests cannot be longer than 262144 bytes. You have sent "
                                                   "300123 bytes.", 262144),
    ("BatchRequestTooLong", "Batch requests cannot be longer than 1048576 bytes. You have sent 1048577 bytes.", 1048576),
    # refusals that name no size limit are not taken for one
    ("InvalidParameterValue", "Reason: Invalid binary character '#x1F' was found in the message body", None),
    ("InvalidMessageContents", "Message must be shorter than 1024 bytes.", None),
    ("KMS.AccessDeniedException", "", None),
])
def test_the_limit_named_by_a_size_refusal(code, message, limit):
    """The wordings SQS refuses a message or a batch with (6cb952a learns the queue's limit from them)."""
    from wia_security.connectors.aws.dead_letter import _size_limit_named
    assert _size_limit_named(code, message) == limit
