"""SCC v2 finding state and event time, as the API defines them (contract server: tests/servers/scc_grpc.py).

In v2 `Finding.state` is output only (the client's own Finding docstring): CreateFinding and UpdateFinding
ignore it, a new finding is ACTIVE, and only SetFindingState changes it. `event_time` "must not be set to a
value greater than the current timestamp": an event stamped a little ahead of SCC's clock is refused."""
from __future__ import annotations

import copy
import datetime as dt

import grpc
import pytest

pytest.importorskip("google.cloud.securitycenter_v2", reason="the gcp extra is not installed")

from servers.scc_grpc import scc, scc_server  # noqa: E402,F401

from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402
from wia_security.connectors.gcp.scc import finding_id_for  # noqa: E402

FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.01, max_attempts=4)


def send(server, source, events, **options):
    url = f"scc://{source}?endpoint={server.endpoint}&ca_file={server.ca_file}&auth=anonymous"
    with open_sink(url, delivery=options.pop("delivery", FAST), **options) as sink:
        report = sink.send(events)
        report.merge(sink.flush())
    return report


def finding_of(server, event):
    return next(f for f in server.state.findings.values() if f.name.endswith(finding_id_for(event)))


def with_status(event, status):
    event = copy.deepcopy(event)
    event["data"]["status"] = status
    return event


def test_contract_a_resolved_event_becomes_an_inactive_finding(scc, samples):
    source = scc.create_source()
    resolved = with_status(samples["alert-sample"], "false_positive")
    report = send(scc, source, [resolved, samples["incident-sample"]])
    assert report.delivered == 2 and not report.failed
    assert finding_of(scc, resolved).state.name == "INACTIVE"
    assert finding_of(scc, samples["incident-sample"]).state.name == "ACTIVE"
    # an ACTIVE event needs no SetFindingState (a new finding is ACTIVE)
    assert scc.state.calls.count("SetFindingState") == 1


def test_contract_a_resent_event_moves_the_state_both_ways(scc, samples):
    source = scc.create_source()
    alert = samples["alert-sample"]
    assert send(scc, source, [alert]).delivered == 1
    assert send(scc, source, [with_status(alert, "resolved")]).delivered == 1
    assert finding_of(scc, alert).state.name == "INACTIVE" and len(scc.state.findings) == 1
    assert send(scc, source, [with_status(alert, "investigating")]).delivered == 1   # reopened
    assert finding_of(scc, alert).state.name == "ACTIVE"
    assert send(scc, source, [alert]).delivered == 1                 # same state: no SetFindingState
    assert scc.state.calls.count("SetFindingState") == 2


def test_contract_set_state_failing_after_the_create_is_retried_to_the_right_state(scc, samples):
    source = scc.create_source()
    resolved = with_status(samples["alert-sample"], "closed")
    scc.state.override_next("SetFindingState", lambda req, ctx, impl: ctx.abort(grpc.StatusCode.UNAVAILABLE, "later"))
    report = send(scc, source, [resolved])
    assert report.delivered == 1 and not report.failed
    assert finding_of(scc, resolved).state.name == "INACTIVE" and len(scc.state.findings) == 1
    assert scc.state.calls.count("SetFindingState") == 2


def test_contract_state_refused_names_the_finding_written(scc, samples):
    source = scc.create_source()
    resolved = with_status(samples["alert-sample"], "resolved")
    scc.state.override_next("SetFindingState",
                            lambda req, ctx, impl: ctx.abort(grpc.StatusCode.PERMISSION_DENIED, "no setState"))
    report = send(scc, source, [resolved])
    assert not report.delivered and len(report.failed) == 1 and not report.failed[0].retryable
    reason = report.failed[0].reason
    assert "PERMISSION_DENIED" in reason and "INACTIVE" in reason and "securitycenter.findings.setState" in reason


def test_contract_an_event_stamped_ahead_of_the_clock_is_delivered(scc, samples):
    source = scc.create_source()
    ahead = copy.deepcopy(samples["incident-sample"])
    ahead["timestamp"] = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    before = dt.datetime.now(dt.timezone.utc)
    report = send(scc, source, [ahead])
    assert report.delivered == 1 and not report.failed, [r.reason for r in report.failed]
    finding = finding_of(scc, ahead)
    assert before - dt.timedelta(seconds=1) <= finding.event_time <= dt.datetime.now(dt.timezone.utc)
    import json
    assert json.loads(finding.source_properties["wia_event"])["timestamp"] == ahead["timestamp"]   # kept as sent


# -- re-sending an event: what the update may and may not change ------------------------------------------
# `category` and `resource_name` are Immutable (the Finding docstring; AIP-203: a change is INVALID_ARGUMENT),
# and an empty update mask replaces every mutable field, `mute` too ("a finding provider shouldn't set" it).

def test_contract_a_resent_event_whose_category_changed_updates_the_rest(scc, samples):
    source = scc.create_source()
    alert = copy.deepcopy(samples["alert-sample"])
    assert send(scc, source, [alert]).delivered == 1
    first = finding_of(scc, alert).category
    alert["data"]["category"] = "ransomware"                # refined later: another WIA_ALERT_* category
    alert["severity"] = 3
    report = send(scc, source, [alert])
    assert report.delivered == 1 and not report.failed, [r.reason for r in report.failed]
    finding = finding_of(scc, alert)
    assert finding.category == first and finding.severity.name == "MEDIUM"          # immutable kept, rest updated
    import json
    assert json.loads(finding.source_properties["wia_event"])["data"]["category"] == "ransomware"


