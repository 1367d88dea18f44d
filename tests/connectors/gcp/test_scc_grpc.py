"""SCC connector: the real google-cloud-securitycenter v2 client against the in-process gRPC contract
server assembled from the client's own method table (tests/servers/scc_grpc.py), over TLS."""
from __future__ import annotations

import copy
import uuid

import pytest

pytest.importorskip("google.cloud.securitycenter_v2", reason="the gcp extra is not installed")

import grpc  # noqa: E402
from servers.scc_grpc import method_table, scc, scc_server  # noqa: E402,F401
from strategies import event_dicts  # noqa: E402

from wia_security import validate_event  # noqa: E402
from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402
from wia_security.connectors.gcp import scc as scc_mod  # noqa: E402
from wia_security.connectors.gcp.scc import FINDING_ID_MAX, SccSink, finding_id_for, to_finding  # noqa: E402

FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.01, max_attempts=4)


def make_sink(server, source: str, **options) -> SccSink:
    url = (f"scc://{source}?endpoint={server.endpoint}&ca_file={server.ca_file}&auth=anonymous")
    return open_sink(url, delivery=options.pop("delivery", FAST), **options)


def test_server_serves_the_clients_own_method_table():
    table = method_table()
    assert {"CreateFinding", "UpdateFinding", "ListFindings", "CreateSource", "SetFindingState"} <= set(table)
    request_cls, response_cls = table["CreateFinding"]
    assert request_cls.__name__ == "CreateFindingRequest" and response_cls.__name__ == "Finding"


def test_finding_id_is_32_alphanumerics_from_the_event_id(samples):
    for event in samples.values():
        fid = finding_id_for(event)
        assert len(fid) == FINDING_ID_MAX and fid.isalnum()
        assert fid == uuid.UUID(event["id"]).hex


def test_contract_creates_findings_with_the_mapped_fields(scc, samples):
    source = scc.create_source()
    with make_sink(scc, source) as sink:
        report = sink.send(list(samples.values()))
        report.merge(sink.flush())
    assert report.delivered == 7 and not report.failed
    findings = {f.source_properties["wia_event_id"]: f for f in scc.state.findings.values()}
    assert set(findings) == {e["id"] for e in samples.values()}

    alert = findings[samples["alert-sample"]["id"]]
    assert alert.name == f"{source}/locations/global/findings/{uuid.UUID(samples['alert-sample']['id']).hex}"
    assert alert.category == "WIA_ALERT_MALWARE" and alert.state.name == "ACTIVE"
    assert alert.severity.name == "CRITICAL"            # 7 = "critical" band of the standard
    assert alert.finding_class.name == "THREAT"
    assert alert.event_time.isoformat().startswith("2025-12-14T09:30:00")
    assert alert.mitre_attack.primary_tactic.name == "EXECUTION"
    # T1059.001 (PowerShell) has no SCC enum value: its parent T1059 is used
    assert [t.name for t in alert.mitre_attack.primary_techniques] == ["COMMAND_AND_SCRIPTING_INTERPRETER"]
    assert list(alert.indicator.ip_addresses) == ["185.220.101.45"]
    assert list(alert.indicator.domains) == ["malware-c2.evil.com"]

    vuln = findings[samples["vulnerability-sample"]["id"]]
    assert vuln.finding_class.name == "VULNERABILITY"
    assert vuln.vulnerability.cve.id == "CVE-2025-12345"
    assert vuln.vulnerability.cve.cvssv3.base_score == pytest.approx(9.8)
    assert vuln.vulnerability.cve.upstream_fix_available is True
    assert vuln.vulnerability.cve.observed_in_the_wild is True
    assert [c.id for c in vuln.vulnerability.cwes] == ["CWE-78", "CWE-94"]

    auth = findings[samples["auth-event-sample"]["id"]] if samples["auth-event-sample"]["id"] in findings else None
    assert auth is not None and auth.finding_class.name == "OBSERVATION"


