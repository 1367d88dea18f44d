"""SCC sink: RESOURCE_EXHAUSTED without a RetryInfo delay. SCC's rate quotas are per minute ("Writes per minute
1,000" per project, Security Command Center quotas; "rate quotas reset after a predefined time interval", Cloud
Quotas), so a refusal lasts until the quota's minute turns. Before, such a refusal was retried at the machinery's
sub-second backoff (0.5 s doubling: 6 tries within about 15 s), every try inside the exhausted minute, and the
events were dead-lettered well before the quota came back. The real client against the gRPC contract server."""
from __future__ import annotations

import grpc
import pytest

pytest.importorskip("google.cloud.securitycenter_v2", reason="the gcp extra is not installed")

from servers.scc_grpc import scc, scc_server  # noqa: E402,F401
from strategies import event_dicts  # noqa: E402

from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402
from wia_security.connectors.gcp.scc import QUOTA_WINDOW_SECONDS  # noqa: E402

QUOTA = "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute' of service " \
        "'securitycenter.googleapis.com'."


def make_sink(scc, source, policy: DeliveryPolicy):
    sleeps: list[float] = []
    url = f"scc://{source}?endpoint={scc.endpoint}&ca_file={scc.ca_file}&auth=anonymous"
    return open_sink(url, delivery=policy, sleep=sleeps.append), sleeps


def send(sink, events):
    report = sink.send(events)
    report.merge(sink.flush())
    sink.close()
    return report


def test_contract_quota_refusals_are_retried_past_the_quotas_minute_and_the_findings_land(scc):
    source = scc.create_source()
    policy = DeliveryPolicy(max_wait=0)                         # the default: 6 tries within 120 s
    scc.state.fail_next(grpc.StatusCode.RESOURCE_EXHAUSTED, times=policy.max_attempts - 1, message=QUOTA)
    sink, sleeps = make_sink(scc, source, policy)
    report = send(sink, event_dicts(1, seed=91))
    assert report.delivered == 1 and not report.failed, [r.reason for r in report.failed]
    # the last try a minute after the first (before: about 15 s, all inside the exhausted minute), within the budget
    assert len(sleeps) == policy.max_attempts - 1
    assert QUOTA_WINDOW_SECONDS - 0.01 <= sum(sleeps) <= policy.max_elapsed, sleeps


def test_contract_quota_exhausted_throughout_is_dead_lettered_with_the_reason_when_the_budget_is_spent(scc):
    source = scc.create_source()
    policy = DeliveryPolicy(max_wait=0, max_attempts=4, max_elapsed=20)      # the Lambda forwarder's
    scc.state.fail_next(grpc.StatusCode.RESOURCE_EXHAUSTED, times=50, message=QUOTA)
    sink, sleeps = make_sink(scc, source, policy)
    report = send(sink, event_dicts(2, seed=92))
    assert report.delivered == 0 and len(report.failed) == 2 and all(r.retryable for r in report.failed)
    reason = report.failed[0].reason
    assert reason.startswith("gave up after 4 attempt(s)") and "SCC RESOURCE_EXHAUSTED" in reason, reason
    assert "a quota" in reason and "1,000 writes a minute" in reason, reason
    # spread over the budget (not bunched at its start), and never past it
    assert len(sleeps) == 3 and min(sleeps) >= 5.0 and sum(sleeps) <= policy.max_elapsed, sleeps


def test_contract_a_retry_info_delay_still_wins(scc):
    source = scc.create_source()
    scc.state.fail_next(grpc.StatusCode.RESOURCE_EXHAUSTED, times=1, message=QUOTA, retry_delay=2.5)
    sink, sleeps = make_sink(scc, source, DeliveryPolicy(max_wait=0, initial_backoff=0, max_backoff=0))
    report = send(sink, event_dicts(1, seed=93))
    assert report.delivered == 1 and sleeps == [2.5]


@pytest.mark.parametrize("attempts, elapsed, expected", [(6, 120.0, 12.0), (4, 20.0, 6.0), (3, 30.0, 13.5),
                                                         (2, 0.0, 60.0), (1, 120.0, 60.0)])
def test_quota_backoff_spreads_the_retries(scc, attempts, elapsed, expected):
    sink, _ = make_sink(scc, "organizations/1/sources/2",
                        DeliveryPolicy(max_wait=0, max_attempts=attempts, max_elapsed=elapsed))
    assert sink.quota_backoff() == pytest.approx(expected)
    sink.close()
