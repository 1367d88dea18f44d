"""Dead letters too big for one SQS message or one log event, through the handler with moto server and
the Security Hub contract layer.

- SQS: a queue takes at most its MaximumMessageSize (262,144 bytes for one created before 2025 or set to
  it; moto enforces the attribute). The queue here is at that classic limit.
- Logs (no WIA_DEAD_LETTER): Lambda sends each stdout line to CloudWatch Logs as a log event of at most
  256 KB (a longer line arrives as several events, none of them JSON; cuts at 64 KiB have been seen too),
  so every dead-letter line must stay under 64 KiB."""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import lambda_events as shapes

SECURITYHUB = ('[delivery]\nmax_attempts = 3\ninitial_backoff = 0.001\nmax_backoff = 0.01\n'
               '[destinations.securityhub]\nurl = "securityhub://us-east-1"\n')
CLASSIC_LIMIT = 262_144
#: the shortest cut of a stdout line into several CloudWatch events reported (256 KB is the event limit)
LINE_CUT_SEEN = 65_536
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



def test_contract_big_dead_letters_reach_a_1_mib_queue_whole(aws, monkeypatch, samples):
    """The template's DeadLetterQueue sets no MaximumMessageSize: created since 2025 it takes 1 MiB (SQS's
    default), which the role reads (ReadDeadLetterLimit). Both 600 KB records are one message each, through
    the SQS size contract layer (bytes counted as SQS does). Before: cut at 256 KiB, in 19 and 10 parts."""
    from servers.sqs_contract import SqsLimits
    sqs = aws.client("sqs")
    dlq = sqs.create_queue(QueueName="wia-dead-letter")["QueueUrl"]
    ingest = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]
    refused = big_event(aws, samples)
    event = shapes.sqs_event(sqs, ingest, [UNREADABLE, json.dumps(refused, ensure_ascii=False)])
    with SqsLimits(aws.moto.url) as layer:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", layer.url)                 # the function's SQS client
        module = start(aws, monkeypatch, "sqs://sqs.us-east-1.amazonaws.com/123456789012/wia-dead-letter")
        try:
            response = module.handler(event, None)
        finally:
            module.reset()
        assert response == {"batchItemFailures": []} and layer.refused == []

    bodies = []
    while got := sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", []):
        for m in got:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
    records = [json.loads(body) for body in bodies]
    assert len(records) == 2 and not any("record_part" in r for r in records)
    assert max(len(body.encode()) for body in bodies) > CLASSIC_LIMIT           # each one message over 256 KiB
    by_message = {r["where"].split(":")[1]: r for r in records}
    ids = [r["messageId"] for r in event["Records"]]
    assert by_message[ids[0]]["raw"] == UNREADABLE
    assert by_message[ids[1]]["event"]["data"]["description"] == refused["data"]["description"]

def test_big_log_dead_letters_are_written_in_parts_each_one_log_event(aws, monkeypatch, samples, capsys):
    sqs = aws.client("sqs")
    module = start(aws, monkeypatch, "")
    ingest = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]
    refused = big_event(aws, samples)
    controls = "\x01" * 100_000 + "}"                                   # 6 bytes each once escaped
    small = '{"broken":'
    medium = "m" * 100_000 + " not json"                               # under 256 KB, over 64 KiB
    event = shapes.sqs_event(sqs, ingest, [UNREADABLE, json.dumps(refused, ensure_ascii=False), controls, small,
                                           medium])
    capsys.readouterr()
    try:
        response = module.handler(event, None)
    finally:
        module.reset()

    assert response == {"batchItemFailures": []}
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line.encode()) for line in lines) < LINE_CUT_SEEN
    letters = [json.loads(line)["wia_dead_letter"] for line in lines if '"wia_dead_letter"' in line]
    parts, whole = defaultdict(list), []
    for letter in letters:
        (parts[letter["dead_letter_id"]] if "record_part" in letter else whole).append(letter)
    records = {r["where"].split(":")[1]: r for r in [*map(joined, parts.values()), *whole]}
    ids = [r["messageId"] for r in event["Records"]]
    assert records[ids[0]]["raw"] == UNREADABLE
    assert records[ids[1]]["event"]["data"]["description"] == refused["data"]["description"]
    assert records[ids[2]]["raw"] == controls
    assert records[ids[3]]["raw"] == small and len(whole) == 1       # a small one stays one entry
    assert records[ids[4]]["raw"] == medium