def test_contract_resend_updates_on_already_exists(scc, samples):
    """A sink that did not write the finding (another process, a restart) meets ALREADY_EXISTS and updates."""
    source = scc.create_source()
    alert = copy.deepcopy(samples["alert-sample"])
    with make_sink(scc, source) as sink:
        sink.send([alert])
        sink.flush()
    alert["data"]["status"] = "resolved"
    alert["severity"] = 3
    with make_sink(scc, source) as sink:
        report = sink.send([alert])
        report.merge(sink.flush())
    assert report.delivered == 1 and not report.failed
    assert len(scc.state.findings) == 1
    assert scc.state.calls == ["CreateFinding", "CreateFinding", "UpdateFinding", "SetFindingState"]
    finding = next(iter(scc.state.findings.values()))
    assert finding.state.name == "INACTIVE" and finding.severity.name == "MEDIUM"


def test_contract_resend_by_the_sink_that_wrote_the_finding_is_one_write(scc, samples):
    """It was a CreateFinding refused ALREADY_EXISTS, then the UpdateFinding: two writes of the 1,000 a minute."""
    source = scc.create_source()
    alert = copy.deepcopy(samples["alert-sample"])
    with make_sink(scc, source) as sink:
        sink.send([alert])
        sink.flush()
        alert["data"]["status"] = "resolved"
        alert["severity"] = 3
        report = sink.send([alert])
        report.merge(sink.flush())
    assert report.delivered == 1 and not report.failed
    assert scc.state.calls == ["CreateFinding", "UpdateFinding", "SetFindingState"]
    [finding] = scc.state.findings.values()
    assert finding.state.name == "INACTIVE" and finding.severity.name == "MEDIUM"


def test_contract_list_findings_gives_back_the_events(scc):
    source = scc.create_source()
    events = event_dicts(25, seed=11)
    with make_sink(scc, source) as sink:
        report = sink.send(events)
        report.merge(sink.flush())
        assert report.delivered == 25, [r.reason for r in report.failed]
        back = list(sink.list_events(page_size=4))          # several pages
        high = list(sink.list_events(filter='severity="HIGH"'))
    assert sorted(e["id"] for e in back) == sorted(e["id"] for e in events)
    assert {e["id"]: e for e in back} == {e["id"]: e for e in events}     # lossless round trip
    assert {e["id"] for e in high} == {e["id"] for e in events if scc_mod.SEVERITY_BY_BAND[
        __import__("wia_security").severity.band(e["severity"])] == "HIGH"}


def test_foreign_findings_become_valid_wia_events(scc):
    from google.cloud import securitycenter_v2 as types
    source = scc.create_source()
    scc.fake.CreateFinding(types.CreateFindingRequest(parent=source, finding_id="etd0001", finding={
        "category": "Malware: Bad Domain", "state": "ACTIVE", "severity": "HIGH", "finding_class": "THREAT",
        "resource_name": "//compute.googleapis.com/projects/demo-proj/zones/us-central1-a/instances/vm1",
        "event_time": "2025-12-14T09:30:00Z",
        "indicator": {"domains": ["bad.example"], "ip_addresses": ["203.0.113.9"]},
        "mitre_attack": {"primary_tactic": "COMMAND_AND_CONTROL", "primary_techniques": ["DNS"]}}))
    scc.fake.CreateFinding(types.CreateFindingRequest(parent=source, finding_id="vuln0001", finding={
        "category": "OS_VULNERABILITY", "state": "ACTIVE", "severity": "CRITICAL",
        "resource_name": "//compute.googleapis.com/projects/demo-proj/zones/us-central1-a/instances/vm2",
        "finding_class": "VULNERABILITY", "event_time": "2025-12-14T09:30:00Z",
        "vulnerability": {"cve": {"id": "CVE-2024-3094", "cvssv3": {"base_score": 10.0}}}}))
    with make_sink(scc, source) as sink:
        events = {e["type"]: e for e in sink.list_events()}
    for event in events.values():
        assert validate_event(event).valid, validate_event(event).errors
    alert = events["alert"]
    assert alert["data"]["category"] == "malware" and alert["severity"] == 6
    assert alert["mitre"] == {"tactic": "TA0011", "technique": "T1071", "sub_technique": "T1071.004"}
    assert {i["value"] for i in alert["data"]["indicators"]} == {"bad.example", "203.0.113.9"}
    assert alert["context"]["cloud"] == {"provider": "gcp", "account_id": "demo-proj"}
    assert events["vulnerability"]["data"]["vuln_id"] == "CVE-2024-3094"