def test_contract_a_resent_event_keeps_the_resource_it_was_created_with(scc, samples):
    source = scc.create_source()
    incident = samples["incident-sample"]
    assert send(scc, source, [incident], resource="//cloudresourcemanager.googleapis.com/projects/old").delivered == 1
    report = send(scc, source, [incident], resource="//cloudresourcemanager.googleapis.com/projects/new")
    assert report.delivered == 1 and not report.failed, [r.reason for r in report.failed]
    assert finding_of(scc, incident).resource_name.endswith("/projects/old")


def test_contract_a_resent_event_leaves_an_analysts_mute_alone(scc, samples):
    source = scc.create_source()
    alert = samples["alert-sample"]
    assert send(scc, source, [alert]).delivered == 1
    finding_of(scc, alert).mute = "MUTED"                      # muted in SCC by an analyst (SetMute)
    assert send(scc, source, [alert]).delivered == 1
    assert finding_of(scc, alert).mute.name == "MUTED"


def test_contract_a_resent_event_clears_what_it_no_longer_carries(scc, samples):
    source = scc.create_source()
    alert = copy.deepcopy(samples["alert-sample"])
    assert send(scc, source, [alert]).delivered == 1
    assert finding_of(scc, alert).indicator.ip_addresses and finding_of(scc, alert).mitre_attack.primary_tactic
    alert["data"].pop("indicators")
    alert.pop("mitre")
    assert send(scc, source, [alert]).delivered == 1
    finding = finding_of(scc, alert)
    assert not finding.indicator.ip_addresses and not finding.mitre_attack.primary_tactic
    assert "hostname" in finding.source_properties or "wia_event" in finding.source_properties


def test_every_field_the_mapping_writes_is_updated_on_a_resend_or_fixed_at_creation(samples):
    """A field added to to_finding() but not to UPDATED_FIELDS would be written once and never updated."""
    from google.cloud.securitycenter_v2 import Finding
    from strategies import event_dicts

    from wia_security.connectors.gcp.scc import UPDATED_FIELDS, to_finding
    written = set()
    for event in [*samples.values(), *event_dicts(200, seed=7)]:
        written |= set(to_finding(event, default_resource="//cloudresourcemanager.googleapis.com/projects/p"))
    assert written - set(UPDATED_FIELDS) == {"category", "resource_name", "state"}
    assert set(UPDATED_FIELDS) <= set(Finding.meta.fields)


@pytest.mark.parametrize("references, uri", [
    (["urn:cve:CVE-2025-12345", "https://nvd.nist.gov/vuln/detail/CVE-2025-12345"],
     "https://nvd.nist.gov/vuln/detail/CVE-2025-12345"),
    (["urn:cve:CVE-2025-12345"], ""),
    (["mailto:psirt@vendor.example", "ftp://files.vendor.example/advisory.txt"], ""),
], ids=["urn-then-https", "urn-only", "mailto-ftp"])
def test_contract_external_uri_is_a_web_url_or_none(scc, samples, references, uri):
    """`external_uri` "is guaranteed to be either empty or a well formed URL": a first reference that is a URI
    but no web URL (a URN, mailto:) was sent as it is and refused (INVALID_ARGUMENT, the event dead-lettered)."""
    source = scc.create_source()
    vuln = copy.deepcopy(samples["vulnerability-sample"])
    vuln["data"]["references"] = references
    report = send(scc, source, [vuln])
    assert report.delivered == 1 and not report.failed, [r.reason for r in report.failed]
    assert finding_of(scc, vuln).external_uri == uri


# -- resource_name: required, 1 to 255 characters ("ResourceName is invalid. It must be less than 256 characters and
# at least 1 character.", INVALID_ARGUMENT from CreateFinding; gcloud scc findings create requires --resource-name)

def test_contract_an_event_naming_no_gcp_resource_is_a_finding_on_the_sources_organization(scc, samples):
    """Without the `resource` option, an event from outside GCP (most of them) had no resource_name and every one
    was refused and dead-lettered."""
    source = scc.create_source()
    endpoint_alert = samples["alert-sample"]
    assert not (endpoint_alert.get("context") or {}).get("cloud")
    report = send(scc, source, [endpoint_alert])
    assert report.delivered == 1 and not report.failed, [r.reason for r in report.failed]
    org = source.split("/")[1]
    assert finding_of(scc, endpoint_alert).resource_name == f"//cloudresourcemanager.googleapis.com/organizations/{org}"


def test_contract_a_gcp_event_still_names_its_project_and_the_option_still_wins_over_the_organization(scc, samples):
    source = scc.create_source()
    gcp = copy.deepcopy(samples["incident-sample"])
    gcp["context"] = {**(gcp.get("context") or {}), "cloud": {"provider": "gcp", "account_id": "demo-proj"}}
    other = samples["alert-sample"]
    report = send(scc, source, [gcp, other], resource="//cloudresourcemanager.googleapis.com/projects/wia")
    assert report.delivered == 2, [r.reason for r in report.failed]
    assert finding_of(scc, gcp).resource_name == "//cloudresourcemanager.googleapis.com/projects/demo-proj"
    assert finding_of(scc, other).resource_name == "//cloudresourcemanager.googleapis.com/projects/wia"


def test_contract_a_resource_name_scc_cannot_take_is_refused_or_replaced(scc, samples):
    from wia_security.errors import ConfigError
    source = scc.create_source()
    with pytest.raises(ConfigError, match="resource.*255"):
        send(scc, source, [samples["alert-sample"]], resource="//x/" + "p" * 300)
    long_project = copy.deepcopy(samples["incident-sample"])
    long_project["context"] = {"cloud": {"provider": "gcp", "account_id": "p" * 300}}
    report = send(scc, source, [long_project])
    assert report.delivered == 1, [r.reason for r in report.failed]
    assert finding_of(scc, long_project).resource_name.startswith("//cloudresourcemanager.googleapis.com/organizations/")
