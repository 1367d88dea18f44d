"""Security Hub, contract test: BatchImportFindings requests stay within "up to 6 MB per batch" as botocore
sends them. botocore writes the request body with json.dumps' defaults (", " and ": " between members, every
non-ASCII character as a \\uXXXX escape: 6 bytes for an é, 12 for an emoji); the sink counted compact UTF-8,
so a batch it held at 6 MiB went out bigger, up to several times with non-ASCII text, and the whole request
(up to 100 findings) was refused and dead-lettered."""
from __future__ import annotations

import copy
import json
import uuid

from servers.moto import MAX_IMPORT_REQUEST_BYTES

from wia_security.connectors import open_sink
from wia_security.connectors.aws.securityhub import MAX_FINDING_BYTES, MAX_REQUEST_BYTES, SecurityHubSink
from wia_security.connectors.delivery.policy import DeliveryPolicy

# batches as big as the API takes ("Send the largest batch that you can", partner guide): max_bytes = 6 MiB, the
# cap docs/cloud/aws.md names (the default, 1 MB, stays below 6 MB as sent even with emoji: at most 3 times)
LARGEST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.01, max_attempts=4,
                         max_bytes=MAX_REQUEST_BYTES)


def vulnerability(base: dict, text: str, products: int) -> dict:
    event = copy.deepcopy(base)
    event["id"] = str(uuid.uuid4())
    event["data"]["affected_products"] = [{"vendor": f"vendor{i}", "product": text, "versions": [f"1.{i}"]}
                                          for i in range(products)]
    return event


def send(events: list[dict]):
    with open_sink("securityhub://us-east-1", delivery=LARGEST) as sink:
        report = sink.send(events)
        report.merge(sink.flush())
        return report, sink


def test_the_contract_limit_is_the_sinks():
    assert MAX_IMPORT_REQUEST_BYTES == MAX_REQUEST_BYTES == SecurityHubSink.max_batch_bytes


def test_contract_requests_of_multibyte_findings_stay_within_6_mb_as_sent(aws, samples):
    # ~60 KB each in compact UTF-8, ~145 KB as botocore writes them: 100 fit 6 MiB counted the first way
    events = [vulnerability(samples["vulnerability-sample"], "é" * 100 + "🛡" * 10, 200) for _ in range(100)]
    report, sink = send(events)
    finding = sink.finding(events[0])
    assert len(json.dumps(finding, ensure_ascii=False, separators=(",", ":")).encode()) * 2 < len(json.dumps(finding))
    assert report.delivered == 100 and not report.failed, [f.reason for f in report.failed][:2]
    sent = aws.securityhub.state.import_bytes
    assert all(size <= MAX_REQUEST_BYTES for size in sent), sent
    assert len(sent) >= 3 and max(sent) > MAX_REQUEST_BYTES * 0.9, sent       # batches are filled, not tiny
    assert sum(aws.securityhub.state.import_calls) == 100                      # each finding sent once


def test_contract_requests_of_ascii_findings_stay_within_6_mb_as_sent(aws, samples):
    # ~107 KB each: 58 fit 6 MiB compact, and are ~3.5% more as sent (the spaces after , and :)
    events = [vulnerability(samples["vulnerability-sample"], "p" * 100, 600) for _ in range(70)]
    report, sink = send(events)
    assert len(json.dumps(sink.finding(events[0])).encode()) < MAX_FINDING_BYTES
    assert report.delivered == 70 and not report.failed, [f.reason for f in report.failed][:2]
    sent = aws.securityhub.state.import_bytes
    assert all(size <= MAX_REQUEST_BYTES for size in sent), sent
    assert sum(aws.securityhub.state.import_calls) == 70
