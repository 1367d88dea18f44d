"""Dead letters too big for one SQS message, through the handler with moto server and the Security Hub
contract layer.

- SQS: a queue takes at most its MaximumMessageSize (262,144 bytes for one created before 2025 or set to
  it; moto enforces the attribute). The queue here is at that classic limit."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import lambda_events as shapes

SECURITYHUB = ('[delivery]\nmax_attempts = 3\ninitial_backoff = 0.001\nmax_backoff = 0.01\n'
               '[destinations.securityhub]\nurl = "securityhub://us-east-1"\n')
CLASSIC_LIMIT = 262_144
UNREADABLE = "x" * 599_990 + " not json"                           # a 600 KB line that is not JSON


def big_event(aws: Any, samples: dict[str, Any]) -> dict[str, Any]:
    """A valid event of ~600 KB that Security Hub (the contract layer) refuses for good."""
    event = json.loads(json.dumps(samples["alert-sample"]))
    event["id"] = "7b1c1f8e-5d0a-4f63-9a53-6a4f6c1d0e11"
    event["data"]["description"] = "é" * 300_000
    aws.securityhub.state.fail_finding(event["id"], "InvalidInput", "rejected by the contract", times=100)
    return event


def start(aws: Any, monkeypatch: Any, dead_letter: str) -> Any:
    monkeypatch.setenv("WIA_CONFIG", SECURITYHUB)
    monkeypatch.setenv("WIA_DEAD_LETTER", dead_letter)
    from wia_lambda import handler as module
    module.reset()
    return module


def joined(pieces: list[dict[str, Any]]) -> dict[str, Any]:
    pieces = sorted(pieces, key=lambda p: p["part"])
    assert [p["part"] for p in pieces] == list(range(1, pieces[0]["parts"] + 1))
    assert len({p["dead_letter_id"] for p in pieces}) == 1
    return json.loads("".join(p["record_part"] for p in pieces))


def test_big_dead_letters_reach_an_sqs_queue_at_the_classic_limit_in_parts(aws, monkeypatch, samples):
    sqs = aws.client("sqs")
    dlq = sqs.create_queue(QueueName="wia-dead-letter",
                           Attributes={"MaximumMessageSize": str(CLASSIC_LIMIT)})["QueueUrl"]
    module = start(aws, monkeypatch, "sqs://sqs.us-east-1.amazonaws.com/123456789012/wia-dead-letter")
    ingest = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]     # 1 MiB messages (SQS since 2025)
    refused = big_event(aws, samples)
    event = shapes.sqs_event(sqs, ingest, [UNREADABLE, json.dumps(refused, ensure_ascii=False)])
    try:
        response = module.handler(event, None)
    finally:
        module.reset()

    assert response == {"batchItemFailures": []}          # both dead-lettered, neither retried nor lost
    bodies = []
    while got := sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", []):
        for m in got:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
    parts = defaultdict(list)
    for body in bodies:
        parts[body["dead_letter_id"]].append(body)
    records = {r["where"].split(":")[1]: r for r in map(joined, parts.values())}
    ids = [r["messageId"] for r in event["Records"]]
    assert records[ids[0]]["raw"] == UNREADABLE and records[ids[0]]["reason"].startswith("unparseable input")
    assert records[ids[1]]["event"]["data"]["description"] == refused["data"]["description"]
    assert records[ids[1]]["sink"] == "securityhub"
