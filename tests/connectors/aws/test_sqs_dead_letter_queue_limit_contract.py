"""The SQS dead letter and a queue whose MaximumMessageSize is below 256 KiB, against moto behind the SQS
size contract layer (tests/servers/sqs_contract.py: sizes in bytes, SQS's errors, a batch entry over the
limit refused either of the two ways reported, GetQueueAttributes denied to a role without it).

Before: the writer cut records at 256 KiB whatever the queue took, so a record between the queue's limit
and 256 KiB (or a part of a bigger one) was refused and returned unstored; its source record was retried
until the source gave up and the dead letter never held it or its reason. Now every record is stored, in
messages within the queue's limit, whether the limit is read (GetQueueAttributes) or learned from the
queue's refusal."""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any

import pytest

from servers.sqs_contract import SqsLimits, too_long
from wia_security.connectors.aws.dead_letter import SqsDeadLetter
from wia_security.connectors.base import Rejected

LIMIT = 40_000


def sqs_client() -> Any:
    """A client as the function makes one: its endpoint from AWS_ENDPOINT_URL_SQS (the contract layer)."""
    import boto3
    return boto3.client("sqs", region_name="us-east-1")


def contract(aws: Any, monkeypatch: Any, **options: Any) -> SqsLimits:
    proxy = SqsLimits(aws.moto.url, **options).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxy.url)
    return proxy


@pytest.fixture
def layers(aws, monkeypatch):
    started: list[SqsLimits] = []

    def start(**options: Any) -> SqsLimits:
        started.append(contract(aws, monkeypatch, **options))
        return started[-1]
    yield start
    for proxy in started:
        proxy.stop()


def drained(sqs: Any, url: str) -> list[dict[str, Any]]:
    out = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in got:
            assert len(message["Body"].encode()) <= LIMIT
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return out


def records_of(messages: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
    """Whole records by `where`, parted ones joined per write (dead_letter_id, failed_at) as replay joins
    them, complete writes only; and the writes left incomplete."""
    whole, writes = {}, defaultdict(list)
    for message in messages:
        if "record_part" in message:
            writes[(message["dead_letter_id"], message["failed_at"])].append(message)
        else:
            whole[message["where"]] = message
    incomplete = []
    for key, parts in writes.items():
        parts.sort(key=lambda p: p["part"])
        if [p["part"] for p in parts] != list(range(1, parts[0]["parts"] + 1)):
            incomplete.append(key)
            continue
        record = json.loads("".join(p["record_part"] for p in parts))
        assert record["failed_at"] == key[1] and record["reason"].startswith(parts[0]["reason"])
        whole[record["where"]] = record
    return whole, incomplete


def rejections() -> list[Rejected]:
    return [
        Rejected("invalid: /data/title", event={"id": "small"}, where="sqs:m-1:1"),
        # 30K characters, 60 KB: under the limit counted in characters (as moto counts), over it in bytes
        Rejected("Security Hub InvalidInput", event={"id": "e-2", "data": {"description": "é" * 30_000}},
                 where="kinesis:s:2:1", sink="securityhub"),
        Rejected("unparseable input", raw=b"u" * 150_000, where="sqs:m-3:1"),         # under 256 KiB
        Rejected("unparseable input", raw=("x" * 200_000 + "é" * 200_000).encode(), where="s3://drop/a:1"),  # 600 KB
        # 600 KB: cut at 256 KiB its last part is small and is stored in the batch where the others are refused
        Rejected("Security Hub InvalidInput", event={"id": "e-5", "data": {"description": "é" * 300_000}},
                 where="kinesis:s:5:1", sink="securityhub"),
    ]


def expected(record: dict[str, Any], rejected: Rejected) -> None:
    assert record["reason"] == rejected.reason and record.get("sink") == rejected.sink
    if rejected.event is not None:
        assert record["event"] == rejected.event
    else:
        assert record["raw"] == rejected.raw.decode()


def test_contract_the_layer_counts_bytes_and_answers_as_sqs(aws, layers):
    from botocore.exceptions import ClientError
    layer = layers(batch_entry="failed")
    sqs = sqs_client()
    url = sqs.create_queue(QueueName="q", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=url, MessageBody="é" * 513)                   # 513 characters, 1,026 bytes
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert refused.value.response["Error"]["Message"] == too_long(1024)
    answer = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "é" * 513},
                                                           {"Id": "b", "MessageBody": "fits"}])
    assert [e["Id"] for e in answer["Successful"]] == ["b"]
    assert answer["Failed"] == [{"Id": "a", "SenderFault": True, "Code": "InvalidParameterValue", "Message": too_long(1024)}]
    sqs.send_message(QueueUrl=url, MessageBody="é" * 512)
    assert [op for op, _ in layer.refused] == ["SendMessage", "SendMessageBatch entry"]


