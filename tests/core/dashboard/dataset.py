"""A deterministic, realistic week of WIA events (every type) built with the project's builders.

Used by the dashboard and compliance tests and for the screenshot in docs/dashboard.md. Times are
relative to a fixed `END` so the numbers never depend on the clock.
"""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from wia_security.builders import (AlertBuilder, AuthEventBuilder, EndpointEventBuilder, IncidentBuilder,
                                   NetworkEventBuilder, ThreatIntelBuilder, VulnerabilityBuilder)

END = datetime(2026, 3, 8, 0, 0, tzinfo=timezone.utc)
START = END - timedelta(days=7)

SOURCES = {
    "alert": [("edr", "CrowdStrike Falcon", "CrowdStrike"), ("siem", "Splunk Enterprise Security", "Splunk")],
    "endpoint_event": [("edr", "Microsoft Defender for Endpoint", "Microsoft")],
    "network_event": [("ids", "Suricata IDS", "OISF"), ("firewall", "Palo Alto NGFW", "Palo Alto Networks")],
    "auth_event": [("siem", "Okta System Log", "Okta")],
    "vulnerability": [("scanner", "Tenable Nessus", "Tenable")],
    "threat_intel": [("custom", "MISP", "MISP Project")],
    "incident": [("custom", "WIA Incident Response", "WIA")],
}
ALERT_TECHNIQUES = ["T1059.001", "T1566.001", "T1110.003", "T1071.001", "T1486", "T1003.001", "T1021.001",
                    "T1547.001", "T1190", "T1078"]


def _uuid(rnd: random.Random) -> str:
    return str(uuid.UUID(int=rnd.getrandbits(128), version=4))


