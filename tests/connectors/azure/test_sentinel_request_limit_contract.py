"""Sentinel connector, contract test: a 413 answered to a request under the sink's own 1 MiB cap (a proxy in
front of the data collection endpoint allowing less, or the service counting the body differently). The
real azure-monitor-ingestion client against the TLS contract server (tests/servers/sentinel_contract.py)."""
from __future__ import annotations

import logging

import pytest

pytest.importorskip("azure.monitor.ingestion", reason="the azure extra is not installed")

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: E402,F401  (fixtures)
from test_sentinel_contract import DCR, make_sink, padded  # noqa: E402

LIMIT = 300_000


def test_contract_a_413_splits_the_batch_and_delivers_every_row_once(sentinel, samples, caplog):
    """A 413 was a permanent error of the whole batch: up to 1 MiB of events (about 24 of these) dead-lettered at
    once, and every later batch after it, for as long as the limit stood. Now the batch is halved until each
    part fits, and the sink batches below the refused size from then on (as the Elastic and HEC sinks do)."""
    sentinel.state.max_request_bytes = LIMIT
    events = [padded(samples["network-event-sample"], 40_000) for _ in range(60)]      # ~2.4 MB in all
    with caplog.at_level(logging.WARNING), make_sink(sentinel) as sink:
        report = sink.send(events)
        report.merge(sink.flush())
    assert not report.failed, report.failed[0].reason
    assert report.delivered == 60
    rows = [r["EventId"] for r in sentinel.state.all_rows()]
    assert sorted(rows) == sorted(e["id"] for e in events)             # each exactly once
    stored = [r for r in sentinel.state.requests if r.status == 204]
    assert stored and all(r.body_bytes <= LIMIT for r in stored)
    assert "was refused" in caplog.text and "batching to" in caplog.text


def test_contract_one_row_over_the_limit_is_dead_lettered_alone(sentinel, samples):
    sentinel.state.max_request_bytes = 30_000
    small = [padded(samples["alert-sample"], 2_000) for _ in range(4)]
    large = padded(samples["alert-sample"], 40_000)
    with make_sink(sentinel) as sink:
        report = sink.send([*small[:2], large, *small[2:]])
        report.merge(sink.flush())
    assert report.delivered == 4 and len(report.failed) == 1
    failed = report.failed[0]
    assert failed.event["id"] == large["id"] and not failed.retryable
    assert "HTTP 413 ContentLengthLimitExceeded" in failed.reason and "one row of" in failed.reason
    assert sorted(r["EventId"] for r in sentinel.state.all_rows()) == sorted(e["id"] for e in small)
