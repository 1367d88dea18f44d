"""Sentinel connector, contract tests: the Logs Ingestion API's 403 while the identity's role on the DCR is new.
"The permissions may take up to 30 minutes to propagate" (azure-monitor-ingestion TROUBLESHOOTING.md), and the
ARM template deploys the role assignment with the function that sends: the first minutes after a deployment
meet 403 OperationFailed. The real azure-monitor-ingestion client against the TLS contract server."""
from __future__ import annotations

import pytest

pytest.importorskip("azure.monitor.ingestion", reason="the azure extra is not installed")

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: E402,F401  (fixtures)
from test_sentinel_contract import DCR, make_sink  # noqa: E402

from wia_security.connectors.azure.sentinel import PERMISSION_PROPAGATION_SECONDS  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402


class Clock:
    """A monotonic clock the test moves by hand (the sink's, for the propagation window)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def send(sink, events):
    sleeps: list[float] = []
    sink._sleep = sleeps.append                 # record the backoff instead of waiting
    report = sink.send(events)
    report.merge(sink.flush())
    sink.close()
    return report, sleeps


def send_keep_open(sink, events):
    """As `send`, the sink left open (its propagation window kept) for a second send."""
    sink._sleep = lambda seconds: None
    report = sink.send(events)
    report.merge(sink.flush())
    return report, None


def test_contract_403_while_the_role_propagates_is_retried_and_the_rows_land(sentinel, samples):
    """It was dead-lettered at once as a permanent 'HTTP 403 OperationFailed'."""
    sentinel.state.deny_next(2)
    events = list(samples.values())
    report, sleeps = send(make_sink(sentinel), events)
    assert report.delivered == len(events) and not report.failed, report.failed[:1]
    assert [r.status for r in sentinel.state.requests] == [403, 403, 204] and len(sleeps) == 2
    assert sorted(r["EventId"] for r in sentinel.state.all_rows()) == sorted(e["id"] for e in events)


def test_contract_403_past_the_retry_budget_is_a_retryable_failure_naming_role_and_rule(sentinel, samples):
    sentinel.state.deny_next(10)
    events = list(samples.values())
    report, _ = send(make_sink(sentinel, delivery=DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0)),
                     events)
    assert report.delivered == 0 and len(report.failed) == len(events)
    reason = report.failed[0].reason
    assert all(r.retryable for r in report.failed), reason
    assert "HTTP 403 OperationFailed" in reason and "Monitoring Metrics Publisher" in reason and DCR in reason
    assert "30 minutes to propagate" in reason, reason


def test_contract_403_still_answered_after_the_propagation_window_fails_at_once(sentinel, samples):
    """Bounded: a role that never comes costs one window of retries, not every batch's whole retry budget."""
    sentinel.state.deny_next(10)
    clock = Clock()
    sink = make_sink(sentinel, delivery=DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0))
    sink._clock = clock
    first, _ = send_keep_open(sink, [samples["alert-sample"]])
    assert first.failed and first.failed[0].retryable            # within the window: retried, then given up
    clock.now += PERMISSION_PROPAGATION_SECONDS + 1
    calls = len(sentinel.state.requests)
    second, sleeps = send(sink, [samples["incident-sample"]])
    assert len(second.failed) == 1 and not sleeps and len(sentinel.state.requests) == calls + 1
    rejected = second.failed[0]
    assert not rejected.retryable and "not retried" in rejected.reason and "replay the dead letter" in rejected.reason


def test_contract_an_accepted_upload_starts_the_window_again(sentinel, samples):
    sentinel.state.deny_next(1)
    clock = Clock()
    sink = make_sink(sentinel)
    sink._clock = clock
    first, _ = send_keep_open(sink, [samples["alert-sample"]])   # 403, then 204: the window closes
    assert first.delivered == 1
    clock.now += PERMISSION_PROPAGATION_SECONDS + 1
    sentinel.state.deny_next(1)                                     # a later 403 is a new run of them
    second, sleeps = send(sink, [samples["incident-sample"]])
    assert second.delivered == 1 and len(sleeps) == 1

