"""The SQS dead letter and records bigger than one message, against moto server.

A queue takes at most its MaximumMessageSize: 262,144 bytes for a queue created before 2025 (and still
the most a queue set to it takes), 1 MiB since. moto enforces the queue's MaximumMessageSize on
SendMessage/SendMessageBatch (InvalidParameterValue "Message must be shorter than ..."), so the queue
here is created at the classic limit and the sizes are checked as SQS would."""
from __future__ import annotations

import base64
import json
from collections import defaultdict
from typing import Any

from wia_security.connectors.aws.dead_letter import MAX_MESSAGE_BYTES, SqsDeadLetter
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
    assert len(bodies) > 5 and max(len(b.encode()) for b in bodies) <= MAX_MESSAGE_BYTES
    records = {r["where"]: r for r in joined_records(bodies)}
    assert records["sqs:m-1:1"]["raw"] == line.decode()
    assert base64.b64decode(records["s3://drop/a.bin:1"]["raw_base64"]) == binary
    assert records["sqs:m-3:1"]["raw"] == controls.decode()
    assert records["kinesis:s:49:1"]["event"] == event and records["kinesis:s:49:1"]["sink"] == "securityhub"
    assert records["sqs:m-5:1"]["reason"] == "invalid: /data/title"        # a small record stays one message


def test_a_parted_record_with_a_part_refused_is_returned_unstored(aws):
    """A part the queue refuses (here: a queue smaller than a part) fails its record, which is retried whole."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="tiny", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    dead_letter = SqsDeadLetter(url, client=sqs)
    big = Rejected("unparseable input", raw=b"y" * 400_000, where="sqs:m-9:1")
    dead_letter.put(big)
    assert dead_letter.flush() == [big]
    assert dead_letter.count == 0


def test_a_message_the_queue_refuses_does_not_take_its_batch_with_it(aws):
    """SQS refuses a whole SendMessageBatch for one entry over the queue's MaximumMessageSize (moto too):
    the entries are then sent one by one, so only the refused record is returned, its neighbours stored."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="small", Attributes={"MaximumMessageSize": "2048"})["QueueUrl"]
    dead_letter = SqsDeadLetter(url, client=sqs)
    small = [Rejected("invalid: /data", event={"id": f"e-{i}"}, where=f"sqs:m-{i}:1") for i in range(3)]
    big = Rejected("unparseable input", raw=b"z" * 5_000, where="sqs:m-big:1")
    for r in (small[0], big, *small[1:]):
        dead_letter.put(r)

    assert dead_letter.flush() == [big]
    assert dead_letter.count == 3
    assert sorted(json.loads(b)["where"] for b in received_bodies(aws, url)) == ["sqs:m-0:1", "sqs:m-1:1", "sqs:m-2:1"]
