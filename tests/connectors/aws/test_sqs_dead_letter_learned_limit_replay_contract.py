"""`wia-security replay` of what the SQS dead letter stored while learning its queue's limit from a refusal
(6cb952a), against moto behind the SQS size contract layer (tests/servers/sqs_contract.py).

A role without sqs:GetQueueAttributes writes at 256 KiB first; a 600 KB record then has some parts stored
before the queue (40,000 bytes) refuses the others, and it is cut again as a new write (a later
failed_at). The queue then holds the first write's stored parts (incomplete) and the second write whole:
replay must join the second write only, replay its event once and whole, and carry the first write's
parts as copies of the record joined (never join parts of two cuts, which gives a broken record)."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from servers.sqs_contract import SqsLimits
from strategies import event_dicts
from wia_security.cli import main
from wia_security.connectors.aws.dead_letter import SqsDeadLetter
from wia_security.connectors.base import Rejected

LIMIT = 40_000


@pytest.fixture
def sqs(aws, monkeypatch):
    import boto3
    with SqsLimits(aws.moto.url, batch_entry="failed", get_queue_attributes=False) as layer:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", layer.url)
        yield boto3.client("sqs", region_name="us-east-1"), layer


def big_event(seed: int, blob: str) -> dict[str, Any]:
    event = event_dicts(1, seed=seed)[0]
    event.setdefault("meta", {}).setdefault("custom", {})["blob"] = blob
    return event


def drained(client: Any, url: str) -> list[str]:
    bodies = []
    while got := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in got:
            bodies.append(message["Body"])
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_contract_replay_joins_only_the_write_cut_to_the_learned_limit(sqs, tmp_path, monkeypatch, capsys):
    client, layer = sqs
    url = client.create_queue(QueueName="dlq", Attributes={"MaximumMessageSize": str(LIMIT)})["QueueUrl"]
    # ASCII parts (33 KB) fit the queue, parts of é (65 KB) do not: the first write is stored in part
    mixed = big_event(21, "x" * 200_000 + "é" * 200_000)
    small = event_dicts(1, seed=22)[0]
    dead_letter = SqsDeadLetter(url, client=client)
    dead_letter.put(Rejected("HTTP 503 from the destination", event=mixed, where="s3://ingest/a.ndjson:7", sink="hec"))
    dead_letter.put(Rejected("HTTP 503 from the destination", event=small, where="sqs:m-1:1", sink="hec"))
    assert dead_letter.flush() == []
    assert layer.refused != []
    bodies = drained(client, url)
    writes = {(m["dead_letter_id"], m["failed_at"]) for m in map(json.loads, bodies) if "record_part" in m}
    assert len(writes) == 2                         # the first cut's stored parts, and the new write
    (tmp_path / "bodies.ndjson").write_text("".join(b + "\n" for b in bodies))

    monkeypatch.chdir(tmp_path)
    code = main(["replay", "bodies.ndjson", "--to", "sqlite:///store.db", "--summary", "json"])
    summary = json.loads(capsys.readouterr().out)
    events = {row[0]: json.loads(row[1]) for row in sqlite3.connect(tmp_path / "store.db").execute(
        "SELECT id, body FROM events")}
    assert set(events) == {mixed["id"], small["id"]}
    assert events[mixed["id"]]["meta"]["custom"]["blob"] == mixed["meta"]["custom"]["blob"]     # whole, once
    # the first cut's stored parts are taken as copies of the record joined from the second (same id)
    assert (summary["records"], summary["replayed"], summary["not_replayable"]) == (2, 2, 0), summary
    assert summary["parts"] == len(bodies) - 1 and code == 0
