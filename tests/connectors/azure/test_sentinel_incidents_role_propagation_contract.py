"""Sentinel incidents, contract tests: Resource Manager's 403 AuthorizationFailed while the identity's new role on the
workspace takes effect ("it can sometimes take up to 30 minutes for changes to take effect when you assign roles",
Azure RBAC troubleshooting; the ARM template assigns Microsoft Sentinel Responder with the function). The real
azure-mgmt-securityinsight client through tests/servers/fault_proxy.py (TLS) in front of the contract server.

Before: the rows connector retried its 403 for PERMISSION_PROPAGATION_SECONDS, but the incidents connector failed
at once: an upsert was a permanent dead letter, and a listing (the read-back) raised a non-retryable DeliveryError."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("azure.mgmt.securityinsight", reason="the azure extra is not installed")

from servers.fault_proxy import HTML_LOGIN, Fault  # noqa: E402
from servers.sentinel_contract import sentinel, sentinel_server  # noqa: E402,F401  (fixtures)
from test_sentinel_misbehaving_contract import proxy  # noqa: E402,F401  (fixture)

from wia_security.connectors.azure.sentinel import PERMISSION_PROPAGATION_SECONDS, SentinelIncidents  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402
from wia_security.errors import DeliveryError  # noqa: E402

SCOPE = ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/ws/providers/"
         "Microsoft.SecurityInsights/incidents")


def refused(action: str = "read", times: int = 1, path: str = "/incidents") -> list[Fault]:
    """Resource Manager's answer to a caller without the role (yet): 403 AuthorizationFailed."""
    body = json.dumps({"error": {"code": "AuthorizationFailed", "message": (
        "The client '6d5a9b1e-0000-0000-0000-000000000000' with object id '6d5a9b1e-0000-0000-0000-000000000000' "
        f"does not have authorization to perform action 'Microsoft.SecurityInsights/incidents/{action}' over scope "
        f"'{SCOPE}' or the scope is invalid. If access was recently granted, please refresh your credentials.")}})
    return [Fault("reply", status=403, body=body.encode(), headers={"Content-Type": "application/json"},
                  path=path)] * times


class Clock:
    def __init__(self) -> None:
        self.now = 3000.0

    def __call__(self) -> float:
        return self.now


def client(proxy, attempts: int = 4, clock: Clock | None = None) -> tuple[SentinelIncidents, list[float]]:
    sleeps: list[float] = []
    incidents = SentinelIncidents("s", "rg", "ws", base_url=proxy.url, ca_file=proxy.contract.ca_file, retry_total=0,
                                  delivery=DeliveryPolicy(initial_backoff=0, max_attempts=attempts),
                                  sleep=sleeps.append, **({"clock": clock} if clock else {}))
    return incidents, sleeps


def test_contract_listing_refused_while_the_role_propagates_is_retried_and_reads_every_incident(proxy, samples):
    incidents, sleeps = client(proxy)
    assert incidents.send([samples["incident-sample"], samples["alert-sample"]]).delivered == 2
    proxy.add(*refused(times=2))
    events = list(incidents.list_events())          # before: DeliveryError (not retryable) on the first 403
    incidents.close()
    assert sorted(e["id"] for e in events) == sorted([samples["incident-sample"]["id"], samples["alert-sample"]["id"]])
    assert len(sleeps) == 2


def test_contract_listing_refused_past_the_budget_is_retryable_and_names_the_reader_role(proxy):
    incidents, sleeps = client(proxy, attempts=2)
    proxy.add(*refused(times=5))
    with pytest.raises(DeliveryError) as err:
        list(incidents.items())
    incidents.close()
    assert err.value.retryable and err.value.status == 403 and len(sleeps) == 1
    reason = str(err.value)
    assert "listing incidents failed after 0 incident(s)" in reason and "AuthorizationFailed" in reason
    assert "Microsoft Sentinel Reader" in reason and "30 minutes" in reason, reason


def test_contract_listing_refused_after_the_window_fails_at_once(proxy):
    clock = Clock()
    incidents, sleeps = client(proxy, attempts=2, clock=clock)
    proxy.add(*refused(times=5))
    with pytest.raises(DeliveryError) as first:
        list(incidents.items())
    assert first.value.retryable
    clock.now += PERMISSION_PROPAGATION_SECONDS + 1
    sleeps.clear()
    calls = len(proxy.seen)
    with pytest.raises(DeliveryError) as second:
        list(incidents.items())
    incidents.close()
    assert not second.value.retryable and not sleeps and len(proxy.seen) == calls + 1
    assert "not retried" in str(second.value)


def test_contract_upsert_refused_while_the_role_propagates_is_retried(proxy, samples):
    incidents, sleeps = client(proxy)
    proxy.add(*refused("write", times=2, path="/incidents/"))
    report = incidents.send([samples["incident-sample"]])
    incidents.close()
    assert report.delivered == 1 and not report.failed, [r.reason for r in report.failed]   # before: dead-lettered
    assert len(sleeps) == 2 and samples["incident-sample"]["id"] in proxy.contract.state.incidents


def test_contract_upserts_refused_past_the_budget_are_retryable_and_the_rest_not_each_retried(proxy, samples):
    incidents, sleeps = client(proxy, attempts=3)
    proxy.add(*refused("write", times=10, path="/incidents/"))
    events = [samples["incident-sample"], samples["alert-sample"]]
    report = incidents.send(events)
    incidents.close()
    assert report.delivered == 0 and [r.retryable for r in report.failed] == [True, True]
    assert "Microsoft Sentinel Responder" in report.failed[0].reason and "retried" in report.failed[0].reason
    assert "not tried, the incident before it was refused" in report.failed[1].reason
    assert len(sleeps) == 2 and len([s for s in proxy.seen if s.method == "PUT"]) == 3     # one budget, not two


def test_contract_a_proxy_403_page_fails_the_listing_at_once(proxy):
    incidents, sleeps = client(proxy)
    proxy.add(Fault("reply", status=403, body=HTML_LOGIN, headers={"Content-Type": "text/html"}, path="/incidents"))
    with pytest.raises(DeliveryError) as err:
        list(incidents.items())
    incidents.close()
    assert not err.value.retryable and not sleeps and "propagat" not in str(err.value)