def test_contract_whole_batch_mode_and_a_denied_attribute_read(aws, layers):
    from botocore.exceptions import ClientError
    layers(batch_entry="whole", get_queue_attributes=False)
    sqs = sqs_client()
    url = sqs.create_queue(QueueName="q", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    with pytest.raises(ClientError) as refused:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "a" * 600},
                                                      {"Id": "b", "MessageBody": "b" * 600}])
    assert refused.value.response["Error"]["Code"] == "AWS.SimpleQueueService.BatchRequestTooLong"
    assert refused.value.response["Error"]["Message"] == ("Batch requests cannot be longer than 1024 bytes. "
                                                          "You have sent 1200 bytes.")
    with pytest.raises(ClientError) as denied:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MaximumMessageSize"])
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


@pytest.mark.parametrize("batch_entry", ["failed", "whole"])
def test_contract_a_queue_below_256_kib_gets_every_record_within_its_limit_read_from_the_queue(aws, layers, batch_entry):
    layer = layers(batch_entry=batch_entry)
    sqs = sqs_client()
    url = sqs.create_queue(QueueName="dlq", Attributes={"MaximumMessageSize": str(LIMIT)})["QueueUrl"]
    dead_letter = SqsDeadLetter(url, client=sqs)
    rejected = rejections()
    for r in rejected:
        dead_letter.put(r)
    assert dead_letter.flush() == []                   # before: all but the small one returned unstored
    assert dead_letter.count == 5
    dead_letter.put(rejected[2])
    assert dead_letter.flush() == [] and dead_letter.count == 6
    assert layer.refused == [] and layer.attribute_reads == 1      # the limit was known: nothing refused, read once
    records, incomplete = records_of(drained(sqs, url))
    assert incomplete == []
    for r in rejected:
        expected(records[r.where], r)


@pytest.mark.parametrize("batch_entry", ["failed", "whole"])
def test_contract_without_get_queue_attributes_the_limit_is_learned_from_the_refusal(aws, layers, batch_entry, caplog):
    """A role without sqs:GetQueueAttributes: the writer starts at 256 KiB, and the queue's first refusal
    names its limit. Two 600 KB records have parts stored before others are refused (ASCII parts of 33 KB
    fit, parts of é, 65 KB, do not; one record's small last part is stored in the very batch that refuses
    its others): each is cut again as a new write (a later failed_at), whose parts are all stored; the
    first write's stored parts stay incomplete (a reader joins the complete write and drops them). Without
    the new write, the two cuts' parts shared one (dead_letter_id, failed_at) and did not join."""
    layer = layers(batch_entry=batch_entry, get_queue_attributes=False)
    sqs = sqs_client()
    url = sqs.create_queue(QueueName="dlq", Attributes={"MaximumMessageSize": str(LIMIT)})["QueueUrl"]
    dead_letter = SqsDeadLetter(url, client=sqs)
    rejected = rejections()
    for r in rejected:
        dead_letter.put(r)
    with caplog.at_level(logging.WARNING, logger="wia_security.connectors.aws.dead_letter"):
        assert dead_letter.flush() == []
    assert dead_letter.count == 5
    assert layer.refused != [] and layer.attribute_reads == 1
    assert "could not read the dead-letter queue's MaximumMessageSize (AccessDenied)" in caplog.text
    refusals = len(layer.refused)
    dead_letter.put(rejected[2])
    assert dead_letter.flush() == [] and len(layer.refused) == refusals      # learned once: no refusal again
    records, incomplete = records_of(drained(sqs, url))
    for r in rejected:
        expected(records[r.where], r)
    rewritten = {records[r.where]["dead_letter_id"]: records[r.where]["failed_at"] for r in rejected[3:]}
    assert sorted(key[0] for key in incomplete) == sorted(rewritten)
    assert all(failed_at < rewritten[record_id] for record_id, failed_at in incomplete)


def test_contract_a_record_whose_part_header_cannot_fit_is_returned(aws, layers):
    """A queue at SQS's smallest limit (1 KiB) and a record whose `where` alone is bigger: no part fits, so
    the record is returned unstored (its source retries it), not cut forever; the others are stored."""
    layers()
    sqs = sqs_client()
    url = sqs.create_queue(QueueName="tiny", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    dead_letter = SqsDeadLetter(url, client=sqs)
    unfit = Rejected("unparseable input", raw=b"y" * 5_000, where="s3://drop/" + "k" * 2_000 + ":1")
    fits = Rejected("unparseable input", raw=b"z" * 5_000, where="sqs:m-9:1")
    dead_letter.put(unfit)
    dead_letter.put(fits)
    assert dead_letter.flush() == [unfit]
    assert dead_letter.count == 1
