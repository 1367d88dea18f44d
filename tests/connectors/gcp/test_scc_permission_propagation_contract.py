"""SCC sink: PERMISSION_DENIED on a write while the identity's new role binding propagates. IAM: "Changes to
allow or deny policies typically propagate in 2 minutes, but could potentially take 7 minutes or longer"
(Access change propagation); the Cloud Function's role is bound when it is deployed, so its first events met
PERMISSION_DENIED and were dead-lettered at once. The real client against the gRPC contract server."""
from __future__ import annotations

import grpc
import pytest

pytest.importorskip("google.cloud.securitycenter_v2", reason="the gcp extra is not installed")

from servers.scc_grpc import scc, scc_server  # noqa: E402,F401
from strategies import event_dicts  # noqa: E402

from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402
from wia_security.connectors.gcp.scc import PERMISSION_PROPAGATION_SECONDS  # noqa: E402

DENIED = "Permission 'securitycenter.findings.create' denied on resource (or it may not exist)."


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def make_sink(scc, source, clock=None, attempts=4):
    sleeps: list[float] = []
    url = f"scc://{source}?endpoint={scc.endpoint}&ca_file={scc.ca_file}&auth=anonymous"
    sink = open_sink(url, delivery=DeliveryPolicy(max_wait=0, initial_backoff=0, max_attempts=attempts),
                     sleep=sleeps.append, **({"clock": clock} if clock else {}))
    return sink, sleeps


def send(sink, events):
    report = sink.send(events)
    report.merge(sink.flush())
    return report


def test_contract_permission_denied_while_the_role_propagates_is_retried(scc):
    source = scc.create_source()
    scc.state.fail_next(grpc.StatusCode.PERMISSION_DENIED, times=2, message=DENIED)
    events = event_dicts(3, seed=71)
    sink, sleeps = make_sink(scc, source)
    report = send(sink, events)
    sink.close()
    assert report.delivered == 3 and not report.failed, [r.reason for r in report.failed]   # before: 2 dead-lettered
    assert sleeps


def test_contract_permission_denied_past_the_budget_names_the_permission_and_is_retryable(scc):
    source = scc.create_source()
    scc.state.fail_next(grpc.StatusCode.PERMISSION_DENIED, times=50, message=DENIED)
    sink, _ = make_sink(scc, source, attempts=2)
    report = send(sink, event_dicts(2, seed=72))
    sink.close()
    assert len(report.failed) == 2 and all(r.retryable for r in report.failed)
    reason = report.failed[0].reason
    assert "SCC PERMISSION_DENIED" in reason and "securitycenter.findings.create" in reason and source in reason
    assert "propagate" in reason


def test_contract_permission_denied_after_the_window_fails_at_once(scc):
    source = scc.create_source()
    scc.state.fail_next(grpc.StatusCode.PERMISSION_DENIED, times=50, message=DENIED)
    clock = Clock()
    sink, sleeps = make_sink(scc, source, clock=clock, attempts=2)
    first = send(sink, event_dicts(1, seed=73))
    assert first.failed and first.failed[0].retryable
    clock.now += PERMISSION_PROPAGATION_SECONDS + 1
    sleeps.clear()
    second = send(sink, event_dicts(1, seed=74))
    sink.close()
    [rejected] = second.failed
    assert not rejected.retryable and not sleeps and "not retried" in rejected.reason


def test_contract_a_write_accepted_starts_the_window_again(scc):
    source = scc.create_source()
    clock = Clock()
    sink, _ = make_sink(scc, source, clock=clock)
    scc.state.fail_next(grpc.StatusCode.PERMISSION_DENIED, times=1, message=DENIED)
    assert send(sink, event_dicts(1, seed=75)).delivered == 1        # denied once, then written
    clock.now += PERMISSION_PROPAGATION_SECONDS + 1
    scc.state.fail_next(grpc.StatusCode.PERMISSION_DENIED, times=1, message=DENIED)
    report = send(sink, event_dicts(1, seed=76))
    sink.close()
    assert report.delivered == 1 and not report.failed


# -- the read-back (ListFindings) -------------------------------------------------------------------------

LIST_DENIED = "Permission 'securitycenter.findings.list' denied on resource (or it may not exist)."


def test_contract_listing_denied_while_the_role_propagates_is_retried_and_reads_every_finding(scc):
    """Before: the first PERMISSION_DENIED ended the read-back (a non-retryable DeliveryError)."""
    source = scc.create_source()
    events = event_dicts(3, seed=77)
    sink, sleeps = make_sink(scc, source)
    assert send(sink, events).delivered == 3
    scc.state.fail_next(grpc.StatusCode.PERMISSION_DENIED, times=2, message=LIST_DENIED)
    back = list(sink.list_events())
    sink.close()
    assert sorted(e["id"] for e in back) == sorted(e["id"] for e in events) and len(sleeps) == 2


def test_contract_listing_denied_past_the_budget_is_retryable_and_after_the_window_at_once(scc):
    from wia_security.errors import DeliveryError
    source = scc.create_source()
    clock = Clock()
    sink, sleeps = make_sink(scc, source, clock=clock, attempts=2)
    scc.state.fail_next(grpc.StatusCode.PERMISSION_DENIED, times=50, message=LIST_DENIED)
    with pytest.raises(DeliveryError) as first:
        list(sink.items())
    assert first.value.retryable and len(sleeps) == 1 and "securitycenter.findings.list" in str(first.value)
    clock.now += PERMISSION_PROPAGATION_SECONDS + 1
    sleeps.clear()
    with pytest.raises(DeliveryError) as second:
        list(sink.items())
    sink.close()
    assert not second.value.retryable and not sleeps and "not retried" in str(second.value)
