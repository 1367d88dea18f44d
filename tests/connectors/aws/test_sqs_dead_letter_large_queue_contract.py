"""The SQS dead letter and a queue that takes more than 256 KiB, against moto behind the SQS size contract
layer (tests/servers/sqs_contract.py: sizes in bytes as SQS counts them, a message over the queue's
MaximumMessageSize refused, a batch over SQS's 1 MiB total, or over the queue's limit in "whole" mode,
refused with BatchRequestTooLong).

SQS since 2025: a queue's MaximumMessageSize is 1,024 to 1,048,576 bytes, 1 MiB by default, and a
SendMessageBatch may carry 1 MiB in all (botocore's SQS model, SetQueueAttributes and SendMessageBatch; the
SQS Developer Guide, "Amazon SQS batch actions"). moto 5.2 creates queues at 1 MiB too. Before: the writer
capped the queue's limit at 256 KiB, so a 600 KB record went in parts of 32K characters and every batch
held at most 256 KiB. Now a record up to the queue's limit is one message, a bigger one is cut into parts
that grow with the limit (4 times fewer at 1 MiB), and batches hold up to the queue's limit (at most 1 MiB),
and SQS refuses none of them."""
from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from servers.sqs_contract import SqsLimits
from strategies import event_dicts
from wia_security.cli import main
from wia_security.connectors.aws.dead_letter import CLASSIC_MESSAGE_BYTES, SqsDeadLetter, message_bodies
from wia_security.connectors.base import Rejected
from wia_security.connectors.dead_letter import dead_letter_record

ONE_MIB = 1_048_576


@pytest.fixture
def layer(aws, monkeypatch):
    """Start the contract layer with the options given; the client a test makes reaches it."""
    started: list[SqsLimits] = []

    def start(**options: Any) -> SqsLimits:
        started.append(SqsLimits(aws.moto.url, **options).start())
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", started[-1].url)
        return started[-1]
    yield start
    for proxy in started:
        proxy.stop()


def sqs_client() -> Any:
    import boto3
    return boto3.client("sqs", region_name="us-east-1")


def batch_calls(layer: SqsLimits) -> int:
    return sum(1 for seen in layer.seen
               if {k.lower(): v for k, v in seen.headers.items()}.get("x-amz-target") == "AmazonSQS.SendMessageBatch")


def drained(sqs: Any, url: str, limit: int) -> list[str]:
    bodies = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in got:
            assert len(message["Body"].encode()) <= limit
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


@pytest.mark.parametrize("batch_entry", ["failed", "whole"])
def test_contract_a_1_mib_queue_gets_records_whole_up_to_1_mib_and_bigger_ones_in_fewer_parts(
        aws, layer, batch_entry, tmp_path, monkeypatch, capsys):
    contract = layer(batch_entry=batch_entry)
    sqs = sqs_client()
    url = sqs.create_queue(QueueName="dlq")["QueueUrl"]               # SQS's default since 2025
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MaximumMessageSize"])["Attributes"] == {
        "MaximumMessageSize": str(ONE_MIB)}
    events = event_dicts(6, seed=31)
    events[0].setdefault("meta", {}).setdefault("custom", {})["blob"] = "é" * 300_000           # 600 KB
    events[1].setdefault("meta", {}).setdefault("custom", {})["blob"] = "x" * 3_000_000         # 3 MB
    for event in events[2:]:
        event.setdefault("meta", {}).setdefault("custom", {})["blob"] = "m" * 200_000           # 200 KB each
    rejected = [Rejected("HTTP 413 from the destination", event=event, where=f"sqs:m-{i}:1", sink="hec")
                for i, event in enumerate(events)]
    dead_letter = SqsDeadLetter(url, client=sqs)
    for r in rejected:
        dead_letter.put(r)

    assert dead_letter.flush() == [] and dead_letter.count == 6
    assert dead_letter.message_limit == ONE_MIB
    assert contract.refused == []                      # nothing sent that SQS refuses
    bodies = drained(sqs, url, ONE_MIB)
    messages = [json.loads(body) for body in bodies]
    whole = {m["where"] for m in messages if "record_part" not in m}
    assert whole == {f"sqs:m-{i}:1" for i in (0, 2, 3, 4, 5)}          # before: the 600 KB one in 10 parts
    parts = [m for m in messages if "record_part" in m]
    at_classic = message_bodies(dead_letter_record(rejected[1]), CLASSIC_MESSAGE_BYTES)
    assert at_classic is not None and len(parts) * 4 <= len(at_classic) + 4      # before: as many as at 256 KiB
    assert {p["where"] for p in parts} == {"sqs:m-1:1"} and len(parts) == parts[0]["parts"]
    # 600 KB + 4 x 200 KB whole and 23 parts of the 3 MB one, 4.4 MB: 5 batches of up to 1 MiB
    assert batch_calls(contract) == 5

    (tmp_path / "bodies.ndjson").write_text("".join(body + "\n" for body in bodies))
    monkeypatch.chdir(tmp_path)
    code = main(["replay", "bodies.ndjson", "--to", "sqlite:///store.db", "--summary", "json"])
    summary = json.loads(capsys.readouterr().out)
    stored = {row[0]: json.loads(row[1]) for row in sqlite3.connect(tmp_path / "store.db").execute(
        "SELECT id, body FROM events")}
    assert code == 0 and (summary["records"], summary["replayed"], summary["not_replayable"]) == (6, 6, 0), summary
    assert {i: e["meta"]["custom"]["blob"] for i, e in stored.items()} == {
        e["id"]: e["meta"]["custom"]["blob"] for e in events}


