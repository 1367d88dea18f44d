"""Splunk Common Information Model (CIM 6.x): the CIM fields of a WIA event, the data models it belongs to and their tags.

Spec: the CIM data model definitions (required/conditional fields and expected values per dataset,
as pytest-splunk-addon's data-model JSON carries them). `from_wia` returns

    {"fields": {CIM field: value}, "datamodels": ["Network_Traffic.All_Traffic", ...],
     "tags": ["network", "communicate"], "sourcetype": "wia:security:network_event"}

A required field the event has no value for is "unknown" (the value the CIM data models
themselves fill in); numeric required fields are left out instead (the data models null
non-numbers anyway). Multi-value fields are lists. Three extra fields, `wia_id`, `wia_type` and
`wia_severity`, let `to_wia` rebuild the event identity; `to_wia` accepts that document (or a
flat dict of fields with those keys, as Splunk returns search results) and rebuilds what the CIM
fields carry. The tables, per data model with the WIA source of each field: docs/formats/cim.md.
"""
from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Callable
from urllib.parse import urlsplit

from .._version import WIA_SCHEMA_URI, WIA_VERSION
from ..errors import ConversionError
from ..severity import BAND_PRIORITY, band
from ..timeutil import parse_iso, to_iso
from ._own_event import MISSING, checked, value_at
from ._wia_paths import canonical_times, clean, ip_version, is_int, is_mac, is_number, nonblank
from ..validation.formats import is_uri
from .base import Format, guarded_reader

CIM_VERSION = "6.x"
UNKNOWN = "unknown"

#: data model dataset -> its tags (the dataset's search constraint, CIM 6.x)
DATASET_TAGS: dict[str, tuple[str, ...]] = {
    "Alerts.Alerts": ("alert",),
    "Intrusion_Detection.IDS_Attacks": ("ids", "attack"),
    "Malware.Malware_Attacks": ("malware", "attack"),
    "Vulnerabilities.Vulnerabilities": ("vulnerability", "report"),
    "Authentication.Authentication": ("authentication",),
    "Authentication.Privileged_Authentication": ("authentication", "privileged"),
    "Change.Account_Management": ("change", "account"),
    "Network_Traffic.All_Traffic": ("network", "communicate"),
    "Network_Resolution.DNS": ("network", "resolution", "dns"),
    "Web.Web": ("web",),
    "Endpoint.Processes": ("process", "report"),
    "Endpoint.Filesystem": ("endpoint", "filesystem"),
    "Endpoint.Registry": ("endpoint", "registry"),
    "Endpoint.Services": ("service", "report"),
}

#: WIA severity band -> CIM severity (critical|high|medium|low|informational)
SEVERITY = {"informational": "informational", "low": "low", "medium": "medium", "high": "high",
            "critical": "critical", "emergency": "critical"}
CVSS_SEVERITY = {"critical": "critical", "high": "high", "medium": "medium", "low": "low", "none": "informational"}
NETWORK_ACTION = {"allowed": "allowed", "blocked": "blocked", "dropped": "blocked", "reset": "blocked"}
DNS_REPLY = {"NOERROR": ("No Error", 0), "FORMERR": ("Format Error", 1), "SERVFAIL": ("Server Failure", 2),
             "NXDOMAIN": ("Non-Existent Domain", 3), "REFUSED": ("Refused", 5)}
FILE_ACTION = {"file_create": "created", "file_modify": "modified", "file_delete": "deleted", "dll_load": "read"}
REGISTRY_ACTION = {"registry_create": "created", "registry_modify": "modified", "registry_delete": "deleted"}
#: Registry hive spellings -> the CIM registry_hive values
HIVES = {"HKEY_LOCAL_MACHINE\\SAM": "HKEY_LOCAL_MACHINE\\SAM", "HKEY_LOCAL_MACHINE\\SECURITY": "HKEY_LOCAL_MACHINE\\Security",
         "HKEY_LOCAL_MACHINE\\SOFTWARE": "HKEY_LOCAL_MACHINE\\Software", "HKEY_LOCAL_MACHINE\\SYSTEM": "HKEY_LOCAL_MACHINE\\System",
         "HKEY_USERS\\.DEFAULT": "HKEY_USERS\\.DEFAULT", "HKEY_CURRENT_USER": "HKEY_CURRENT_USER",
         "HKEY_CURRENT_CONFIG": "HKEY_CURRENT_CONFIG"}
_HIVE_ABBREVIATIONS = {"HKLM": "HKEY_LOCAL_MACHINE", "HKCU": "HKEY_CURRENT_USER", "HKU": "HKEY_USERS",
                       "HKCR": "HKEY_CLASSES_ROOT", "HKCC": "HKEY_CURRENT_CONFIG"}
ACCOUNT_EVENTS = {"password_change", "account_locked", "account_unlocked"}


def _first(*values: Any) -> Any:
    """The first value that says something (a non-empty string or a number)."""
    return next((v for v in values if (isinstance(v, str) and v != "") or is_number(v)), None)


def _str(value: Any) -> str:
    """A value `_first` picked, as the text a WIA title or id needs (a number as written)."""
    return value if isinstance(value, str) else json.dumps(value)


def _or_unknown(*values: Any) -> Any:
    value = _first(*values)
    return UNKNOWN if value is None else value


def _basename(path: Any) -> str | None:
    if not nonblank(path):
        return None
    name = re.split(r"[\\/]", path.rstrip("\\/"))[-1]
    return name or None


def _endpoint_name(host: dict[str, Any]) -> Any:
    return _first(host.get("ip"), host.get("hostname"))


def normalize_hive(key: str) -> tuple[str | None, str]:
    """(CIM registry_hive or the key's own hive when CIM lists none for it, key with the hive spelled out)."""
    head, sep, rest = key.partition("\\")
    head = _HIVE_ABBREVIATIONS.get(head.upper(), head.upper())
    full = head + sep + rest
    upper = full.upper()
    for spelling, hive in HIVES.items():
        if upper == spelling or upper.startswith(spelling + "\\"):
            return hive, full
    return (head if head.startswith("HKEY_") else None), full