def test_contract_unavailable_is_retried_and_permanent_errors_are_not(scc, samples):
    source = scc.create_source()
    scc.state.fail_next(grpc.StatusCode.UNAVAILABLE, times=2)
    with make_sink(scc, source) as sink:
        report = sink.send([samples["alert-sample"]])
        report.merge(sink.flush())
    assert report.delivered == 1 and scc.state.calls.count("CreateFinding") == 3

    missing = "organizations/123456789/sources/999999"          # no such source: NOT_FOUND
    with make_sink(scc, missing) as sink:
        report = sink.send([samples["incident-sample"]])
        report.merge(sink.flush())
    assert not report.delivered and len(report.failed) == 1
    assert not report.failed[0].retryable and "NOT_FOUND" in report.failed[0].reason


def test_contract_retry_info_delay_is_honoured(scc, samples):
    source = scc.create_source()
    scc.state.fail_next(grpc.StatusCode.RESOURCE_EXHAUSTED, times=1, retry_delay=3.5)
    sink = make_sink(scc, source)
    slept: list[float] = []
    sink._sleep = slept.append
    report = sink.send([samples["alert-sample"]])
    report.merge(sink.flush())
    sink.close()
    assert report.delivered == 1 and slept and slept[0] >= 3.5


def test_contract_retry_budget_spent_is_reported_retryable(scc, samples):
    source = scc.create_source()
    scc.state.fail_next(grpc.StatusCode.RESOURCE_EXHAUSTED, times=20)
    with make_sink(scc, source, delivery=DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0)) as sink:
        sink._sleep = lambda seconds: None      # the quota backoff (a minute) is not waited for here
        report = sink.send([samples["alert-sample"], samples["incident-sample"]])
        report.merge(sink.flush())
    assert not report.delivered and len(report.failed) == 2
    assert all(r.retryable and "RESOURCE_EXHAUSTED" in r.reason for r in report.failed)


def test_set_state_marks_the_finding_inactive(scc, samples):
    source = scc.create_source()
    with make_sink(scc, source) as sink:
        sink.send([samples["incident-sample"]])
        sink.flush()
        sink.set_state(samples["incident-sample"]["id"], "INACTIVE")
    assert next(iter(scc.state.findings.values())).state.name == "INACTIVE"


def test_non_uuid_event_id_fails_alone(scc, samples):
    source = scc.create_source()
    bad = copy.deepcopy(samples["alert-sample"])
    bad["id"] = "not-a-uuid"
    with make_sink(scc, source) as sink:
        report = sink.send([bad, samples["incident-sample"]])
        report.merge(sink.flush())
    assert report.delivered == 1 and len(report.failed) == 1 and report.failed[0].event is bad


def test_tls_is_verified_by_default(scc, samples):
    source = scc.create_source()
    url = f"scc://{source}?endpoint={scc.endpoint}&auth=anonymous"
    with open_sink(url, delivery=DeliveryPolicy(max_wait=0, max_attempts=1)) as sink:
        report = sink.send([samples["alert-sample"]])
        report.merge(sink.flush())
    assert not report.delivered and report.failed
    assert not scc.state.findings


def test_every_generated_event_maps_to_a_finding_the_client_accepts():
    from google.cloud.securitycenter_v2 import Finding
    for event in event_dicts(300, seed=3):
        finding = Finding(to_finding(event))            # proto-plus refuses unknown fields / bad enums
        assert finding.source_properties["wia_event_id"] == event["id"]


def test_url_errors_name_the_problem():
    from wia_security.errors import ConfigError
    with pytest.raises(ConfigError, match="organizations/<numeric org id>"):
        open_sink("scc://projects/p/sources/1?auth=anonymous")
    with pytest.raises(ConfigError, match="unknown option"):
        open_sink("scc://organizations/1/sources/2?auth=anonymous&nope=1")


def test_ca_file_is_used_for_the_public_endpoint_too(tmp_path, scc_server):
    """`ca_file` was read only with `endpoint`: for the public API it was ignored without a word (a CA for a
    TLS-inspecting proxy never used). Now it is the public endpoint's trust too, and a missing one is named."""
    from wia_security.errors import ConfigError
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(ConfigError, match="no-such-ca.pem") as caught:
        open_sink(f"scc://organizations/1/sources/2?auth=anonymous&ca_file={missing}")
    assert caught.value.key == "ca_file"
    with open_sink(f"scc://organizations/1/sources/2?auth=anonymous&ca_file={scc_server.ca_file}") as sink:
        assert sink._client.transport._host == "securitycenter.googleapis.com:443"
