"""OCSF 1.8.0 out: every conversion passes the project's validator built from the pinned schema
(ocsf_validator.py) with zero findings, with and without the `unmapped.wia` patch: every event of the
shared corpus (each builder with every sub-type and enum that changes the class), the builder variants
of the parity corpus, the 7 samples, seeded and Hypothesis-generated events (realistic and "wild").
Plus the mapping itself: class and activity per event type, ATT&CK, severity, status, metadata,
observables, profiles, the fallbacks, and the errors."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from ocsf_validator import validate
from strategies import event_dicts, events
from wia_corpus import all_events
from wia_security import (AlertBuilder, AuthEventBuilder, ConversionError, EndpointEventBuilder, convert, parse,
                          validate_event)
from wia_security.formats.ocsf import OCSF_VERSION, to_ocsf
from wia_security.formats.ocsf.tables import ENUMS

EVENTS = all_events()
BY_NAME = dict(EVENTS)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROOT = Path(__file__).resolve().parents[3]


def findings(event: dict, **options) -> list[str]:
    doc = convert(event, to="ocsf", **options)
    return validate(json.loads(json.dumps(doc)))


@pytest.mark.parametrize("name,event", EVENTS, ids=[n for n, _ in EVENTS])
def test_every_corpus_event_and_sample_is_valid_ocsf(name: str, event: dict) -> None:
    assert findings(event) == []
    assert findings(event, unmapped=False) == []


def test_the_parity_corpus_builder_variants_are_valid_ocsf() -> None:
    sys.path.insert(0, str(ROOT / "tests" / "core" / "validation"))
    from test_parity import builder_events
    corpus = builder_events(400, seed=7)
    assert {e["type"] for e in corpus} == {"alert", "threat_intel", "vulnerability", "incident", "network_event",
                                           "endpoint_event", "auth_event"}
    bad = {e["id"]: f for e in corpus if (f := findings(e))}
    assert bad == {}


def test_seeded_generated_events_are_valid_ocsf() -> None:
    corpus = event_dicts(1500, seed=23) + event_dicts(500, seed=29, wild=True)
    bad = {i: f for i, e in enumerate(corpus) if (f := findings(e))}
    assert bad == {}


@PROPERTY
@given(event=events())
def test_generated_events_are_valid_ocsf(event: dict) -> None:
    assert findings(event) == []
    assert findings(event, unmapped=False) == []


@PROPERTY
@given(event=events(wild=True))
def test_wild_events_are_valid_ocsf(event: dict) -> None:
    assert findings(event) == []


def test_the_validator_would_catch_a_broken_conversion() -> None:
    """Guard against a validator that accepts anything: a converted event with one rule broken fails."""
    doc = convert(BY_NAME["sample/alert-sample"], to="ocsf")
    doc["type_uid"] = 200402
    doc["finding_info"].pop("uid")
    doc["device"]["ip"] = "not-an-ip"
    problems = "\n".join(validate(doc))
    for needle in ("/type_uid", "/finding_info/uid: required", "/device/ip"):
        assert needle in problems


CLASSES = {
    "alert/malware/new": (2004, 1), "vulnerability/3.1": (2002, 1), "incident/apt": (2005, 1),
    "threat_intel/apt": (5021, 2),
    "network_event/connection/allowed": (4001, 1), "network_event/connection/blocked": (4001, 5),
    "network_event/connection/reset": (4001, 3), "network_event/tls/allowed": (4001, 1),
    "network_event/smtp/allowed": (4001, 1), "network_event/custom/dropped": (4001, 5),
    "network_event/http/allowed": (4002, 6), "network_event/dns/allowed": (4003, 2),
    "network_event/rdp/allowed": (4005, 6), "network_event/ssh/blocked": (4007, 5), "network_event/ftp/allowed": (4008, 0),
    "endpoint_event/process_creation": (1007, 1), "endpoint_event/process_termination": (1007, 2),
    "endpoint_event/file_create": (1001, 1), "endpoint_event/file_modify": (1001, 3),
    "endpoint_event/file_delete": (1001, 4), "endpoint_event/registry_create": (201002, 2),
    "endpoint_event/registry_modify": (201002, 3), "endpoint_event/registry_delete": (201002, 4),
    "endpoint_event/network_connection": (4001, 1), "endpoint_event/dll_load": (1005, 1),
    "endpoint_event/driver_load": (1002, 1), "endpoint_event/service_install": (201004, 1),
    "auth_event/login_success": (3002, 1), "auth_event/login_failure": (3002, 1), "auth_event/logout": (3002, 2),
    "auth_event/mfa_success": (3002, 99), "auth_event/privilege_escalation": (3002, 7),
    "auth_event/password_change": (3001, 3), "auth_event/account_locked": (3001, 9),
    "auth_event/account_unlocked": (3001, 12),
}


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_class_and_activity_per_event_type(name: str) -> None:
    doc = convert(BY_NAME[name], to="ocsf")
    class_uid, activity = CLASSES[name]
    assert (doc["class_uid"], doc["activity_id"], doc["type_uid"]) == (class_uid, activity, class_uid * 100 + activity)
    assert doc["category_uid"] == class_uid // 1000 if class_uid < 10000 else doc["category_uid"] == 1
    assert doc["metadata"]["version"] == OCSF_VERSION == "1.8.0"


def test_upstreams_wrong_class_ids_are_not_used() -> None:
    """SUMMARY §8: upstream wrote 1001 for processes, 3001 for logins, 2003 for incidents, 2001 for alerts."""
    assert convert(BY_NAME["endpoint_event/process_creation"], to="ocsf")["class_uid"] == 1007
    assert convert(BY_NAME["auth_event/login_success"], to="ocsf")["class_uid"] == 3002
    assert convert(BY_NAME["incident/apt"], to="ocsf")["class_name"] == "Incident Finding"
    assert convert(BY_NAME["alert/intrusion/new"], to="ocsf")["class_name"] == "Detection Finding"


def test_alert_finding_attacks_severity_status_and_metadata() -> None:
    event = BY_NAME["sample/alert-sample"]
    doc = convert(event, to="ocsf")
    fi = doc["finding_info"]
    assert fi["uid"] == event["data"]["alert_id"] and fi["title"] == event["data"]["title"]
    assert fi["attacks"] == [{"tactic": {"uid": "TA0002", "name": "Execution"},
                              "technique": {"uid": "T1059", "name": "Command and Scripting Interpreter"},
                              "sub_technique": {"uid": "T1059.001", "name": "PowerShell"}, "version": "18.1"}]
    assert fi["analytic"] == {"type_id": 1, "type": "Rule", "uid": "RULE-PS-001",
                              "name": "Encoded PowerShell from Office Application", "version": "2.1"}
    assert fi["first_seen_time"] == 1765704300000 and fi["first_seen_time_dt"] == "2025-12-14T09:25:00.000Z"
    assert (doc["time"], doc["time_dt"]) == (1765704600000, event["timestamp"])
    assert (doc["status_id"], doc["status"], doc["priority_id"], doc["priority"]) == (1, "New", 3, "High")
    assert doc["metadata"]["product"] == {"name": "Splunk Enterprise Security", "vendor_name": "Splunk", "version": "8.2.0"}
    assert doc["metadata"]["uid"] == event["id"]
    assert doc["metadata"]["profiles"] == ["datetime", "host", "incident", "osint", "security_control"]
    assert [(o["type_id"], o["value"]) for o in doc["osint"]] == [
        (4, "d41d8cd98f00b204e9800998ecf8427e"), (1, "185.220.101.45"), (2, "malware-c2.evil.com")]
    assert doc["device"]["hostname"] == "WORKSTATION-001" and doc["device"]["os"]["type_id"] == 100
    assert doc["evidences"][0]["dst_endpoint"]["ip"] == "185.220.101.45"
    assert doc["unmapped"] == {"wia": {"source": {"type": "siem"}, "context": {"network": {"protocol": "HTTPS"}}}}


@pytest.mark.parametrize("status,status_id,verdict", [("new", 1, None), ("investigating", 2, None),
                                                       ("false_positive", 3, 1), ("resolved", 4, None), ("closed", 5, None)])
def test_alert_status(status: str, status_id: int, verdict: int | None) -> None:
    doc = convert(BY_NAME[f"alert/malware/{status}"], to="ocsf")
    assert doc["status_id"] == status_id and doc.get("verdict_id") == verdict


@pytest.mark.parametrize("score,severity_id", [(0, 1), (0.9, 1), (1, 2), (2.9, 2), (3, 3), (4.5, 3), (5, 4), (6.9, 4),
                                               (7, 5), (8.9, 5), (9, 5), (10, 5)])
def test_severity_bands(score: float, severity_id: int) -> None:
    doc = convert(AlertBuilder().title("t").severity(score).build(), to="ocsf")
    assert (doc["severity_id"], doc["severity"]) == (severity_id, ENUMS["severity_id"][severity_id])


def test_observables_use_the_observable_type_enum() -> None:
    doc = convert(BY_NAME["endpoint_event/registry_modify"], to="ocsf")
    kinds = {(o["name"], o["type_id"]) for o in doc["observables"]}
    assert {("device.hostname", 1), ("device.ip", 2), ("reg_value.path", 46), ("actor.process.name", 9),
            ("actor.user.name", 4)} <= kinds
    for o in doc["observables"]:
        assert isinstance(o["value"], str) and o["type_id"] in ENUMS["observable.type_id"]


def test_network_event_maps_endpoints_traffic_and_protocol_data() -> None:
    http = convert(BY_NAME["network_event/http/blocked"], to="ocsf")
    assert http["http_request"]["http_method"] == "POST" and http["http_response"]["code"] == 403
    assert http["http_request"]["url"] == {"url_string": "https://server.example/path?q=1"}
    assert (http["action_id"], http["disposition_id"], http["disposition"]) == (2, 2, "Blocked")
    assert http["src_endpoint"]["location"] == {"country": "US", "city": "Boston", "lat": 42.36, "long": -71.06}
    assert http["src_endpoint"]["autonomous_system"] == {"number": 7922, "name": "Comcast"}
    assert http["traffic"] == {"bytes_out": 1200, "bytes_in": 3400, "packets_out": 10, "packets_in": 12,
                               "bytes": 4600, "packets": 22}
    assert http["firewall_rule"] == {"name": "FW-7"} and http["duration"] == 250
    dns = convert(BY_NAME["network_event/dns/blocked"], to="ocsf")
    assert dns["query"] == {"hostname": "evil.example", "type": "A"} and dns["rcode_id"] == 3
    assert dns["answers"] == [{"rdata": "203.0.113.9"}, {"rdata": "203.0.113.10"}]
    assert dns["connection_info"]["protocol_name"] == "udp" and dns["connection_info"]["protocol_num"] == 17
    tls = convert(BY_NAME["network_event/tls/allowed"], to="ocsf")
    assert tls["tls"] == {"version": "TLS 1.3", "cipher": "TLS_AES_256_GCM_SHA384", "sni": "server.example"}
    assert "certificate" in tls["unmapped"]["wia"]["data"]["tls"]          # OCSF needs a serial number WIA lacks
    assert convert(BY_NAME["network_event/smtp/allowed"], to="ocsf")["app_protocol_name"] == "smtp"
    assert tls["metadata"]["event_code"] == "tls"


def test_endpoint_event_process_file_registry_and_connection() -> None:
    proc = convert(BY_NAME["endpoint_event/process_creation"], to="ocsf")
    p = proc["process"]
    assert (p["pid"], p["name"], p["cmd_line"], p["integrity_id"]) == (4242, "powershell.exe", "powershell -enc AAAA", 4)
    assert p["parent_process"] == {"pid": 1000, "name": "winword.exe", "path": "C:\\Office\\winword.exe",
                                   "cmd_line": "winword.exe doc.docm"}
    assert proc["actor"]["process"] == p["parent_process"]
    assert [h["algorithm_id"] for h in p["file"]["hashes"]] == [1, 2, 3]
    assert p["file"]["signature"]["state_id"] == 1
    assert proc["device"]["agent_list"] == [{"uid": "agent-1"}] and proc["device"]["domain"] == "CORP"
    file = convert(BY_NAME["endpoint_event/file_delete"], to="ocsf")
    assert file["file"]["path"] == "C:\\Temp\\drop.exe" and file["actor"]["process"]["pid"] == 4242
    reg = convert(BY_NAME["endpoint_event/registry_modify"], to="ocsf")
    assert reg["reg_value"] == {"path": "HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Windows\\CurrentVersion\\Run",
                                "name": "evil", "type_id": 10, "type": "REG_SZ", "data": "C:\\x.exe"}
    assert reg["prev_reg_value"]["data"] == "C:\\old.exe"
    conn = convert(BY_NAME["endpoint_event/network_connection"], to="ocsf")
    assert conn["src_endpoint"]["ip"] == "10.0.0.7" and conn["dst_endpoint"] == {"ip": "203.0.113.9", "name": "203.0.113.9",
                                                                                   "port": 443}
    dll = convert(BY_NAME["endpoint_event/dll_load"], to="ocsf")
    assert dll["module"]["file"]["name"] == "evil.dll" and "signature" not in dll["module"]["file"]
    service = convert(BY_NAME["endpoint_event/service_install"], to="ocsf")
    assert service["win_service"]["name"] == "Unknown"
    assert service["win_service"]["service_file"]["path"] == "C:\\Temp\\drop.exe"


def test_endpoint_event_without_the_object_its_class_needs_falls_back() -> None:
    with_process = EndpointEventBuilder().kind("file_create").endpoint("ws1").process("cmd.exe", pid=7).build().to_dict()
    doc = convert(with_process, to="ocsf")
    assert (doc["class_uid"], doc["activity_id"], doc["activity_name"]) == (1007, 99, "file_create")
    assert validate(doc) == []
    bare = EndpointEventBuilder().kind("registry_modify").endpoint("ws1").build().to_dict()
    doc = convert(bare, to="ocsf")
    assert (doc["class_uid"], doc["activity_id"], doc["activity_name"]) == (5001, 99, "registry_modify")
    assert doc["actor"] == {"app_name": bare["source"]["name"]} and validate(doc) == []
    assert parse(doc, from_="ocsf")[0].to_dict() == bare


def test_auth_event_user_session_and_factors() -> None:
    doc = convert(BY_NAME["auth_event/login_failure"], to="ocsf")
    assert (doc["status_id"], doc["status_detail"]) == (2, "invalid_credentials")
    assert doc["user"]["groups"] == [{"name": "admins"}] and doc["user"]["ldap_person"] == {"employee_uid": "E-1"}
    assert doc["service"] == {"name": "vpn.example.com"} and doc["dst_endpoint"]["ip"] == "10.0.0.1"
    assert doc["session"] == {"uid": "sess-1"} and doc["logon_type_id"] == 10 and doc["is_mfa"] is True
    assert doc["auth_factors"] == [{"factor_type_id": 7, "factor_type": "OTP", "is_totp": True}]
    assert doc["http_request"] == {"user_agent": "Mozilla/5.0", "url": {"url_string": "https://vpn.example.com/login"}}
    assert doc["src_endpoint"]["type_id"] == 2 and doc["count"] == 3 and doc["risk_level_id"] == 3
    locked = convert(BY_NAME["auth_event/account_locked"], to="ocsf")
    assert locked["class_name"] == "Account Change" and locked["activity_name"] == "Lock"
    assert "target" in locked["unmapped"]["wia"]["data"]           # Account Change has no service/dst_endpoint


def test_vulnerability_incident_and_threat_intel_objects() -> None:
    vuln = convert(BY_NAME["vulnerability/3.1"], to="ocsf")["vulnerabilities"][0]
    assert vuln["cve"]["uid"] == "CVE-2021-44228" and vuln["cve"]["related_cwes"] == [{"uid": "CWE-502"}, {"uid": "CWE-20"}]
    assert vuln["cve"]["cvss"][0] == {"version": "3.1", "base_score": 9.8, "overall_score": 9.8, "depth": "Base",
                                      "severity": "Critical", "vector_string": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}
    assert [p["version"] for p in vuln["affected_packages"]] == ["2.14.1", "2.13.0"]
    assert vuln["remediation"] == {"desc": "remove JndiLookup", "references": ["https://logging.apache.org/security.html"]}
    assert (vuln["is_exploit_available"], vuln["exploit_type"], vuln["is_fix_available"]) == (True, "in_the_wild", True)
    incident = convert(BY_NAME["incident/phishing"], to="ocsf")
    assert (incident["status_id"], incident["status_detail"], incident["priority_id"]) == (2, "containing", 3)
    assert incident["assignee"] == {"name": "alice"} and incident["impact_id"] == 3
    assert incident["finding_info_list"][0]["types"] == ["phishing"]
    assert [o["type_id"] for o in incident["osint"]] == [1, 2, 4]
    intel = convert(BY_NAME["threat_intel/apt"], to="ocsf")
    assert intel["class_name"] == "OSINT Inventory Info" and len(intel["osint"]) == 8
    first = intel["osint"][0]
    assert first["threat_actor"] == {"name": "apt one"} and first["category"] == "apt"
    assert first["kill_chain"] == [{"phase": "delivery", "phase_id": 3}] and first["desc"] == "seen in campaign"
    assert [a["technique"]["uid"] for a in first["attacks"]] == ["T1566.001", "T1071"]
    ransomware = convert(BY_NAME["threat_intel/ransomware"], to="ocsf")["osint"][0]["malware"]
    assert ransomware == [{"name": "ransomware one", "classification_ids": [10], "classifications": ["Ransomware"]}]


def test_threat_intel_without_indicators_keeps_one_entry_for_the_threat() -> None:
    from wia_security import ThreatIntelBuilder
    event = ThreatIntelBuilder().threat("Emotet", "botnet").build().to_dict()
    doc = convert(event, to="ocsf")
    assert doc["osint"] == [{"type_id": 99, "type": "Threat", "value": "Emotet", "category": "botnet",
                             "malware": [{"name": "Emotet", "classification_ids": [3], "classifications": ["Bot"]}]}]
    assert validate(doc) == [] and parse(doc, from_="ocsf")[0].to_dict() == event


def test_values_ocsf_cannot_hold_go_to_unmapped() -> None:
    event = json.loads(json.dumps(BY_NAME["network_event/connection/allowed"]))
    event["data"]["source"]["ip"] = "not an ip"                  # the WIA schema allows any string
    event["data"]["source"]["mac"] = "zz"
    event["meta"]["custom"] = {"ticket": 42}
    doc = convert(event, to="ocsf")
    assert "ip" not in doc["src_endpoint"] and doc["src_endpoint"]["name"] == "client.example"
    assert doc["unmapped"]["wia"]["data"]["source"] == {"ip": "not an ip", "mac": "zz"}
    assert doc["unmapped"]["wia"]["meta"]["custom"] == {"ticket": 42}
    assert validate(doc) == []
    assert parse(doc, from_="ocsf")[0].to_dict() == event


def test_conversion_trusts_but_reports_invalid_input() -> None:
    with pytest.raises(ConversionError) as err:
        convert({"type": "sighting", "data": {}}, to="ocsf")
    assert err.value.path == "/type"
    broken = dict(BY_NAME["alert/malware/new"])
    broken["data"] = {k: v for k, v in broken["data"].items() if k != "status"}
    assert not validate_event(broken).valid
    with pytest.raises(ConversionError, match="validate it first"):
        convert(broken, to="ocsf")


def test_unmapped_option_gives_plain_ocsf() -> None:
    event = BY_NAME["sample/endpoint-event-sample"]
    plain = convert(event, to="ocsf", unmapped=False)
    assert "unmapped" not in plain and validate(plain) == []
    assert "unmapped" not in convert(event, to="ocsf", unmapped="false")      # as the CLI's --option passes it
    assert "unmapped" in convert(event, to="ocsf")


def test_the_tables_are_what_the_build_script_makes_from_the_vendored_schema() -> None:
    import importlib.util
    from refdata import OCSF_SCHEMA
    spec = importlib.util.spec_from_file_location("build_ocsf_tables", ROOT / "scripts" / "build_ocsf_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shipped = json.loads((ROOT / "core" / "formats" / "ocsf" / "ocsf-1.8.0-tables.json").read_text(encoding="utf-8"))
    assert module.build(OCSF_SCHEMA) == shipped
    assert "Apache License" in (ROOT / "core" / "formats" / "ocsf" / "LICENSE.ocsf-schema.txt").read_text()


def test_cli_converts_the_samples_to_valid_ocsf(tmp_path, capsys) -> None:
    from wia_security.cli import main
    lines = [json.dumps(e) for n, e in EVENTS if n.startswith("sample/")]
    source = tmp_path / "in.ndjson"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.ndjson"
    assert main(["convert", str(source), "--to", "ocsf", "-o", str(out), "--option", "unmapped=false"]) == 0
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(docs) == 7 and all(validate(d) == [] and "unmapped" not in d for d in docs)
    capsys.readouterr()


def test_builder_auth_event_round_trips_exactly() -> None:
    event = AuthEventBuilder().kind("login_failure").account("bob").target("host", "srv1").result(
        "failure", "account_locked").build().to_dict()
    doc = convert(event, to="ocsf")
    assert doc["dst_endpoint"] == {"hostname": "srv1", "name": "srv1"} and "service" not in doc
    assert parse(doc, from_="ocsf")[0].to_dict() == event