class CimFormat(Format):
    name = "cim"
    title = "Splunk Common Information Model"
    spec_version = CIM_VERSION
    can_parse = True

    #: WIA fields (dotted patterns) that survive WIA -> CIM -> WIA for every event that has them, measured by
    #: tests/core/formats/test_roundtrip_properties.py over the corpus and generated events (docs/formats/cim.md).
    _MITRE = ("mitre.sub_technique", "mitre.tactic", "mitre.technique")
    survives = ("$schema", "id", "severity", "source.name", "source.vendor", "source.version", "timestamp", "type")
    survives_by_type = {
        "alert": ("context.network.destination.ip", "context.network.destination.port", "context.network.source.ip",
                  "context.network.source.port", "context.user.name", "data.alert_id", "data.assignee", "data.category",
                  "data.count", "data.detection_rule.id", "data.detection_rule.name", "data.priority", "data.status",
                  "data.title", *_MITRE),
        "auth_event": ("data.auth_method", "data.event_type", "data.failure_reason", "data.result", "data.session_id",
                       "data.source.ip", "data.source.user_agent", "data.target.name", "data.user.name", *_MITRE),
        "endpoint_event": ("data.event_type", "data.process.command_line", "data.process.integrity_level",
                           "data.process.path", "data.process.pid", "data.process.user", *_MITRE),
        "incident": ("data.category", "data.incident_id", "data.lead_analyst", "data.priority", "data.status",
                     "data.title", *_MITRE),
        "network_event": ("data.action", "data.bytes_received", "data.bytes_sent", "data.destination.hostname",
                          "data.destination.ip", "data.event_type", "data.packets_received", "data.packets_sent",
                          "data.protocol", "data.rule_matched", "data.source.hostname", "data.source.ip", "data.url",
                          *_MITRE),
        "threat_intel": ("data.status", "data.threat_family", "data.threat_name", "data.threat_type"),
        "vulnerability": ("data.cvss.score", "data.cvss.severity", "data.cwe", "data.description", "data.title",
                          "data.vuln_id", *_MITRE),
    }

    # -- WIA -> CIM ----------------------------------------------------------------------------
    def from_wia(self, event: dict[str, Any], **options: Any) -> dict[str, Any]:
        etype = event.get("type")
        mapper: Callable[[dict[str, Any], dict[str, Any]], list[str]] | None = getattr(self, f"_{etype}", None)
        if mapper is None:
            raise ConversionError(self.name, f"no CIM mapping for event type {etype!r}", path="/type")
        src = event.get("source") or {}
        fields: dict[str, Any] = {
            "_time": _epoch_seconds(event["timestamp"]),
            "wia_id": event.get("id"), "wia_type": etype, "wia_severity": event.get("severity"),
            "severity": SEVERITY[band(event["severity"])], "severity_id": event.get("severity"),
            "vendor_product": " ".join(v for v in (src.get("vendor"), src.get("name")) if nonblank(v)) or UNKNOWN,
            "vendor": src.get("vendor"), "product": src.get("name"), "product_version": src.get("version"),
            "dvc": _or_unknown(src.get("name")),
        }
        self._context(event, fields)
        datamodels = mapper(event, fields)
        tags = list(dict.fromkeys(t for dm in datamodels for t in DATASET_TAGS[dm]))
        for tag in (event.get("meta") or {}).get("tags") or []:
            if nonblank(tag) and tag not in tags:
                fields.setdefault("wia_tags", []).append(tag)
        return {"fields": {k: v for k, v in fields.items() if v is not None and v != []},
                "datamodels": datamodels, "tags": tags, "sourcetype": f"wia:security:{etype}"}

    @staticmethod
    def _context(event: dict[str, Any], f: dict[str, Any]) -> None:
        ctx = event.get("context") or {}
        host, user, net, cloud = (ctx.get(k) or {} for k in ("host", "user", "network", "cloud"))
        mitre = event.get("mitre") or {}
        s, d = net.get("source") or {}, net.get("destination") or {}
        f.update({
            "src": _endpoint_name(s), "src_ip": s.get("ip") if ip_version(s.get("ip")) else None,
            "src_port": s.get("port") if is_int(s.get("port")) else None, "src_host": s.get("hostname"),
            "dest": _first(d.get("ip"), d.get("hostname"), host.get("hostname"), *(host.get("ip") or [])),
            "dest_ip": d.get("ip") if ip_version(d.get("ip")) else None,
            "dest_port": d.get("port") if is_int(d.get("port")) else None, "dest_host": d.get("hostname"),
            "direction": net.get("direction") if net.get("direction") in ("inbound", "outbound") else None,
            "transport": net["protocol"].lower() if nonblank(net.get("protocol")) and net["protocol"].lower() in ("tcp", "udp", "icmp") else None,
            "user": user.get("name"), "user_email": user.get("email"),
            "vendor_account": cloud.get("account_id"), "vendor_region": cloud.get("region"),
            "mitre_technique_id": _first(mitre.get("sub_technique"), mitre.get("technique")),
            "mitre_tactic_id": mitre.get("tactic"),
        })

    def _alert(self, event: dict[str, Any], f: dict[str, Any]) -> list[str]:
        data = event["data"]
        rule = data.get("detection_rule") or {}
        indicators = [i for i in data.get("indicators") or [] if isinstance(i, dict)]
        f.update({"type": "alert", "id": data.get("alert_id"), "subject": data.get("title"),
                  "description": _first(data.get("description"), data.get("title")),
                  "signature": _first(rule.get("name"), data.get("title")), "signature_id": _first(rule.get("id"), data.get("alert_id")),
                  "app": _or_unknown((event.get("source") or {}).get("name")), "src": _or_unknown(f["src"]),
                  "dest": _or_unknown(f["dest"]), "user": _or_unknown(f["user"]), "category": data.get("category"),
                  "rule_id": rule.get("id"), "rule_name": rule.get("name"),
                  "status": data.get("status"), "priority": data.get("priority"), "owner": data.get("assignee"),
                  "count": data.get("count") if is_int(data.get("count")) else None})
        self._indicator_fields(indicators, f)
        models = ["Alerts.Alerts"]
        if data.get("category") in ("intrusion", "reconnaissance"):
            network = bool((event.get("context") or {}).get("network"))
            f.update({"action": "allowed", "ids_type": "network" if network else "host"})
            if not network:
                f.update({"file_hash": _or_unknown(f.get("file_hash")), "file_name": _or_unknown(f.get("file_name")),
                          "file_path": _or_unknown(f.get("file_path"))})
            else:
                f["transport"] = _or_unknown(f.get("transport"))
            models.append("Intrusion_Detection.IDS_Attacks")
        elif data.get("category") == "malware":
            f.update({"action": "allowed", "file_name": _or_unknown(f.get("file_name")),
                      "file_path": _or_unknown(f.get("file_path"))})
            models.append("Malware.Malware_Attacks")
        return models

    @staticmethod
    def _indicator_fields(indicators: list[dict[str, Any]], f: dict[str, Any]) -> None:
        by_type: dict[str, list[str]] = {}
        for ind in indicators:
            if nonblank(ind.get("value")):
                by_type.setdefault(ind.get("type", ""), []).append(ind["value"])
        hashes = [v for t in ("hash", "file_hash_md5", "file_hash_sha1", "file_hash_sha256") for v in by_type.get(t, [])]
        files = by_type.get("file", [])
        if hashes:
            f["file_hash"] = hashes if len(hashes) > 1 else hashes[0]
        if files:
            f["file_path"] = files[0]
            f["file_name"] = _basename(files[0])
        for wia_type, cim in (("ip", "threat_ip"), ("domain", "threat_domain"), ("url", "url"), ("email", "threat_email"),
                              ("mutex", "threat_mutex"), ("registry", "threat_registry")):
            values = by_type.get(wia_type)
            if values:
                f[cim] = values if len(values) > 1 else values[0]

    def _incident(self, event: dict[str, Any], f: dict[str, Any]) -> list[str]:
        data = event["data"]
        assets = [a for a in data.get("affected_assets") or [] if isinstance(a, dict)]
        users = [a.get("name") or a.get("id") for a in assets if a.get("type") == "user"]
        hosts = [_first(a.get("name"), a.get("ip"), a.get("id")) for a in assets if a.get("type") != "user"]
        f.update({"type": "alert", "id": data.get("incident_id"), "description": _first(data.get("description"), data.get("title")),
                  "signature": data.get("title"), "signature_id": data.get("incident_id"),
                  "app": _or_unknown((event.get("source") or {}).get("name")), "src": _or_unknown(f["src"]),
                  "dest": _or_unknown(*hosts, f["dest"]), "user": _or_unknown(*users, f["user"]),
                  "category": data.get("category"), "status": data.get("status"), "priority": data.get("priority"),
                  "owner": data.get("lead_analyst")})
        return ["Alerts.Alerts"]

    def _vulnerability(self, event: dict[str, Any], f: dict[str, Any]) -> list[str]:
        data = event["data"]
        cvss = data.get("cvss") or {}
        products = [p for p in data.get("affected_products") or [] if isinstance(p, dict)]
        cwe = [c for c in data.get("cwe") or [] if nonblank(c)]
        f.update({"cve": data.get("vuln_id"), "signature_id": data.get("vuln_id"), "signature": data.get("title"),
                  "cvss": cvss.get("score"), "severity": CVSS_SEVERITY.get(cvss.get("severity"), f["severity"]),
                  "category": _or_unknown(cwe[0] if cwe else None), "xref": cwe or None,
                  "dest": _or_unknown(f["dest"], *(f"{p.get('vendor')} {p.get('product')}" for p in products)),
                  "url": _first(*(data.get("references") or [])), "description": data.get("description")})
        return ["Vulnerabilities.Vulnerabilities"]

    def _auth_event(self, event: dict[str, Any], f: dict[str, Any]) -> list[str]:
        data = event["data"]
        user, target, origin = data.get("user") or {}, data.get("target") or {}, data.get("source") or {}
        kind = data.get("event_type")
        f.update({"user": _or_unknown(user.get("name")), "user_email": user.get("email"),
                  "src": _or_unknown(origin.get("ip"), origin.get("hostname"), f["src"]),
                  "src_ip": origin.get("ip") if ip_version(origin.get("ip")) else f.get("src_ip"),
                  "src_host": origin.get("hostname") if nonblank(origin.get("hostname")) else f.get("src_host"),
                  "dest": _or_unknown(target.get("ip"), target.get("name")), "dest_host": target.get("name"),
                  "dest_ip": target.get("ip") if ip_version(target.get("ip")) else None,
                  "app": _or_unknown(target.get("name") if target.get("type") in ("application", "service") else None,
                                     (event.get("source") or {}).get("name")),
                  "signature": kind, "signature_id": kind, "reason": data.get("failure_reason"),
                  "authentication_method": data.get("auth_method"), "session_id": data.get("session_id"),
                  "user_agent": origin.get("user_agent"), "user_role": data.get("user", {}).get("roles") or None,
                  "user_group": data.get("user", {}).get("groups") or None, "logon_type": data.get("logon_type"),
                  "mfa_method": data.get("mfa_method"), "src_country": (origin.get("geo") or {}).get("country"),
                  "src_city": (origin.get("geo") or {}).get("city"), "risk_score": data.get("risk_score")})
        status = "success" if data.get("result") == "success" else "failure"
        if kind in ACCOUNT_EVENTS:
            f.update({"action": "modified", "status": status, "change_type": "AAA", "command": kind,
                      "object": f["user"], "object_id": _or_unknown(user.get("employee_id"), user.get("name")),
                      "object_category": "user", "object_attrs": "password" if kind == "password_change" else "lockout",
                      "src_user": f["user"], "dvc": f["dvc"]})
            if kind == "account_locked":
                f["result"] = "lockout"
            elif status == "failure":
                f["result"] = data.get("failure_reason") or "failure"
            return ["Change.Account_Management"]
        f["action"] = status
        if kind == "privilege_escalation":
            f["src_user"] = f["user"]
            return ["Authentication.Authentication", "Authentication.Privileged_Authentication"]
        return ["Authentication.Authentication"]

    def _network_event(self, event: dict[str, Any], f: dict[str, Any]) -> list[str]:
        data = event["data"]
        s, d = data.get("source") or {}, data.get("destination") or {}
        proto = (data.get("protocol") or "").lower()
        sent, received = data.get("bytes_sent"), data.get("bytes_received")
        psent, preceived = data.get("packets_sent"), data.get("packets_received")
        f.update({"src": _or_unknown(s.get("ip"), s.get("hostname")), "src_ip": s.get("ip") if ip_version(s.get("ip")) else None,
                  "src_port": s.get("port"), "src_host": s.get("hostname"), "src_mac": s.get("mac") if is_mac(s.get("mac")) else None,
                  "dest": _or_unknown(d.get("ip"), d.get("hostname")), "dest_ip": d.get("ip") if ip_version(d.get("ip")) else None,
                  "dest_port": d.get("port"), "dest_host": d.get("hostname"), "dest_mac": d.get("mac") if is_mac(d.get("mac")) else None,
                  "transport": proto, "action": NETWORK_ACTION.get(data.get("action"), "flow"),
                  "vendor_action": data.get("action"),
                  "direction": data.get("direction") if data.get("direction") in ("inbound", "outbound") else None,
                  "app": _or_unknown(data.get("application"), data.get("event_type")), "rule": data.get("rule_matched"),
                  "bytes_out": sent, "bytes_in": received,
                  "bytes": sent + received if is_int(sent) and is_int(received) else None,
                  "packets_out": psent, "packets_in": preceived,
                  "packets": psent + preceived if is_int(psent) and is_int(preceived) else None,
                  "duration": data["duration_ms"] / 1000 if is_int(data.get("duration_ms")) else None,
                  "protocol_version": {4: "ipv4", 6: "ipv6"}.get(ip_version(s.get("ip")) or 0),
                  "src_country": (s.get("geo") or {}).get("country"), "dest_country": (d.get("geo") or {}).get("country"),
                  "url": data.get("url"), "wia_event_type": data.get("event_type")})
        if proto not in ("tcp", "udp"):
            f.update(src_port=None, dest_port=None)
        models = ["Network_Traffic.All_Traffic"]
        dns = data.get("dns") or {}
        # DNS and Web are claimed only when the event has the values their expected-value fields need.
        if nonblank(dns.get("query")) and dns.get("query_type") and dns.get("response_code") in DNS_REPLY:
            answers = [a for a in dns.get("response") or [] if nonblank(a)]
            reply = DNS_REPLY.get(dns.get("response_code"))
            f.update({"query": _or_unknown(dns.get("query")), "query_count": 1 if nonblank(dns.get("query")) else 0,
                      "query_type": "Query", "record_type": _or_unknown(dns.get("query_type")),
                      "answer": answers or UNKNOWN, "answer_count": len(answers),
                      "message_type": "Response" if answers or reply else "Query",
                      "reply_code": reply[0] if reply else UNKNOWN, "reply_code_id": reply[1] if reply else None,
                      "response_time": f["duration"], "transport": proto})
            models.append("Network_Resolution.DNS")
        http = data.get("http") or {}
        if nonblank(http.get("method")) and is_int(http.get("status_code")):
            url = data.get("url")
            parts = urlsplit(url) if nonblank(url) else None
            ua = http.get("user_agent")
            f.update({"http_method": _or_unknown(http.get("method")), "status": http.get("status_code"),
                      "http_user_agent": _or_unknown(ua), "http_user_agent_length": len(ua) if nonblank(ua) else 0,
                      "http_referrer": http.get("referer"), "http_content_type": http.get("content_type"),
                      "url": _or_unknown(url), "url_domain": _or_unknown(parts.hostname if parts else None, d.get("hostname")),
                      "uri_path": parts.path or None if parts else None, "uri_query": parts.query or None if parts else None,
                      "category": _or_unknown(data.get("application"))})
            models.append("Web.Web")
        tls = data.get("tls") or {}
        if tls:
            cert = tls.get("certificate") or {}
            f.update({"ssl_version": tls.get("version"), "ssl_cipher": tls.get("cipher"), "ssl_subject_common_name": tls.get("sni"),
                      "ssl_issuer": cert.get("issuer"), "ssl_subject": cert.get("subject"), "ssl_hash": cert.get("fingerprint_sha256")})
        return models

    def _endpoint_event(self, event: dict[str, Any], f: dict[str, Any]) -> list[str]:
        data = event["data"]
        kind = data.get("event_type")
        host, proc, file, reg = (data.get(k) or {} for k in ("host", "process", "file", "registry"))
        parent = proc.get("parent") or {}
        user = _or_unknown(proc.get("user"), file.get("owner"), f["user"])
        hashes = proc.get("hash") or {}
        f.update({"dest": _or_unknown(host.get("hostname")), "dest_nt_host": host.get("hostname"),
                  "dest_nt_domain": host.get("domain"), "dest_ip": None, "dest_port": None, "user": user,
                  "os": (host.get("os") or {}).get("name"), "wia_event_type": kind,
                  "process": _or_unknown(proc.get("command_line"), proc.get("name")),
                  "process_id": proc.get("pid"), "process_name": _or_unknown(_basename(proc.get("name")), _basename(proc.get("path"))),
                  "process_path": _or_unknown(proc.get("path")),
                  "process_integrity_level": proc.get("integrity_level"),
                  "process_hash": _first(hashes.get("sha256"), hashes.get("sha1"), hashes.get("md5")),
                  "parent_process": _or_unknown(parent.get("command_line"), parent.get("name")),
                  "parent_process_id": _first(parent.get("pid"), proc.get("ppid")),
                  "parent_process_name": _or_unknown(_basename(parent.get("name")), _basename(parent.get("path"))),
                  "parent_process_path": _or_unknown(parent.get("path"))})
        if kind in ("process_creation", "process_termination"):
            f["action"] = "allowed" if kind == "process_creation" else "stopped"
            return ["Endpoint.Processes"]
        if kind in FILE_ACTION:
            target = data.get("dll") if kind == "dll_load" and data.get("dll") else file
            fh = target.get("hash") or {}
            action = FILE_ACTION[kind]
            f.update({"action": action, "file_path": _or_unknown(target.get("path")),
                      "file_name": _or_unknown(target.get("name"), _basename(target.get("path"))),
                      "file_size": target.get("size") if is_int(target.get("size")) else None,
                      "file_hash": _or_unknown(fh.get("sha256"), fh.get("sha1"), fh.get("md5")) if action != "deleted" else
                      _first(fh.get("sha256"), fh.get("sha1"), fh.get("md5")),
                      "file_create_time": file.get("created") if action == "created" else None,
                      "file_modify_time": file.get("modified") if action == "modified" else None,
                      "file_acl": file.get("permissions")})
            if action == "created":
                f["file_create_time"] = _or_unknown(file.get("created"), event.get("timestamp"))
            if action == "modified":
                f["file_modify_time"] = _or_unknown(file.get("modified"), event.get("timestamp"))
            return ["Endpoint.Filesystem"]
        if kind in REGISTRY_ACTION:
            key = reg.get("key") if nonblank(reg.get("key")) else ""
            hive, full = normalize_hive(key) if key else (None, "")
            value = reg.get("value_data")
            f.update({"action": REGISTRY_ACTION[kind], "status": "success", "registry_hive": _or_unknown(hive),
                      "registry_path": _or_unknown(full), "registry_key_name": _or_unknown(_basename(full)),
                      "registry_value_name": _or_unknown(reg.get("value_name")),
                      "registry_value_data": _or_unknown(value), "registry_value_text": _or_unknown(value),
                      "registry_value_type": _or_unknown(reg.get("value_type")), "registry_previous_data": reg.get("previous_data")})
            return ["Endpoint.Registry"]
        if kind in ("service_install", "driver_load"):
            name = _or_unknown(file.get("name"), _basename(file.get("path")), proc.get("name"))
            f.update({"service": name, "service_name": name, "service_path": _or_unknown(file.get("path"), proc.get("path")),
                      "start_mode": UNKNOWN, "status": "installed" if kind == "service_install" else "started",
                      "service_type": "kernel driver" if kind == "driver_load" else None})
            return ["Endpoint.Services"]
        # network_connection: the connection as traffic
        conn = data.get("network_connection") or {}
        outbound = conn.get("direction") != "inbound"
        local = {"ip": conn.get("local_ip"), "port": conn.get("local_port")}
        remote = {"ip": conn.get("remote_ip"), "port": conn.get("remote_port")}
        s, d = (local, remote) if outbound else (remote, local)
        proto = (conn.get("protocol") or "").lower()
        f.update({"src": _or_unknown(s["ip"], host.get("hostname") if outbound else None),
                  "src_ip": s["ip"] if ip_version(s["ip"]) else None, "src_port": s["port"] if proto in ("tcp", "udp") else None,
                  "dest": _or_unknown(d["ip"], host.get("hostname") if not outbound else None),
                  "dest_ip": d["ip"] if ip_version(d["ip"]) else None, "dest_port": d["port"] if proto in ("tcp", "udp") else None,
                  "transport": proto or UNKNOWN, "action": "allowed", "app": _or_unknown(_basename(proc.get("name"))),
                  "direction": conn.get("direction"), "state": conn.get("state")})
        return ["Network_Traffic.All_Traffic"]

    def _threat_intel(self, event: dict[str, Any], f: dict[str, Any]) -> list[str]:
        """No CIM data model holds threat intelligence (Splunk ES keeps it in its intel collections):
        the fields follow those collections' names; no data model, no tags."""
        data = event["data"]
        f.update({"threat_key": _first(data.get("report_id"), data.get("threat_name")),
                  "threat_name": data.get("threat_name"), "threat_category": data.get("threat_type"),
                  "threat_group": data.get("threat_family"), "description": data.get("threat_name"),
                  "threat_status": data.get("status"),
                  "mitre_technique_id": [t["technique"] for t in data.get("ttps") or [] if isinstance(t, dict) and t.get("technique")] or f["mitre_technique_id"]})
        self._indicator_fields([i for i in data.get("indicators") or [] if isinstance(i, dict)], f)
        return []

    # -- CIM -> WIA ----------------------------------------------------------------------------
    @guarded_reader
    def to_wia(self, doc: Any, *, lenient: bool = False, **options: Any) -> list[dict[str, Any]]:
        """A `from_wia` document (or its flat `fields`, as a Splunk search returns them) -> one WIA event.
        `lenient`: the event a document with `wia_type` gives may hold null for an absent optional member."""
        if not isinstance(doc, dict):
            raise ConversionError(self.name, f"a CIM document must be a JSON object, got {type(doc).__name__}", path="/")
        at = ""                         # the JSON pointer of the fields in the document sent, for errors
        if isinstance(doc.get("result"), dict):
            doc, at = doc["result"], "/result"      # search/jobs/export rows and alert-action webhooks wrap the fields
        if isinstance(doc.get("fields"), dict):
            fields, at = doc["fields"], f"{at}/fields"
        else:
            fields = doc
        models = doc.get("datamodels") if isinstance(doc.get("datamodels"), list) else []
        foreign = "wia_type" not in fields
        if foreign:
            fields, prefixed = search_result_fields(fields)
            models = [*models, *prefixed]
        etype = fields.get("wia_type") or self._type_from_models(models, fields)
        if etype is None and foreign:
            models = [*models, *_models_from_tags(fields)]
            etype = self._type_from_models(models, fields)
        builder = getattr(self, f"_back_{etype}", None)
        if builder is None:
            raise ConversionError(self.name, f"cannot tell the WIA event type of this document (wia_type {etype!r}; "
                                  "no data model, field prefix or `tag` names one)", path=f"{at}/wia_type")
        if not is_number(fields.get("_time")):
            why = ("_time (epoch seconds or an ISO 8601 time) is required" if fields.get("_time") is None else
                   f"_time {fields['_time']!r:.60} is neither epoch seconds nor an ISO 8601 time")
            raise ConversionError(self.name, why, path=f"{at}/_time")
        severity = fields.get("wia_severity")
        if not is_number(severity):
            severity = {"critical": 8, "high": 6, "medium": 4, "low": 2, "informational": 0}.get(
                str(fields.get("severity", "")).lower(), 5)
        event_id = fields.get("wia_id") if _is_uuid(fields.get("wia_id")) else str(uuid.uuid5(uuid.NAMESPACE_URL, f"cim:{sorted(fields.items())!r}"))
        product = fields.get("product") if isinstance(fields.get("product"), str) else \
            (fields.get("vendor_product") if _known(fields.get("vendor_product")) else "splunk")
        try:
            timestamp = _iso(fields["_time"])
        except (OverflowError, ValueError, OSError):
            raise ConversionError(self.name, f"_time {fields['_time']!r} is out of range", path=f"{at}/_time") from None
        event: dict[str, Any] = {
            "$schema": WIA_SCHEMA_URI, "version": WIA_VERSION, "id": event_id, "type": etype,
            "timestamp": timestamp, "severity": severity,
            "source": clean({"type": "siem", "name": product, "vendor": fields.get("vendor"), "version": fields.get("product_version")}),
        }
        try:
            event["data"] = builder(fields, models, event)
        except ConversionError as exc:          # the builders name a field as /fields/<name>
            if not exc.path.startswith("/fields/"):
                raise
            raise ConversionError(self.name, exc.reason, path=at + exc.path.removeprefix("/fields")) from None
        mitre = fields.get("mitre_technique_id")
        if nonblank(mitre) and re.match(r"^T\d{4}(\.\d{3})?\Z", mitre):
            event["mitre"] = {"technique": mitre.split(".")[0], **({"sub_technique": mitre} if "." in mitre else {})}
            if re.match(r"^TA\d{4}\Z", str(fields.get("mitre_tactic_id", ""))):
                event["mitre"] = {"tactic": fields["mitre_tactic_id"], **event["mitre"]}
        if not foreign:
            # `wia_type`: this project's layout, whose wia_* and mapped fields are taken as they are, so checked
            # as the other readers check their own layouts (a search result from another product is made valid)
            event = clean(event)
            return [checked(event, self.name, lambda pointer: _field_of(fields, event, at, pointer),
                            "the event this CIM document gives (its wia_type names this project's layout)",
                            lenient=lenient)]
        self._complete_foreign(fields, event)
        canonical_times(event)
        event = clean(event)
        # every field as it came, nulls and empty lists included (meta.custom allows any JSON value)
        event.setdefault("meta", {}).setdefault("custom", {})["cim"] = copy.deepcopy(fields["_original"])
        return [event]

    @staticmethod
    def _complete_foreign(f: dict[str, Any], event: dict[str, Any]) -> None:
        """A search result Splunk (or Enterprise Security) made: what the CIM fields say beyond the
        table (ES notable names, ATT&CK annotations, file hashes, xref URLs). `to_wia` then puts every
        field as it came in `meta.custom.cim`, so nothing is dropped."""
        data, etype = event["data"], event["type"]
        if etype == "alert":
            title = _first(f.get("rule_title"), f.get("rule_name"), f.get("search_name"))
            if title is not None and data.get("title") in ("alert", f.get("description")):
                data["title"] = title
            if _first(f.get("event_id")) is not None and not _known(f.get("id")):
                data["alert_id"] = f["event_id"]
            if _first(f.get("rule_description")) is not None:
                data.setdefault("description", f["rule_description"])
            dest = f.get("dest")
            if _known(dest) and not ip_version(dest):
                event.setdefault("context", {}).setdefault("host", {"hostname": dest})
            hashes = [h for h in _values(f.get("file_hash")) if re.fullmatch(r"[0-9A-Fa-f]{32}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64}", h)]
            if hashes:
                kinds = {32: "file_hash_md5", 40: "file_hash_sha1", 64: "file_hash_sha256"}
                data["indicators"] = [{"type": kinds[len(h)], "value": h.lower()} for h in hashes]
        if etype == "vulnerability":
            urls = [x for x in _values(f.get("xref")) if re.match(r"^https?://", x) and is_uri(x)]
            if urls:
                data.setdefault("references", urls)
        if etype == "auth_event" and ip_version(f.get("src")) and not (data.get("source") or {}).get("ip"):
            data.setdefault("source", {})["ip"] = f["src"]
        if "mitre" not in event:
            ids = [t for t in _values(f.get("annotations.mitre_attack")) if re.match(r"^T\d{4}(\.\d{3})?\Z", t)]
            tactics = [t for t in _values(f.get("annotations.mitre_attack.mitre_tactic_id")) if re.match(r"^TA\d{4}\Z", t)]
            if ids:
                sub = next((t for t in ids if "." in t), None)
                technique = next((t for t in ids if "." not in t), sub[:5] if sub else None)
                mitre = {"technique": technique}
                if sub and sub.startswith(technique):
                    mitre["sub_technique"] = sub
                # the first annotated tactic the technique belongs to (ES annotates lists that need not pair up)
                from ..attack import table
                tactic = next((t for t in tactics if table().in_tactic(mitre.get("sub_technique") or technique, t)), None)
                if tactic:
                    mitre = {"tactic": tactic, **mitre}
                event["mitre"] = mitre

    @staticmethod
    def _type_from_models(models: list[str], fields: dict[str, Any]) -> str | None:
        names = {m.split(".")[0] for m in models if isinstance(m, str)}
        for model, etype in (("Vulnerabilities", "vulnerability"), ("Authentication", "auth_event"),
                             ("Change", "auth_event"), ("Alerts", "alert"), ("Intrusion_Detection", "alert"),
                             ("Malware", "alert"), ("Endpoint", "endpoint_event"), ("Network_Resolution", "network_event"),
                             ("Web", "network_event"), ("Network_Traffic", "network_event")):
            if model in names:
                return etype
        return None

    def _context_back(self, f: dict[str, Any], event: dict[str, Any]) -> None:
        ip = lambda key: f.get(key) if ip_version(f.get(key)) else None  # noqa: E731  (a multivalue list stays in meta.custom.cim)
        net = clean({"source": {"ip": ip("src_ip"), "port": f.get("src_port") if is_int(f.get("src_port")) else None},
                     "destination": {"ip": ip("dest_ip"), "port": f.get("dest_port") if is_int(f.get("dest_port")) else None},
                     "direction": f.get("direction") if f.get("direction") in ("inbound", "outbound") else None})
        ctx = clean({"network": net, "user": {"name": f["user"]} if _known(f.get("user")) else None,
                     "cloud": {"provider": "aws", "account_id": f.get("vendor_account"), "region": f.get("vendor_region")}
                     if nonblank(f.get("vendor_account")) and re.match(r"^\d{12}\Z", f["vendor_account"]) else None})
        if ctx:
            event["context"] = ctx

    def _back_alert(self, f: dict[str, Any], models: list[str], event: dict[str, Any]) -> dict[str, Any]:
        self._context_back(f, event)
        names = {m.split(".")[0] for m in models if isinstance(m, str)}
        category = f.get("category") if f.get("category") in ("malware", "intrusion", "policy", "reconnaissance", "other") else \
            "malware" if "Malware" in names else "intrusion" if "Intrusion_Detection" in names else "other"
        status = f.get("status") if f.get("status") in ("new", "investigating", "resolved", "false_positive", "closed") else "new"
        priority = f.get("priority") if f.get("priority") in ("critical", "high", "medium", "low", "info") else \
            BAND_PRIORITY.get(band(event["severity"]), "medium")
        signature = f.get("signature") if nonblank(f.get("signature")) else f.get("description")
        rule = clean({"id": f.get("rule_id"), "name": f.get("rule_name")})
        return clean({"alert_id": _text(f.get("id")) if _text(f.get("id")) is not None else _str(_first(f.get("signature_id"), event["id"])),
                      "title": _text(f.get("subject")) if _text(f.get("subject")) is not None else _str(_first(signature, f.get("description"), "alert")),
                      "category": category, "status": status, "priority": priority, "detection_rule": rule or None,
                      "count": f.get("count") if is_int(f.get("count")) and f["count"] >= 1 else None,
                      "assignee": _text(f.get("owner"))})

    def _back_incident(self, f: dict[str, Any], models: list[str], event: dict[str, Any]) -> dict[str, Any]:
        category = f.get("category") if f.get("category") in ("malware", "phishing", "ransomware", "data_breach", "ddos",
                                                               "unauthorized_access", "insider_threat", "apt", "other") else "other"
        status = f.get("status") if f.get("status") in ("new", "triaging", "investigating", "containing", "eradicating",
                                                       "recovering", "closed") else "new"
        priority = f.get("priority") if f.get("priority") in ("critical", "high", "medium", "low") else "medium"
        return clean({"incident_id": _text(f.get("id")) if _text(f.get("id")) is not None else event["id"],
                      "title": _text(f.get("signature")) if _text(f.get("signature")) is not None else _str(_first(f.get("description"), "incident")),
                      "category": category, "status": status, "priority": priority,
                      "lead_analyst": _text(f.get("owner"))})

    def _back_vulnerability(self, f: dict[str, Any], models: list[str], event: dict[str, Any]) -> dict[str, Any]:
        cve = _first(f.get("cve"), f.get("signature_id"))
        if not (nonblank(cve) and re.match(r"^CVE-\d{4}-\d{4,}\Z", cve)):
            raise ConversionError(self.name, "a vulnerability needs a CVE id in `cve`", path="/fields/cve")
        score = f.get("cvss") if is_number(f.get("cvss")) and 0 <= f["cvss"] <= 10 else event["severity"]
        severity = {v: k for k, v in CVSS_SEVERITY.items()}.get(_text(f.get("severity")), "medium")
        xref = f.get("xref") if isinstance(f.get("xref"), list) else [f["xref"]] if nonblank(f.get("xref")) else []
        return clean({"vuln_id": cve, "title": _str(_first(f.get("signature"), cve)), "description": f.get("description"),
                      "cvss": {"version": "3.1", "score": score, "severity": severity},
                      "cwe": [c for c in xref if isinstance(c, str) and re.match(r"^CWE-\d+\Z", c)] or None})

    def _back_auth_event(self, f: dict[str, Any], models: list[str], event: dict[str, Any]) -> dict[str, Any]:
        kinds = ("login_success", "login_failure", "logout", "password_change", "account_locked", "account_unlocked",
                 "mfa_success", "mfa_failure", "privilege_escalation")
        result = "success" if (f.get("action") == "success" or f.get("status") == "success") else "failure"
        kind = f.get("signature") if f.get("signature") in kinds else "login_success" if result == "success" else "login_failure"
        reasons = ("invalid_credentials", "account_disabled", "account_locked", "expired_password", "mfa_failed", "unknown")
        return clean({"event_type": kind, "result": result,
                      "failure_reason": f.get("reason") if f.get("reason") in reasons else None,
                      "user": {"name": f.get("user") if nonblank(f.get("user")) else UNKNOWN},
                      "source": {"ip": f.get("src_ip") if ip_version(f.get("src_ip")) else None, "user_agent": f.get("user_agent")},
                      "target": {"type": "application", "name": _first(f.get("dest_host"), f.get("dest"), f.get("app"), UNKNOWN)},
                      "auth_method": f.get("authentication_method") if f.get("authentication_method") in
                      ("password", "sso", "certificate", "biometric", "mfa", "api_key", "oauth") else None,
                      # any text WIA's session_id takes, blank included (the writer writes it as it is)
                      "session_id": f.get("session_id") if isinstance(f.get("session_id"), str) else None})

    def _back_network_event(self, f: dict[str, Any], models: list[str], event: dict[str, Any]) -> dict[str, Any]:
        src_ip, dest_ip = _first(f.get("src_ip"), f.get("src")), _first(f.get("dest_ip"), f.get("dest"))
        if not (ip_version(src_ip) and ip_version(dest_ip)):
            raise ConversionError(self.name, "a network event needs IP addresses in src/src_ip and dest/dest_ip", path="/fields/src")
        names = {m.split(".")[0] for m in models if isinstance(m, str)}
        kinds = ("connection", "dns", "http", "tls", "smtp", "ftp", "ssh", "rdp", "custom")
        kind = f.get("wia_event_type") if f.get("wia_event_type") in kinds else \
            "dns" if "Network_Resolution" in names else "http" if "Web" in names else "connection"
        transport = str(f.get("transport", "")).upper()
        data = {"event_type": kind, "protocol": transport if transport in ("TCP", "UDP", "ICMP", "GRE", "ESP") else "TCP",
                "source": {"ip": src_ip, "port": f.get("src_port"), "hostname": f.get("src_host")},
                "destination": {"ip": dest_ip, "port": f.get("dest_port"), "hostname": f.get("dest_host")},
                "action": f.get("vendor_action") if f.get("vendor_action") in ("allowed", "blocked", "dropped", "reset") else
                f.get("action") if f.get("action") in ("allowed", "blocked") else None,
                "direction": f.get("direction") if f.get("direction") in ("inbound", "outbound") else None,
                "bytes_sent": f.get("bytes_out"), "bytes_received": f.get("bytes_in"),
                "packets_sent": f.get("packets_out"), "packets_received": f.get("packets_in"),
                "rule_matched": f.get("rule"), "url": f.get("url") if _known(f.get("url")) else None}
        for k in ("bytes_sent", "bytes_received", "packets_sent", "packets_received"):
            if not (is_int(data[k]) and data[k] >= 0):
                data[k] = None
        for side in ("source", "destination"):
            port = data[side]["port"]
            if not (is_int(port) and 0 <= port <= 65535):
                data[side]["port"] = None
        if _known(f.get("query")):
            reply = {v[0]: k for k, v in DNS_REPLY.items()}.get(_text(f.get("reply_code")))
            answers = f.get("answer") if isinstance(f.get("answer"), list) else [f["answer"]] if _known(f.get("answer")) else None
            data["dns"] = {"query": f["query"], "query_type": f.get("record_type") if f.get("record_type") in
                           ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT") else None,
                           "response": answers, "response_code": reply}
        if _known(f.get("http_method")) or is_int(f.get("status")):
            status = f.get("status")
            data["http"] = {"method": f.get("http_method") if f.get("http_method") in
                            ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE") else None,
                            "status_code": status if is_int(status) and 100 <= status <= 599 else None,
                            "user_agent": f.get("http_user_agent") if _known(f.get("http_user_agent")) else None,
                            "referer": f.get("http_referrer"), "content_type": f.get("http_content_type")}
        return clean(data)

    def _back_endpoint_event(self, f: dict[str, Any], models: list[str], event: dict[str, Any]) -> dict[str, Any]:
        names = {m for m in models if isinstance(m, str)}
        kinds = ("process_creation", "process_termination", "file_create", "file_modify", "file_delete", "registry_create",
                 "registry_modify", "registry_delete", "network_connection", "dll_load", "driver_load", "service_install")
        action = f.get("action")
        kind = f.get("wia_event_type") if f.get("wia_event_type") in kinds else \
            {"created": "registry_create", "modified": "registry_modify", "deleted": "registry_delete"}.get(action, "registry_modify") \
            if "Endpoint.Registry" in names else \
            {"created": "file_create", "modified": "file_modify", "deleted": "file_delete", "read": "dll_load"}.get(action, "file_modify") \
            if "Endpoint.Filesystem" in names else "service_install" if "Endpoint.Services" in names else \
            "process_termination" if action == "stopped" else "process_creation"
        known = lambda key: f.get(key) if _known(f.get(key)) else None  # noqa: E731
        data: dict[str, Any] = {"event_type": kind, "host": {"hostname": known("dest") or UNKNOWN}}
        data["process"] = {"pid": f.get("process_id") if is_int(f.get("process_id")) else None,
                           "ppid": f.get("parent_process_id") if is_int(f.get("parent_process_id")) else None,
                           "name": known("process_name"), "path": known("process_path"),
                           "command_line": known("process"),   # CIM `process` is the command line (the name when none)
                           "user": known("user"),
                           "integrity_level": f.get("process_integrity_level") if f.get("process_integrity_level") in
                           ("system", "high", "medium", "low") else None}
        if kind.startswith("file") or kind == "dll_load":
            data["file"] = {"path": known("file_path"), "name": known("file_name"),
                            "size": f.get("file_size") if is_int(f.get("file_size")) and f["file_size"] >= 0 else None}
        if kind.startswith("registry"):
            value_type = f.get("registry_value_type")
            data["registry"] = {"key": known("registry_path") or UNKNOWN, "value_name": known("registry_value_name"),
                                "value_data": known("registry_value_data"),
                                "value_type": value_type if value_type in ("REG_SZ", "REG_DWORD", "REG_QWORD", "REG_BINARY",
                                                                           "REG_MULTI_SZ", "REG_EXPAND_SZ") else None}
        return clean(data)

    def _back_threat_intel(self, f: dict[str, Any], models: list[str], event: dict[str, Any]) -> dict[str, Any]:
        types = ("malware", "apt", "campaign", "botnet", "ransomware", "phishing")
        return clean({"threat_name": _first(f.get("threat_name"), f.get("threat_key"), "unknown"),
                      "threat_type": f.get("threat_category") if f.get("threat_category") in types else "malware",
                      "threat_family": f.get("threat_group"),
                      "status": f.get("threat_status") if f.get("threat_status") in ("active", "inactive", "unknown") else "unknown"})


