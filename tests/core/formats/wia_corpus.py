"""The events every format proof runs over: each builder with every sub-type and enum value that
changes a mapping, fully populated, plus the seven upstream samples (the two with nulls after
lenient validation). Deterministic, so a failing event can be named."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wia_security import validate_event
from wia_security.builders import (AlertBuilder, AuthEventBuilder, EndpointEventBuilder, IncidentBuilder,
                                   NetworkEventBuilder, ThreatIntelBuilder, VulnerabilityBuilder)

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
T0 = "2025-12-14T09:30:00.000Z"


def _common(b: Any, n: int) -> Any:
    return (b.id(f"00000000-0000-4000-8000-{n:012d}").timestamp(T0)
            .host("WORKSTATION-7", ["10.0.0.7", "fe80::1"], ["00:1A:2B:3C:4D:5E"], "Windows", "10.0.19045", "19045")
            .user("jsmith", "CORP", "jsmith@example.com", "E-1")
            .cloud("aws", "123456789012", "eu-west-1")
            .tags("t1", "t2").label("env", "prod").correlation_id(f"CORR-{n}").confidence(0.85))


def builder_events() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    n = 0

    def add(name: str, builder: Any) -> None:
        out.append((name, builder.build().to_dict()))

    for category in ("malware", "intrusion", "policy", "reconnaissance", "other"):
        for status in ("new", "investigating", "resolved", "false_positive", "closed"):
            n += 1
            b = _common(AlertBuilder(), n).alert_id(f"ALERT-{n}").title(f"{category} alert").description("details").category(category) \
                .status(status).severity(7.5).mitre("T1059.001").detection_rule("R-1", "Rule one", "2") \
                .assignee("analyst@example.com").seen("2025-12-14T09:00:00.000Z", T0, 3) \
                .network("192.168.1.10", 49152, "185.220.101.45", 443, "TCP", "outbound", "ws7", "c2.example.com")
            for kind, value in (("ip", "185.220.101.45"), ("ip", "2001:db8::5"), ("domain", "c2.example.com"),
                                ("url", "https://c2.example.com/x"), ("hash", "d41d8cd98f00b204e9800998ecf8427e"),
                                ("email", "bad@example.com"), ("file", "C:\\x.exe"), ("mutex", "Global\\m"),
                                ("registry", "HKLM\\Software\\x"),
                                ("file_hash_sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")):
                b.indicator(kind, value, context=f"{kind} seen", confidence=0.7, first_seen=T0, last_seen=T0)
            add(f"alert/{category}/{status}", b)
    for threat_type in ("malware", "apt", "campaign", "botnet", "ransomware", "phishing"):
        n += 1
        b = _common(ThreatIntelBuilder(), n).threat(f"{threat_type} one", threat_type, "Family").aliases("a1", "a2") \
            .seen("2025-01-01T00:00:00.000Z", T0).ttp("T1566.001").ttp("T1071").targets(["finance"], ["US"]) \
            .reference("https://example.com/report").report_id("REP-1")
        for kind, value in (("ip", "203.0.113.9"), ("domain", "evil.example"), ("url", "http://evil.example/a"),
                            ("file_hash_md5", "d41d8cd98f00b204e9800998ecf8427e"),
                            ("file_hash_sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
                            ("email", "x@evil.example"), ("mutex", "Global\\evil"), ("registry", "HKCU\\Run\\evil")):
            b.indicator(kind, value, confidence=0.9, description="seen in campaign", kill_chain_phase="delivery",
                        first_seen=T0, last_seen=T0)
        add(f"threat_intel/{threat_type}", b)
    vectors = {"2.0": "AV:N/AC:M/Au:N/C:P/I:N/A:N", "3.0": "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N",
               "3.1": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",     # a vector of each entry's own version
               "4.0": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N"}
    for version, score in (("2.0", 5.0), ("3.0", 0.0), ("3.1", 9.8), ("4.0", 6.5)):
        n += 1
        b = _common(VulnerabilityBuilder(), n).cve("CVE-2021-44228").title("Log4Shell").description("JNDI RCE") \
            .cvss(score, version, vectors[version], base_score=score).cwe("CWE-502", "CWE-20") \
            .affected_product("Apache", "log4j-core", ["2.14.1", "2.13.0"], "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*") \
            .exploit("in_the_wild", "https://example.com/poc", "high") \
            .patch("https://logging.apache.org/security.html", ["2.17.1"], ["remove JndiLookup"]) \
            .reference("https://nvd.nist.gov/vuln/detail/CVE-2021-44228").dates(T0, T0)
        add(f"vulnerability/{version}", b)
    for category in ("malware", "phishing", "ransomware", "data_breach", "ddos", "unauthorized_access",
                     "insider_threat", "apt", "other"):
        n += 1
        b = _common(IncidentBuilder(), n).incident_id(f"INC-{n}").title(f"{category} incident").description("what happened").category(category) \
            .status("containing" if n % 2 else "closed").priority("high").severity(8) \
            .impact("high", "medium", "low", "moderate", "minimal").timeline("detected", T0, "soc", "EDR alert") \
            .affected_asset("host", "i-0abcd1234ef567890", "web-1", "10.0.0.5", "critical") \
            .affected_asset("user", "u-1", "jsmith", criticality="low") \
            .ioc("ip", "198.51.100.7", "C2", T0).ioc("domain", "bad.example").ioc("hash", "d41d8cd98f00b204e9800998ecf8427e") \
            .response_action("isolate_host", "web-1", "completed", T0, "soc", "done").root_cause("phish") \
            .lessons_learned("train").lead_analyst("alice").team("alice", "bob") \
            .dates(T0, "2025-12-15T10:00:00.000Z", "2025-12-16T10:00:00.000Z" if n % 2 == 0 else None)
        add(f"incident/{category}", b)
    for kind in ("connection", "dns", "http", "tls", "smtp", "ftp", "ssh", "rdp", "custom"):
        for action in ("allowed", "blocked", "dropped", "reset"):
            n += 1
            proto = "UDP" if kind == "dns" else "TCP"
            b = _common(NetworkEventBuilder(), n).kind(kind).protocol(proto).direction("inbound" if n % 2 else "outbound") \
                .action(action).src("10.1.2.3", 51515, "client.example", "00:11:22:33:44:55",
                                    {"country": "US", "city": "Boston", "latitude": 42.36, "longitude": -71.06, "asn": 7922, "org": "Comcast"}) \
                .dst("2001:db8::10" if n % 3 == 0 else "93.184.216.34", 53 if kind == "dns" else 443, "server.example",
                     geo={"country": "DE", "country_name": "Germany"}) \
                .traffic(1200, 3400, 10, 12, 250).rule("FW-7").application(kind).url("https://server.example/path?q=1")
            if kind == "dns":
                b.dns("evil.example", "A", ["203.0.113.9", "203.0.113.10"], "NOERROR" if action == "allowed" else "NXDOMAIN")
            if kind == "http":
                b.http("POST", 200 if action == "allowed" else 403, "curl/8.0", "https://ref.example/", "application/json")
            if kind == "tls":
                b.tls("TLS 1.3", "TLS_AES_256_GCM_SHA384", "server.example",
                      {"issuer": "CN=CA", "subject": "CN=server.example", "not_before": T0, "not_after": T0,
                       "fingerprint_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"})
            add(f"network_event/{kind}/{action}", b)
    for kind in ("process_creation", "process_termination", "file_create", "file_modify", "file_delete",
                 "registry_create", "registry_modify", "registry_delete", "network_connection", "dll_load",
                 "driver_load", "service_install"):
        n += 1
        b = _common(EndpointEventBuilder(), n).kind(kind).endpoint("WORKSTATION-7", ["10.0.0.7"], ["00:1A:2B:3C:4D:5E"],
                                                                  "Windows", "10", "19045", "CORP", "agent-1") \
            .process("powershell.exe", 4242, 1000, "C:\\Windows\\System32\\powershell.exe", "powershell -enc AAAA",
                     "CORP\\jsmith", "high", T0, "d41d8cd98f00b204e9800998ecf8427e",
                     "da39a3ee5e6b4b0d3255bfef95601890afd80709",
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                     {"signed": True, "valid": True, "issuer": "Microsoft", "subject": "Microsoft Windows"},
                     {"pid": 1000, "name": "winword.exe", "path": "C:\\Office\\winword.exe", "command_line": "winword.exe doc.docm"})
        if kind.startswith("file") or kind in ("driver_load", "service_install"):
            b.file("C:\\Temp\\drop.exe", "drop.exe", "exe", 1024, "d41d8cd98f00b204e9800998ecf8427e", owner="jsmith",
                   permissions="rw-", created=T0, modified=T0, accessed=T0)
        if kind.startswith("registry"):
            b.registry("HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Windows\\CurrentVersion\\Run", "evil", "C:\\x.exe",
                       "REG_SZ", "C:\\old.exe")
        if kind == "network_connection":
            b.connection("203.0.113.9", 443, "10.0.0.7", 50000, "TCP", "outbound", "ESTABLISHED")
        if kind == "dll_load":
            b.dll("C:\\Windows\\System32\\evil.dll", "evil.dll", sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", signed=False)
        add(f"endpoint_event/{kind}", b.severity(6).mitre("T1055"))
    for kind in ("login_success", "login_failure", "logout", "password_change", "account_locked", "account_unlocked",
                 "mfa_success", "mfa_failure", "privilege_escalation"):
        n += 1
        b = _common(AuthEventBuilder(), n).kind(kind).account("jsmith", "CORP", "jsmith@example.com", "E-1", ["admins"], ["dba"]) \
            .origin("198.51.100.20", "laptop.example", "US", "Boston", "Mozilla/5.0", "desktop") \
            .target("application", "vpn.example.com", "10.0.0.1", "https://vpn.example.com/login") \
            .method("password", True, "totp").session("sess-1", "remote_interactive", 3, T0).risk(0.8, ["new device"])
        if kind.endswith("failure") or kind == "account_locked":
            b.result("failure", "invalid_credentials")
        add(f"auth_event/{kind}", b)
    return out


def sample_events() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(SAMPLES.glob("*-sample.json")):
        result = validate_event(json.loads(path.read_text()), lenient=True)
        assert result.valid, (path, result.errors)
        out.append((f"sample/{path.stem}", result.event))
    return out


def all_events() -> list[tuple[str, dict[str, Any]]]:
    return builder_events() + sample_events()
