"""Builders: the standard's defaults, ATT&CK filled from the table, invalid events refused with paths."""
from __future__ import annotations

import re
import uuid

import pytest

from wia_security import (AlertBuilder, AuthEventBuilder, EndpointEventBuilder, IncidentBuilder, InvalidEventError,
                          InvalidValueError, NetworkEventBuilder, ThreatIntelBuilder, VulnerabilityBuilder,
                          builder_for, validate_event)
from wia_security.builders import BUILDERS

MINIMAL = {
    "alert": lambda b: b.title("t"),
    "threat_intel": lambda b: b.threat("x", "botnet"),
    "vulnerability": lambda b: b.cve("CVE-2024-3094").title("xz").cvss(10.0),
    "incident": lambda b: b.title("t"),
    "network_event": lambda b: b.src("10.0.0.1").dst("10.0.0.2"),
    "endpoint_event": lambda b: b.endpoint("ws1"),
    "auth_event": lambda b: b.account("alice").target("host", "srv1"),
}


@pytest.mark.parametrize("event_type", sorted(BUILDERS))
def test_defaults(event_type):
    event = MINIMAL[event_type](builder_for(event_type)).build().to_dict()
    assert validate_event(event).valid
    assert uuid.UUID(event["id"]).version == 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["timestamp"])
    assert event["version"] == "1.0.0"
    assert event["$schema"] == "https://wia.live/security/v1/schema.json"
    assert event["type"] == event_type
    assert validate_event(event).warnings == []


def test_mitre_from_a_sub_technique():
    event = AlertBuilder().title("t").mitre("T1059.001").build()
    assert event.mitre.to_dict() == {
        "tactic": "TA0002", "tactic_name": "Execution", "technique": "T1059",
        "technique_name": "Command and Scripting Interpreter", "sub_technique": "T1059.001",
        "sub_technique_name": "PowerShell"}


def test_mitre_with_several_tactics_takes_the_first_in_matrix_order_or_the_one_given():
    assert AlertBuilder().mitre("T1078").to_dict()["mitre"]["tactic"] == "TA0001"     # Valid Accounts: 4 tactics
    assert AlertBuilder().mitre("T1078", tactic="TA0004").to_dict()["mitre"]["tactic"] == "TA0004"
    with pytest.raises(InvalidValueError, match="not in tactic TA0002"):
        AlertBuilder().mitre("T1078", tactic="TA0002")


def test_mitre_refuses_unknown_and_revoked_ids():
    with pytest.raises(InvalidValueError, match="not an ATT&CK v18.1"):
        AlertBuilder().mitre("T9999")
    with pytest.raises(InvalidValueError, match="use T1547.004"):
        AlertBuilder().mitre("T1004")


def test_build_refuses_an_invalid_event_naming_every_violation():
    with pytest.raises(InvalidEventError) as exc:
        AlertBuilder().title("t").priority("urgent").set("data.count", 0).build()
    assert {(e.path, e.code) for e in exc.value.errors} == {("/data/priority", "enum"), ("/data/count", "minimum")}
    assert "/data/priority" in str(exc.value)


def test_severity_out_of_range_is_refused_at_once():
    with pytest.raises(InvalidValueError):
        AlertBuilder().severity(11)
    with pytest.raises(InvalidValueError):
        AlertBuilder().severity(True)


def test_derived_defaults():
    assert AlertBuilder().title("t").severity(9.5).build().data.priority == "critical"
    assert IncidentBuilder().title("t").severity(0).build().data.priority == "low"        # incidents have no "info"
    vuln = VulnerabilityBuilder().cve("CVE-2021-41773").title("t").cvss(7.5).build()
    assert vuln.severity == 7.5 and vuln.data.cvss.severity == "high"
    assert AuthEventBuilder().kind("login_failure").account("a").target("host", "h").build().data.result == "failure"


def test_rich_events_of_every_type_are_valid():
    events = [
        AlertBuilder().title("PowerShell").category("malware").indicator("file_hash_sha256", "a" * 64)
        .detection_rule("R1", "rule").seen("2025-01-01T00:00:00Z", count=3).host("ws1", ip=["10.0.0.1"])
        .user("alice", email="alice@corp.example").cloud("aws", "123456789012", "eu-west-1").tags("x").label("k", "v")
        .custom(case=1).raw("raw log").correlation_id("c1").confidence(0.5),
        ThreatIntelBuilder().threat("Emotet", "malware", family="Emotet").aliases("Heodo").ttp("T1566.001")
        .indicator("url", "https://bad.example/x", confidence=0.9, kill_chain_phase="delivery")
        .targets(["finance"], ["US"]).reference("https://intel.example/1").report_id("R-1").seen("2024-01-01T00:00:00Z"),
        VulnerabilityBuilder().cve("CVE-2021-44228").title("Log4Shell").cvss(10.0, vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H")
        .cwe("CWE-502").affected_product("apache", "log4j", ["2.14.1"]).exploit("in_the_wild", maturity="high")
        .patch(fixed_versions=["2.17.1"]).dates("2021-12-10T00:00:00Z"),
        IncidentBuilder().title("Ransomware").category("ransomware").priority("critical").impact(availability="high")
        .timeline("detected", actor="EDR").affected_asset("host", "h1", ip="10.0.0.5", criticality="high")
        .ioc("domain", "c2.example").response_action("isolate_host", "h1", "completed").root_cause("phish")
        .lessons_learned("mfa").lead_analyst("bob").team("bob", "eve").dates(closed_at="2025-01-02T00:00:00Z"),
        NetworkEventBuilder().kind("http").protocol("TCP").direction("outbound").action("blocked")
        .src("10.0.0.1", 50000).dst("2001:db8::1", 443, hostname="x.example").traffic(10, 20, 1, 2, 30)
        .rule("r").application("web").url("https://x.example/").http("GET", 403, "curl/8").tls("TLS 1.3", sni="x.example"),
        EndpointEventBuilder().kind("registry_modify").endpoint("ws1", os_name="Windows", agent_id="a1")
        .process("reg.exe", pid=1, ppid=2, sha256="b" * 64, parent={"pid": 2, "name": "cmd.exe"})
        .registry(r"HKLM\Software\Run", "x", "y", "REG_SZ").file(path="C:/x", size=1).connection("1.2.3.4", 443)
        .dll(path="C:/x.dll", signed=True),
        AuthEventBuilder().kind("mfa_failure").account("alice", groups=["g"]).target("application", "VPN", url="https://vpn")
        .origin(ip="1.2.3.4", country="KR", device_type="mobile").method("mfa", True, "push").session("s", "network", 2)
        .risk(0.9, ["new_device"]),
    ]
    for b in events:
        result = validate_event(b.build().to_dict())
        assert result.valid and not result.warnings, (result.errors, result.warnings)


@pytest.mark.parametrize("name", ["alerts", "", "ALERT ", ["alert"]])
def test_builder_for_an_unknown_type_names_the_known_ones(name):
    # it raised a bare KeyError('alerts') (TypeError for a list)
    from wia_security.errors import InvalidValueError
    with pytest.raises(InvalidValueError) as caught:
        builder_for(name)
    assert caught.value.prop_name == "type" and "known: alert, threat_intel" in str(caught.value)