#: A search over a data model names its fields `<dataset>.<field>` (`| tstats ... from datamodel=...`,
#: `| datamodel Authentication search`): the prefix -> the dataset it stands for.
_PREFIX_DATASET = {dataset.split(".")[1]: dataset for dataset in DATASET_TAGS}
#: CIM fields that are numbers (Splunk returns every value as a string).
_INT_FIELDS = frozenset({"src_port", "dest_port", "bytes", "bytes_in", "bytes_out", "packets", "packets_in", "packets_out",
                         "process_id", "parent_process_id", "file_size", "count", "status", "duration", "dest_port_range"})
_FLOAT_FIELDS = frozenset({"cvss", "_time"})
#: Network_Resolution reply_code spellings (CIM lists "NoError", Stream writes "No Error") -> the table's.
_REPLY_CODES = {"noerror": "No Error", "nxdomain": "Non-Existent Domain", "nonexistentdomain": "Non-Existent Domain",
                "servfail": "Server Failure", "serverfailure": "Server Failure", "refused": "Refused",
                "formerr": "Format Error", "formaterror": "Format Error"}


def search_result_fields(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A Splunk search result as this module's reader expects the fields: data-model prefixes taken
    off (the datasets they name returned), number fields as numbers, `_time` in epoch seconds.
    The original fields travel under `_original` (they end up in `meta.custom.cim`)."""
    fields: dict[str, Any] = {}
    datasets: list[str] = []
    for key, value in raw.items():
        value = _splunk_value(value)
        prefix, dot, rest = key.partition(".")
        if dot and prefix in _PREFIX_DATASET and rest:
            datasets.append(_PREFIX_DATASET[prefix])
            key = rest
        fields.setdefault(key, value)
    for key in _INT_FIELDS & fields.keys():
        value = fields[key]
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():   # not '²' (int() refuses it)
            fields[key] = int(value)
    for key in _FLOAT_FIELDS & fields.keys():
        fields[key] = _number_or_time(fields[key]) if key == "_time" else _number(fields[key])
    reply = fields.get("reply_code")
    if isinstance(reply, str):
        fields["reply_code"] = _REPLY_CODES.get(re.sub(r"[\s_-]", "", reply.lower()), reply)
    fields["_original"] = dict(raw)
    return fields, list(dict.fromkeys(datasets))


def _splunk_value(value: Any) -> Any:
    """Splunk writes every field value as a string, a multivalue field as a list of strings: a number
    (from another producer) is read as its text; a boolean, an object or a list holding one is not
    read at all (it would land where WIA wants text) and stays only in meta.custom.cim."""
    if value is None or isinstance(value, str):
        return value
    if is_number(value):
        return json.dumps(value)
    if isinstance(value, list) and all(isinstance(v, str) or is_number(v) for v in value):
        return [v if isinstance(v, str) else json.dumps(v) for v in value]
    return None


def _models_from_tags(fields: dict[str, Any]) -> list[str]:
    """The datasets whose constraint tags (CIM 6.x) the result's `tag` field has; an Enterprise
    Security notable (`search_name`/`rule_name`) is an Alerts event."""
    tags = set(_values(fields.get("tag")))
    found = [dataset for dataset, needed in DATASET_TAGS.items() if tags.issuperset(needed)]
    if not found and (_known(fields.get("search_name")) or _known(fields.get("rule_name"))):
        found.append("Alerts.Alerts")
    return found


def _values(value: Any) -> list[str]:
    """A CIM field as a list of strings (a multivalue field is a list, a single value a string)."""
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, str) and v != ""]


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            return value
    return value


def _number_or_time(value: Any) -> Any:
    """`_time` as epoch seconds: a number, a numeric string, or the ISO 8601 text the export API writes."""
    number = _number(value)
    if not isinstance(number, str):
        return number
    try:
        return parse_iso(number).timestamp()
    except ValueError:
        return value


def _field_of(fields: dict[str, Any], event: dict[str, Any], at: str, pointer: str) -> str:
    """The JSON pointer of the CIM field that gave the event's value at `pointer`: the one field holding that
    value (the same JSON type and value), else the fields themselves (`at`, "/" for a flat result) when no
    field or several do, or the event has no value there (a required member missing)."""
    node = value_at(event, pointer)
    if node is MISSING:
        return at or "/"
    holders = [key for key, value in fields.items() if type(value) is type(node) and value == node]
    if len(holders) != 1:
        return at or "/"
    return f"{at}/" + holders[0].replace("~", "~0").replace("/", "~1")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
#: The whole microseconds since the epoch of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z.
_FIRST_MICROS = (datetime(1, 1, 1, tzinfo=timezone.utc) - _EPOCH) // _MICROSECOND
_LAST_MICROS = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc) - _EPOCH) // _MICROSECOND
#: Within this many seconds of the epoch (1697-2242) a float holds every microsecond.
_FLOAT_HOLDS_MICROS = 2.0 ** 33


def _micros(seconds: float) -> int:
    """Epoch seconds as whole microseconds, a float read as the shortest decimal that names it (its repr), which
    is what was written: round(seconds, 6) of the float itself misses by some microseconds before 1697 and after
    2242, where a float's step is more than one (and in years 1 and 9999 printed a millisecond off)."""
    return int((Decimal(repr(seconds)) * 1_000_000).to_integral_value(ROUND_HALF_EVEN))


def _epoch_seconds(timestamp: str) -> float:
    """A WIA date-time as `_time`: epoch seconds to the microsecond, or to the millisecond where a float cannot
    hold the microseconds so that `_iso` reads them back within the same millisecond. ConversionError (naming
    /timestamp) when the instant is outside the years 1-9999 in UTC, which the way back cannot spell."""
    micros = (parse_iso(timestamp) - _EPOCH) // _MICROSECOND
    if not _FIRST_MICROS <= micros <= _LAST_MICROS:
        raise ConversionError("cim", f"{timestamp!r} is valid RFC 3339, but in UTC it falls outside the years "
                              "0001-9999, which a WIA event read back from _time cannot spell", path="/timestamp")
    seconds = micros / 1_000_000            # correctly rounded: the same float as round(timestamp(), 6)
    if -_FLOAT_HOLDS_MICROS <= seconds <= _FLOAT_HOLDS_MICROS or _micros(seconds) // 1000 == micros // 1000:
        return seconds
    return micros // 1000 / 1000


def _iso(seconds: float) -> str:
    """Epoch seconds as RFC 3339 UTC: milliseconds as the builders write them, microseconds when there are any."""
    moment = _EPOCH + timedelta(microseconds=_micros(seconds))
    if moment.microsecond % 1000:          # not strftime: it writes the year 1 as "1"
        return f"{to_iso(moment)[:-1]}{moment.microsecond % 1000:03d}Z"
    return to_iso(moment)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _known(value: Any) -> bool:
    """A field value that is not empty and not the data models' placeholder "unknown"."""
    return isinstance(value, str) and value not in ("", UNKNOWN)


def _is_uuid(value: Any) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