def sized(limit: int, extra: int, where: str) -> Rejected:
    """A rejection whose dead-letter message body is `limit` + `extra` bytes."""
    raw = b"r" * (limit - 1_000)
    over = len(message_bodies(dead_letter_record(Rejected("too big", raw=raw, where=where)), 10 * ONE_MIB)[0]
               .encode()) - limit
    return Rejected("too big", raw=b"r" * (len(raw) - over + extra), where=where)


@pytest.mark.parametrize("limit", [ONE_MIB, 300_000])
@pytest.mark.parametrize("batch_entry", ["failed", "whole"])
def test_contract_a_message_of_the_queue_limit_is_sent_whole_one_byte_more_in_parts(aws, layer, limit, batch_entry):
    """The queue's limit to the byte, above the classic 256 KiB: a message of exactly MaximumMessageSize is
    one message SQS takes, one byte more is cut; two messages of half the limit share one batch."""
    contract = layer(batch_entry=batch_entry)
    sqs = sqs_client()
    url = sqs.create_queue(QueueName="dlq", Attributes={"MaximumMessageSize": str(limit)})["QueueUrl"]
    at_limit, over = sized(limit, 0, "sqs:m-1:1"), sized(limit, 1, "sqs:m-2:1")
    halves = [sized(limit // 2, 0, f"sqs:m-{i}:1") for i in (3, 4)]
    dead_letter = SqsDeadLetter(url, client=sqs)
    for r in (at_limit, over):
        dead_letter.put(r)
    assert dead_letter.flush() == []
    calls = batch_calls(contract)
    for r in halves:
        dead_letter.put(r)
    assert dead_letter.flush() == [] and dead_letter.count == 4
    assert batch_calls(contract) == calls + 1                          # both halves in one batch of the limit

    assert contract.refused == []
    bodies = drained(sqs, url, limit)
    sizes = {json.loads(body)["where"]: len(body.encode()) for body in bodies if '"record_part"' not in body}
    # before: each cut at 256 KiB (1 MiB), or refused by a queue the writer knew only as 256 KiB (300,000)
    assert sizes == {"sqs:m-1:1": limit, "sqs:m-3:1": limit // 2, "sqs:m-4:1": limit // 2}
    assert {json.loads(body)["where"] for body in bodies if '"record_part"' in body} == {"sqs:m-2:1"}


def test_contract_without_get_queue_attributes_a_1_mib_queue_is_written_at_256_kib_and_refuses_nothing(
        aws, layer, caplog):
    """A role without sqs:GetQueueAttributes: no refusal ever names a bigger limit, so the writer stays at the
    classic 256 KiB, which every queue at or above it takes (a smaller one names its own: 6cb952a)."""
    contract = layer(batch_entry="failed", get_queue_attributes=False)
    sqs = sqs_client()
    url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dead_letter = SqsDeadLetter(url, client=sqs)
    event = event_dicts(1, seed=41)[0]
    event.setdefault("meta", {}).setdefault("custom", {})["blob"] = "é" * 300_000
    dead_letter.put(Rejected("HTTP 413 from the destination", event=event, where="sqs:m-1:1", sink="hec"))
    assert dead_letter.flush() == [] and dead_letter.message_limit == CLASSIC_MESSAGE_BYTES
    assert contract.refused == []
    assert all("record_part" in json.loads(body) for body in drained(sqs, url, CLASSIC_MESSAGE_BYTES))

