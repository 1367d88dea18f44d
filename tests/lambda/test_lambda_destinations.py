"""The Lambda forwarder fanning one SQS batch out to every kind of destination it supports — Security
Hub (moto + contract layer), Splunk HEC (contract server, token from Secrets Manager), OpenSearch
(osmem emulator) and Kafka (tansu) — with invalid records and failing destinations: the response
names exactly the failed messages, and every message is delivered, dead-lettered or reported back."""
from __future__ import annotations

import copy
import json
import secrets
import sys
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("confluent_kafka", reason="the kafka extra is not installed")
pytest.importorskip("opensearchpy", reason="the elastic extra is not installed")

sys.path.insert(0, str(Path(__file__).parent))
import lambda_events as shapes  # noqa: E402
from servers.hec_contract import Fault, HecContractServer  # noqa: E402
from servers.osmem import osmem, osmem_base  # noqa: E402,F401
from servers.tansu import tansu  # noqa: E402,F401

from wia_security import validate_event  # noqa: E402


def fresh(event: dict) -> dict:
    event = copy.deepcopy(validate_event(event, lenient=True).event)
    event["id"] = str(uuid.uuid4())
    return event


def kafka_values(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[dict]:
    from confluent_kafka import Consumer
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{topic}",
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    found, deadline = [], time.monotonic() + timeout
    try:
        while len(found) < expected and time.monotonic() < deadline:
            found += [json.loads(m.value()) for m in consumer.consume(100, 1.0) if m.error() is None]
    finally:
        consumer.close()
    return found


def opensearch_ids(url: str) -> set[str]:
    from opensearchpy import OpenSearch
    client = OpenSearch(url)
    client.indices.refresh(index="wia-*")
    hits = client.search(index="wia-*", body={"query": {"match_all": {}}, "size": 100})["hits"]["hits"]
    return {h["_id"] for h in hits}


def test_fan_out_to_every_destination_with_failures(aws, osmem, tansu, monkeypatch, samples, capsys):
    token = secrets.token_hex(16)
    sm = aws.client("secretsmanager")
    arn = sm.create_secret(Name="wia/splunk-hec", SecretString=json.dumps({"token": token}))["ARN"]
    topic = tansu.create_topic(partitions=1)
    sqs = aws.client("sqs")
    sqs.create_queue(QueueName="wia-dead-letter")
    ingest = sqs.create_queue(QueueName="wia-ingest")["QueueUrl"]

    e0, e1, e3, e4 = (fresh(samples[n]) for n in ("alert-sample", "incident-sample", "auth-event-sample",
                                                  "endpoint-event-sample"))
    e5, e6 = fresh(samples["network-event-sample"]), fresh(samples["vulnerability-sample"])
    bodies = [json.dumps(e0),                        # m0: delivered everywhere
              json.dumps(e1),                        # m1: Security Hub keeps failing it (retryable) -> reported
              '{"id": "unterminated',                # m2: not JSON -> dead letter
              json.dumps(e3),                        # m3: Splunk refuses it (invalid event) -> dead letter for splunk
              json.dumps(e4),                        # m4: delivered everywhere
              "\n".join([json.dumps(e5), json.dumps(e6)])]   # m5: NDJSON, delivered everywhere
    event = shapes.sqs_event(sqs, ingest, bodies)
    ids = [r["messageId"] for r in event["Records"]]
    aws.securityhub.state.fail_finding(e1["id"], "InternalException", "busy", times=100)

    with HecContractServer({token: {}}) as hec:
        # one HEC request carries the chunk in order [e0, e1, e3, e4, e5, e6]: e3 is event number 2
        hec.state.faults.append(Fault("invalid_event", code=6, index=2))
        config = (
            "[delivery]\nmax_attempts = 3\ninitial_backoff = 0.001\nmax_backoff = 0.01\n"
            '[destinations.securityhub]\nurl = "securityhub://us-east-1"\n'
            f'[destinations.splunk]\nurl = "splunk+http://127.0.0.1:{hec.port}"\n'
            f'token_secretsmanager = "{arn}#token"\nindex = "security"\n'
            f'[destinations.opensearch]\nurl = "opensearch+{osmem}?index=wia"\n'
            f'[destinations.kafka]\nurl = "kafka://{tansu.bootstrap}/{topic}"\n')
        monkeypatch.setenv("WIA_CONFIG", config)
        monkeypatch.setenv("WIA_DEAD_LETTER", "sqs://sqs.us-east-1.amazonaws.com/123456789012/wia-dead-letter")
        from wia_lambda import handler as module
        module.reset()
        try:
            response = module.handler(event, None)
        finally:
            module.reset()
        hec_ids = {e["event"]["id"] for e in hec.events}

    assert response == {"batchItemFailures": [{"itemIdentifier": ids[1]}]}
    valid = [e0, e1, e3, e4, e5, e6]
    # each destination holds what it accepted
    import boto3
    findings = {f["Id"] for f in boto3.client("securityhub", region_name="us-east-1",
                                              endpoint_url=aws.moto.url).get_findings()["Findings"]}
    assert findings == {e["id"] for e in valid} - {e1["id"]}
    assert hec_ids == {e["id"] for e in valid} - {e3["id"]}
    assert opensearch_ids(osmem) == {e["id"] for e in valid}
    assert {v["id"] for v in kafka_values(tansu.bootstrap, topic, len(valid))} == {e["id"] for e in valid}
    # the dead letter: the unparseable message and Splunk's refusal of e3, each with its reason
    queue = sqs.get_queue_url(QueueName="wia-dead-letter")["QueueUrl"]
    dead = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]]
    assert len(dead) == 2
    refused = next(d for d in dead if d.get("sink") == "splunk")
    assert refused["event"]["id"] == e3["id"] and "invalid-event-number 2" in refused["reason"]
    unparseable = next(d for d in dead if d.get("sink") is None)
    assert unparseable["where"].startswith(f"sqs:{ids[2]}:") and unparseable["raw"] == bodies[2]
    # every message accounted for once: reported back, dead-lettered (for at least one destination) or delivered
    reported, dead_messages, delivered = {ids[1]}, {ids[2], ids[3]}, {ids[0], ids[4], ids[5]}
    assert reported | dead_messages | delivered == set(ids) and len(ids) == 6
    # the Splunk token never reached the logs
    assert token not in capsys.readouterr().out