def _when(rnd: random.Random) -> datetime:
    # Busier on weekdays' working hours: a rough but non-uniform shape for the time series.
    while True:
        moment = START + timedelta(seconds=rnd.uniform(0, 7 * 86400))
        if 8 <= moment.hour <= 19 or rnd.random() < 0.35:
            return moment.replace(microsecond=(moment.microsecond // 1000) * 1000)


def _source(builder: Any, etype: str, rnd: random.Random) -> Any:
    stype, name, vendor = rnd.choice(SOURCES[etype])
    return builder.source(stype, name, vendor)


def week(seed: int = 7, scale: int = 1) -> list[dict[str, Any]]:
    """About 400 x scale valid events spread over START..END, every type represented."""
    rnd = random.Random(seed)
    events: list[dict[str, Any]] = []
    for _ in range(60 * scale):
        at = _when(rnd)
        detected_after = timedelta(minutes=rnd.choice([2, 5, 12, 30, 45, 90, 240]))
        b = _source(AlertBuilder(), "alert", rnd).id(_uuid(rnd)).timestamp(at)
        b.title("Suspicious activity").category(rnd.choice(["malware", "intrusion", "reconnaissance", "policy"]))
        b.status(rnd.choice(["new", "new", "investigating", "resolved", "false_positive", "closed"]))
        b.severity(rnd.choice([3, 5, 6, 7, 8, 9]))
        b.mitre(rnd.choice(ALERT_TECHNIQUES)).seen(at - detected_after, at)
        b.indicator("ip", f"203.0.113.{rnd.randint(1, 254)}")
        events.append(b.build().to_dict())
    for _ in range(90 * scale):
        at = _when(rnd)
        b = _source(NetworkEventBuilder(), "network_event", rnd).id(_uuid(rnd)).timestamp(at)
        kind = rnd.choice(["connection", "dns", "http", "tls"])
        b.kind(kind).protocol("UDP" if kind == "dns" else "TCP").action(rnd.choice(["allowed", "allowed", "blocked"]))
        b.src(f"10.0.{rnd.randint(0, 3)}.{rnd.randint(2, 250)}", rnd.randint(1024, 65535))
        b.dst(f"198.51.100.{rnd.randint(1, 254)}", {"dns": 53, "http": 80}.get(kind, 443))
        b.severity(rnd.choice([0, 1, 2, 3, 4]))
        events.append(b.build().to_dict())
    for _ in range(80 * scale):
        at = _when(rnd)
        b = _source(EndpointEventBuilder(), "endpoint_event", rnd).id(_uuid(rnd)).timestamp(at)
        b.kind(rnd.choice(["process_creation", "file_modify", "registry_modify", "service_install"]))
        b.endpoint(f"WS-{rnd.randint(100, 140)}", os_name="Windows")
        b.severity(rnd.choice([1, 2, 3, 5, 6]))
        if rnd.random() < 0.4:
            b.mitre(rnd.choice(["T1059.001", "T1547.001", "T1543.003", "T1112"]))
        events.append(b.build().to_dict())
    for _ in range(110 * scale):
        at = _when(rnd)
        b = _source(AuthEventBuilder(), "auth_event", rnd).id(_uuid(rnd)).timestamp(at)
        kind = rnd.choice(["login_success", "login_success", "login_failure", "mfa_success", "account_locked",
                           "password_change", "privilege_escalation"])
        b.kind(kind).result("failure" if kind in ("login_failure", "account_locked") else "success")
        b.account(rnd.choice(["alice", "bob", "carol", "dave"]), domain="CORP").target("application", "VPN")
        b.severity(6 if kind == "privilege_escalation" else (3 if kind == "login_failure" else 1))
        events.append(b.build().to_dict())
    for i in range(25 * scale):
        at = _when(rnd)
        b = _source(VulnerabilityBuilder(), "vulnerability", rnd).id(_uuid(rnd)).timestamp(at)
        score = rnd.choice([4.3, 5.9, 7.5, 8.8, 9.8])
        b.cve(f"CVE-2025-{1000 + i}").title("Remote code execution").cvss(score).severity(score)
        if rnd.random() < 0.6:
            b.patch(fixed_versions=["2.0.1"])
        events.append(b.build().to_dict())
    for _ in range(15 * scale):
        at = _when(rnd)
        b = _source(ThreatIntelBuilder(), "threat_intel", rnd).id(_uuid(rnd)).timestamp(at)
        b.threat(rnd.choice(["Emotet", "LockBit", "APT29 phishing wave"]), rnd.choice(["malware", "ransomware", "apt"]))
        b.indicator("domain", f"c2-{rnd.randint(1, 99)}.example.net", confidence=0.8)
        b.ttp(rnd.choice(["T1566.001", "T1071.001", "T1486"])).severity(rnd.choice([5, 7, 8]))
        events.append(b.build().to_dict())
    for _ in range(12 * scale):
        created = _when(rnd)
        b = _source(IncidentBuilder(), "incident", rnd).id(_uuid(rnd)).timestamp(created)
        b.title("Ransomware on finance hosts").category(rnd.choice(["ransomware", "phishing", "malware"]))
        b.severity(rnd.choice([7, 8, 9])).mitre(rnd.choice(["T1486", "T1566.001", "T1021.001"]))
        b.ioc("ip", f"203.0.113.{rnd.randint(1, 254)}", first_seen=created - timedelta(minutes=rnd.choice([20, 60, 180])))
        b.timeline("Alert escalated to SOC", created + timedelta(minutes=1), actor="SOC")
        first_action = created + timedelta(minutes=rnd.choice([10, 25, 40]))
        b.response_action("isolate_host", "WS-101", status="completed", timestamp=first_action)
        status = rnd.choice(["investigating", "containing", "closed", "closed"])
        b.status(status)
        closed = created + timedelta(hours=rnd.choice([3, 6, 20])) if status == "closed" else None
        b.dates(created_at=created, closed_at=closed)
        if status == "closed":
            b.lessons_learned("Block macro attachments at the gateway")
        events.append(b.build().to_dict())
    rnd.shuffle(events)
    return events


if __name__ == "__main__":  # pragma: no cover - `python tests/core/dashboard/dataset.py > week.ndjson`
    import json
    import sys
    for item in week():
        sys.stdout.write(json.dumps(item) + "\n")
