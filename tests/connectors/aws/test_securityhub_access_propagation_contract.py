"""Security Hub sink, contract tests: BatchImportFindings answered 403 AccessDeniedException while the caller's
new IAM role or policy propagates. IAM is eventually consistent ("Changes that I make are not always immediately
visible", IAM user guide) and the Lambda template creates the function's role with it, so the first batches
after a deployment can meet IAM's refusal. boto3 -> tests/servers/fault_proxy.py (Security Hub's 403 answer:
x-amzn-ErrorType and a JSON body, as the REST-JSON protocol has it) -> the Security Hub contract layer -> moto.

Before: the 403 was dead-lettered at once, as permanent, like the Security Hub connector's every other 4xx."""
from __future__ import annotations

import json

import pytest
from strategies import event_dicts

from servers.fault_proxy import HTML_LOGIN, Fault, FaultProxy  # noqa: E402

from wia_security.connectors.aws.securityhub import PERMISSION_PROPAGATION_SECONDS, SecurityHubSink, make_client
from wia_security.connectors.delivery.policy import DeliveryPolicy

IMPORT = "/findings/import$"
ROLE = "arn:aws:sts::123456789012:assumed-role/wia-forwarder/wia-forwarder"
DENIED = json.dumps({"Code": "AccessDeniedException", "Message": f"User: {ROLE} is not authorized to perform: "
                     "securityhub:BatchImportFindings on resource: arn:aws:securityhub:us-east-1:123456789012:"
                     "product/123456789012/default"}).encode()


def denied(times: int = 1) -> list[Fault]:
    return [Fault("reply", status=403, body=DENIED, path=IMPORT,
                  headers={"Content-Type": "application/json", "x-amzn-ErrorType": "AccessDeniedException:http://"
                           "internal.amazon.com/coral/com.amazon.coral.service/"})] * times