def test_a_secret_across_two_parts_is_masked_before_the_record_is_cut(monkeypatch, capsys):
    from wia_lambda import logs
    from wia_lambda.dead_letter import PartedLogDeadLetter
    from wia_security.connectors.base import Rejected

    secret = "hunter2-rotating-token"
    monkeypatch.setattr(logs, "_SECRETS", set())
    logs.redact(secret)
    line = (secret + "!") * 10_000                                     # a copy straddles every part boundary
    capsys.readouterr()
    PartedLogDeadLetter(logs.get_logger()).put(Rejected("unparseable input", raw=line.encode(), where="sqs:m:1"))

    out = capsys.readouterr().out
    pieces = [json.loads(entry)["wia_dead_letter"] for entry in out.splitlines()]
    record = joined(pieces)
    assert len(pieces) > 1 and secret not in "".join(p["record_part"] for p in pieces) and secret not in out
    assert record["raw"] == "***!" * 10_000


def test_contract_a_dead_letter_queue_below_256_kib_holds_every_record_on_the_last_receive(aws, monkeypatch, samples,
                                                                                            caplog):
    """A dead-letter queue set to 40,000 bytes, a role without sqs:GetQueueAttributes on it (a queue of the
    user's own), through the SQS size contract layer: a 600 KB unreadable line, a 600 KB event Security Hub
    refuses and a 100 KB line are dead-lettered within the queue's limit, and the messages settle. Before:
    the records over 40,000 bytes were refused, the messages reported back, and on their last receive the
    given-up whole bodies were refused too: SQS moved the messages to the redrive queue, the reasons only
    in the log."""
    from servers.sqs_contract import SqsLimits

    sqs = aws.client("sqs")
    dlq = sqs.create_queue(QueueName="wia-dead-letter", Attributes={"MaximumMessageSize": "40000"})["QueueUrl"]
    ingest = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]
    refused = big_event(aws, samples)
    medium = "m" * 100_000 + " not json"
    event = shapes.sqs_event(sqs, ingest, [UNREADABLE, json.dumps(refused, ensure_ascii=False), medium])
    with SqsLimits(aws.moto.url, get_queue_attributes=False) as layer:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", layer.url)
        monkeypatch.setenv("WIA_SQS_MAX_RECEIVE_COUNT", "1")            # this receive is the last
        module = start(aws, monkeypatch, "sqs://sqs.us-east-1.amazonaws.com/123456789012/wia-dead-letter")
        try:
            response = module.handler(event, None)
        finally:
            module.reset()
    assert response == {"batchItemFailures": []}
    assert layer.refused and "could not read the dead-letter queue's MaximumMessageSize" in caplog.text
    bodies = []
    while got := sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", []):
        for m in got:
            assert len(m["Body"].encode()) <= 40_000
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
    writes = defaultdict(list)
    for body in bodies:
        writes[(body["dead_letter_id"], body["failed_at"])].append(body)
    complete = [p for p in writes.values() if len(p) == p[0]["parts"]]     # a write cut again leaves parts behind
    records = {r["where"].split(":")[1]: r for r in map(joined, complete)}
    ids = [r["messageId"] for r in event["Records"]]
    assert records[ids[0]]["raw"] == UNREADABLE and records[ids[0]]["reason"].startswith("unparseable input")
    assert records[ids[1]]["event"]["data"]["description"] == refused["data"]["description"]
    assert records[ids[2]]["raw"] == medium