class Clock:
    """The sink's monotonic clock, moved by hand (the propagation window)."""

    def __init__(self) -> None:
        self.now = 7000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hub(aws, monkeypatch):
    with FaultProxy(aws.securityhub.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECURITYHUB", proxy.url)
        proxy.aws = aws
        yield proxy


def make_sink(attempts: int = 4, clock: Clock | None = None) -> tuple[SecurityHubSink, list[float]]:
    sleeps: list[float] = []
    sink = SecurityHubSink("us-east-1", client=make_client("securityhub", "us-east-1"), sleep=sleeps.append,
                           delivery=DeliveryPolicy(max_wait=0, initial_backoff=0, max_attempts=attempts),
                           **({"clock": clock} if clock else {}))
    return sink, sleeps


def send(sink, events):
    report = sink.send(events)
    report.merge(sink.flush())
    return report


def imported(proxy) -> set[str]:
    page = proxy.aws.client("securityhub").get_findings(MaxResults=100)
    return {f["Id"] for f in page["Findings"]}


def test_contract_access_denied_while_the_role_propagates_is_retried_and_the_findings_land(hub):
    hub.add(*denied(2))
    events = event_dicts(3, seed=81)
    sink, sleeps = make_sink()
    report = send(sink, events)
    sink.close()
    assert report.delivered == 3 and not report.failed, [r.reason for r in report.failed]   # before: 3 dead letters
    assert len(sleeps) == 2 and [s.fault for s in hub.seen] == ["reply", "reply", None]
    assert imported(hub) == {e["id"] for e in events}


def test_contract_access_denied_past_the_retry_budget_is_retryable_and_names_the_action(hub):
    hub.add(*denied(10))
    sink, _ = make_sink(attempts=2)
    report = send(sink, event_dicts(2, seed=82))
    sink.close()
    assert len(report.failed) == 2 and all(r.retryable for r in report.failed)
    reason = report.failed[0].reason
    assert "Security Hub AccessDeniedException" in reason and "securityhub:BatchImportFindings on " \
        "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default" in reason, reason
    assert "5 minutes" in reason and "retried" in reason, reason


def test_contract_access_denied_after_the_window_fails_at_once(hub):
    """Bounded: a permission that never comes costs one window of retries, not every batch's retry budget."""
    hub.add(*denied(10))
    clock = Clock()
    sink, sleeps = make_sink(attempts=2, clock=clock)
    first = send(sink, event_dicts(1, seed=83))
    assert first.failed and first.failed[0].retryable
    clock.now += PERMISSION_PROPAGATION_SECONDS + 1
    sleeps.clear()
    calls = len(hub.seen)
    second = send(sink, event_dicts(1, seed=84))
    sink.close()
    [rejected] = second.failed
    assert not rejected.retryable and not sleeps and len(hub.seen) == calls + 1
    assert "not retried" in rejected.reason and "replay the dead letter" in rejected.reason


def test_contract_an_accepted_import_starts_the_window_again(hub):
    clock = Clock()
    sink, _ = make_sink(clock=clock)
    hub.add(*denied(1))
    assert send(sink, event_dicts(1, seed=85)).delivered == 1           # denied once, then imported
    clock.now += PERMISSION_PROPAGATION_SECONDS + 1
    hub.add(*denied(1))
    report = send(sink, event_dicts(1, seed=86))
    sink.close()
    assert report.delivered == 1 and not report.failed


def test_contract_a_proxy_403_page_is_not_taken_for_iam_and_fails_at_once(hub):
    hub.add(Fault("reply", status=403, body=HTML_LOGIN, path=IMPORT, headers={"Content-Type": "text/html"}))
    sink, sleeps = make_sink()
    report = send(sink, event_dicts(1, seed=87))
    sink.close()
    [rejected] = report.failed
    assert not rejected.retryable and not sleeps and "propagat" not in rejected.reason


def test_contract_failed_findings_access_denied_stays_permanent(hub):
    """The per-finding AccessDeniedException (the finding's account does not match the default product) is no
    IAM refusal: it is dead-lettered at once as before, whatever the window."""
    events = event_dicts(2, seed=88)
    hub.aws.securityhub.state.fail_finding(events[0]["id"], "AccessDeniedException", "account mismatch", times=5)
    sink, sleeps = make_sink()
    report = send(sink, events)
    sink.close()
    [rejected] = report.failed
    assert rejected.event["id"] == events[0]["id"] and not rejected.retryable and not sleeps
    assert report.delivered == 1


# -- the read-back (GetFindings) ----------------------------------------------------------------------

GET = "/findings$"


def denied_read(times: int = 1) -> list[Fault]:
    body = json.dumps({"Code": "AccessDeniedException", "Message": f"User: {ROLE} is not authorized to perform: "
                       "securityhub:GetFindings"}).encode()
    return [Fault("reply", status=403, body=body, path=GET,
                  headers={"Content-Type": "application/json", "x-amzn-ErrorType": "AccessDeniedException"})] * times


def test_contract_get_findings_refused_while_the_role_propagates_is_retried_and_reads_every_finding(hub):
    """Before: the first 403 ended the read-back (a non-retryable DeliveryError), as the import's did."""
    events = event_dicts(3, seed=89)
    sink, sleeps = make_sink()
    assert send(sink, events).delivered == 3
    hub.add(*denied_read(2))
    back = list(sink.get_findings())
    sink.close()
    assert sorted(f["Id"] for f in back) == sorted(e["id"] for e in events) and len(sleeps) == 2


def test_contract_get_findings_refused_past_the_budget_is_retryable_and_after_the_window_at_once(hub):
    from wia_security.errors import DeliveryError
    clock = Clock()
    sink, sleeps = make_sink(attempts=2, clock=clock)
    hub.add(*denied_read(10))
    with pytest.raises(DeliveryError) as first:
        list(sink.get_findings())
    assert first.value.retryable and len(sleeps) == 1 and "securityhub:GetFindings" in str(first.value)
    clock.now += PERMISSION_PROPAGATION_SECONDS + 1
    sleeps.clear()
    with pytest.raises(DeliveryError) as second:
        list(sink.get_findings())
    sink.close()
    assert not second.value.retryable and not sleeps and "not retried" in str(second.value)
