"""OCSF 1.8.0 event -> WIA event: the writer's mapping read backwards, then the `unmapped.wia` patch.

For events this project wrote, the patch restores every value OCSF did not carry, so the round trip
is exact. For OCSF from elsewhere (Security Lake, other producers) the same readers take what the
classes hold, and the WIA fields that are required but absent get documented defaults (`_complete`,
docs/formats/ocsf.md "Parsing"). Readers never read a value the writer derives from another one
(`name` of endpoints and devices, `message`, `type_name`, captions, `observables`, ...), so nothing
is invented on the way back.
"""
from __future__ import annotations

import copy
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from ..._version import WIA_SCHEMA_URI, WIA_VERSION
from ...errors import ConversionError
from ...severity import BAND_PRIORITY, band
from ...timeutil import to_iso
from ...validation import validate_event
from ...validation.formats import is_date_time, is_uuid
from .._own_event import checked
from .._wia_paths import TIME_KEYS, utc_ms
from . import writer as w

Doc = dict[str, Any]


def _inverse(mapping: dict[str, int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for name, ident in mapping.items():
        out.setdefault(ident, name)
    return out


ALERT_STATUS_BACK = _inverse(w.ALERT_STATUS)
INCIDENT_STATUS_BACK = {1: "new", 2: "investigating", 3: "investigating", 4: "closed", 5: "closed"}
PRIORITY_BACK = _inverse(w.PRIORITY)
DIRECTION_BACK = _inverse(w.DIRECTION)
ACTION_BACK = {disposition: action for action, (_a, disposition) in w.ACTION.items()}
RCODE_BACK = _inverse(w.RCODE)
HTTP_METHODS = set(w.HTTP_ACTIVITY)
INTEGRITY_BACK = _inverse(w.INTEGRITY)
REG_TYPE_BACK = {ident: name for name, ident in w.REG_TYPE.items() if name in
                 ("REG_SZ", "REG_DWORD", "REG_QWORD", "REG_BINARY", "REG_MULTI_SZ", "REG_EXPAND_SZ")}
LOGON_TYPE_BACK = _inverse(w.LOGON_TYPE)
MFA_FACTOR_BACK = _inverse(w.MFA_FACTOR)
DEVICE_TYPE_BACK = _inverse(w.DEVICE_TYPE)
HASH_NAMES = {ident: name for name, ident in w.HASHES}
PROTOCOLS = set(w.PROTOCOL_NUMBER)
CVSS_VERSIONS = ("2.0", "3.0", "3.1", "4.0")
CVSS_SEVERITIES = ("critical", "high", "medium", "low", "none")

NETWORK_TYPES = tuple(w.NETWORK_CLASS)
ENDPOINT_TYPES = ("process_creation", "process_termination", "file_create", "file_modify", "file_delete",
                  "registry_create", "registry_modify", "registry_delete", "network_connection", "dll_load",
                  "driver_load", "service_install")
AUTH_TYPES = tuple(w.AUTH_CLASS)
ALERT_CATEGORIES = ("malware", "intrusion", "policy", "reconnaissance", "other")
INCIDENT_CATEGORIES = ("malware", "phishing", "ransomware", "data_breach", "ddos", "unauthorized_access",
                       "insider_threat", "apt", "other")
INCIDENT_STATUSES = tuple(w.INCIDENT_STATUS)
THREAT_TYPES = ("malware", "apt", "campaign", "botnet", "ransomware", "phishing")
FAILURE_REASONS = ("invalid_credentials", "account_disabled", "account_locked", "expired_password", "mfa_failed",
                   "unknown")
CLOUD_PROVIDERS = ("aws", "azure", "gcp")
PROTOCOL_BY_NUMBER = {n: name for name, n in w.PROTOCOL_NUMBER.items()}
AUTH_METHODS = ("password", "sso", "certificate", "biometric", "mfa", "api_key", "oauth")
UNSPECIFIED_IP = "0.0.0.0"
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://wia.live/security/v1/ocsf")


def _key(value: Any) -> Any:
    """`value` when it can be a table key (an enum id), else None: another producer's `status_id` may be
    a list or an object, and the lookup then finds nothing instead of raising."""
    return value if type(value) in (int, str, float, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _obj(value: Any) -> Doc:
    return value if isinstance(value, dict) else {}


def _first(value: Any) -> Doc:
    return value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else {}


def _when(obj: Doc, key: str) -> str | None:
    """The WIA date-time of `key`: its `_dt` text when it is RFC 3339 (exact: what this project wrote
    comes back as written; a foreign event's times are rewritten to UTC milliseconds afterwards, see
    `_canonical_times`), else the epoch number in UTC, its unit told by its size (`epoch`)."""
    text = obj.get(key + "_dt")
    if isinstance(text, str):
        if is_date_time(text):
            return text
        leap = utc_ms(text)             # second 60 (a leap second): valid RFC 3339, refused by WIA's schema
        if leap is not None:
            return leap
    return epoch(obj.get(key))


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch(value: Any) -> str | None:
    """An OCSF timestamp_t (epoch milliseconds) in WIA's spelling. Producers also write seconds,
    microseconds or nanoseconds there; the size tells them apart as the CEF and LEEF readers do
    (below 10^11 seconds, i.e. before 1973-03-03 as milliseconds; from 10^14 microseconds; from 10^17
    nanoseconds). None for anything else or a time outside the years 1-9999."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        return None
    try:
        size = abs(value)
        if size >= 10**17:
            moment = _EPOCH + timedelta(microseconds=int(value) // 1000)
        elif size >= 10**14:
            moment = _EPOCH + timedelta(microseconds=int(value))
        elif size >= 10**11:
            moment = _EPOCH + timedelta(milliseconds=value)
        else:
            moment = _EPOCH + timedelta(seconds=value)
        return to_iso(moment)
    except (ValueError, OverflowError):
        return None


def _count(value: Any, low: int = 1, high: int | None = None) -> int | None:
    """An integer within WIA's bounds (counts start at 1), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high):
        return value
    return None


def _coalesce(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _set(out: Doc, key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def merge(base: Doc, patch: Doc) -> None:
    """Apply an `unmapped.wia` patch in place (the rules are in the writer's docstring)."""
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
            continue
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merge(current, value)
        elif isinstance(value, dict) and isinstance(current, list):
            for index, item in value.items():
                i = int(index) if isinstance(index, str) and index.isdigit() else -1
                if 0 <= i < len(current) and isinstance(current[i], dict) and isinstance(item, dict):
                    merge(current[i], item)
                elif 0 <= i < len(current):
                    current[i] = copy.deepcopy(item)
        else:
            base[key] = copy.deepcopy(value)


# --- shared objects -------------------------------------------------------------------------------
ENDPOINT_OS = ("Windows", "Linux", "macOS")
_OS_TYPE_IDS = {100: "Windows", 200: "Linux", 300: "macOS"}


def endpoint_os(os_: Doc) -> str | None:
    """WIA's endpoint OS word for an OCSF os object: by type_id, else by the words in type/name."""
    if _key(os_.get("type_id")) in _OS_TYPE_IDS:
        return _OS_TYPE_IDS[os_["type_id"]]
    text = f"{os_.get('type', '')} {os_.get('name', '')}".lower()
    for word, family in (("windows", "Windows"), ("macos", "macOS"), ("mac os", "macOS"), ("darwin", "macOS"), ("linux", "Linux")):
        if word in text:
            return family
    return None


def read_device(dev: Doc) -> Doc:
    host: Doc = {}
    _set(host, "hostname", dev.get("hostname"))
    if isinstance(dev.get("ip"), str):
        host["ip"] = [dev["ip"]]
    if isinstance(dev.get("mac"), str):
        host["mac"] = [dev["mac"]]
    os_ = dev.get("os")
    if isinstance(os_, dict) and isinstance(os_.get("name"), str):
        host["os"] = {k: os_[k] for k in ("name", "version", "build") if isinstance(os_.get(k), str)}
    _set(host, "domain", dev.get("domain"))
    agent = _first(dev.get("agent_list"))
    _set(host, "agent_id", agent.get("uid"))
    return host


def read_user(u: Doc) -> Doc:
    user: Doc = {}
    for src, dst in (("name", "name"), ("domain", "domain"), ("email_addr", "email")):
        _set(user, dst, u.get(src))
    _set(user, "employee_id", _obj(u.get("ldap_person")).get("employee_uid"))
    groups = u.get("groups")
    if isinstance(groups, list) and groups:
        names = [g.get("name") for g in groups if isinstance(g, dict) and isinstance(g.get("name"), str)]
        if names:
            user["groups"] = names
    return user


def read_endpoint(ep: Doc) -> Doc:
    out: Doc = {}
    for key in ("ip", "hostname", "mac"):
        _set(out, key, ep.get(key))
    _set(out, "port", _count(ep.get("port"), 0, 65535))
    geo: Doc = {}
    loc = ep.get("location")
    if isinstance(loc, dict):
        for src, dst in (("country", "country"), ("city", "city"), ("lat", "latitude"), ("long", "longitude")):
            _set(geo, dst, loc.get(src))
    asys = ep.get("autonomous_system")
    if isinstance(asys, dict):
        _set(geo, "asn", asys.get("number"))
        _set(geo, "org", asys.get("name"))
    if geo:
        out["geo"] = geo
    return out


def read_hashes(hashes: Any) -> Doc:
    out: Doc = {}
    for h in hashes if isinstance(hashes, list) else ():
        name = HASH_NAMES.get(_key(_obj(h).get("algorithm_id")))
        if name and isinstance(h.get("value"), str):
            out[name] = h["value"]
    return out


def read_file(f: Doc) -> Doc:
    out: Doc = {}
    for src, dst in (("path", "path"), ("name", "name"), ("ext", "extension"), ("size", "size")):
        _set(out, dst, f.get(src))
    hashes = read_hashes(f.get("hashes"))
    if hashes:
        out["hash"] = hashes
    for src, dst in (("created_time", "created"), ("modified_time", "modified"), ("accessed_time", "accessed")):
        _set(out, dst, _when(f, src))
    _set(out, "owner", _obj(f.get("owner")).get("name"))
    return out


def read_process(p: Doc, creator: Any = None) -> Doc:
    """`creator`: the actor's process, read as the parent when the process names none (Windows 4688 style)."""
    out: Doc = {}
    for src, dst in (("pid", "pid"), ("name", "name"), ("path", "path"), ("cmd_line", "command_line")):
        _set(out, dst, p.get(src))
    if "path" not in out:                 # the writer puts a path in file.path only beside process.path
        _set(out, "path", _obj(p.get("file")).get("path"))
    _set(out, "user", _obj(p.get("user")).get("name"))
    _set(out, "integrity_level", INTEGRITY_BACK.get(_key(p.get("integrity_id"))))
    _set(out, "start_time", _when(p, "created_time"))
    file = _obj(p.get("file"))
    hashes = read_hashes(file.get("hashes"))
    if hashes:
        out["hash"] = hashes
    if isinstance(file.get("signature"), dict):
        signature: Doc = {"signed": True}
        if file["signature"].get("state_id") == 1:
            signature["valid"] = True
        out["signature"] = signature
    parent = p.get("parent_process")
    if not isinstance(parent, dict) and isinstance(creator, dict):
        parent = {k: creator[k] for k in ("pid", "name", "cmd_line") if k in creator}
        _set(parent, "path", _obj(creator.get("file")).get("path"))
    if isinstance(parent, dict):
        _set(out, "ppid", parent.get("pid"))
        details: Doc = {}
        for src, dst in (("name", "name"), ("path", "path"), ("cmd_line", "command_line")):
            _set(details, dst, parent.get(src))
        if details:
            out["parent"] = details
    return out


def read_attack(a: Doc) -> Doc:
    out: Doc = {}
    for key in ("tactic", "technique", "sub_technique"):
        node = a.get(key)
        if isinstance(node, dict):
            _set(out, key, node.get("uid"))
            _set(out, key + "_name", node.get("name"))
    return out


def read_indicator(entry: Doc, event_type: str) -> Doc | None:
    kind = w.indicator_kind(_key(entry.get("type_id")), entry.get("type"), entry.get("value"), event_type)
    if kind is None or not isinstance(entry.get("value"), str):
        return None
    out: Doc = {"type": kind, "value": entry["value"]}
    desc = entry.get("desc")
    if event_type == "incident":
        _set(out, "description", desc)
    elif event_type == "alert":
        _set(out, "context", desc)
    else:
        context: Doc = {}
        _set(context, "description", desc)
        _set(context, "kill_chain_phase", _first(entry.get("kill_chain")).get("phase"))
        if context:
            out["context"] = context
    return out


def read_indicators(entries: Any, event_type: str) -> list[Doc]:
    out = []
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and not (entry.get("type_id") == 99 and entry.get("type") == w.THREAT_PLACEHOLDER):
            item = read_indicator(entry, event_type)
            if item is not None:
                out.append(item)
    return out


# --- envelope ---------------------------------------------------------------------------------------
def _envelope(doc: Doc, event_type: str, data: Doc, *, host: bool = True, evidences: bool = False,
              attacks: Any = None) -> Doc:
    metadata = _obj(doc.get("metadata"))
    product = _obj(metadata.get("product"))
    event: Doc = {"$schema": WIA_SCHEMA_URI, "version": WIA_VERSION, "type": event_type}
    uid = metadata.get("uid")
    if isinstance(uid, str) and is_uuid(uid):
        event["id"] = uid
    _set(event, "timestamp", _when(doc, "time"))
    event["severity"] = w.SEVERITY_BACK.get(_key(doc.get("severity_id")), 5)
    source: Doc = {}
    for src, dst in (("name", "name"), ("vendor_name", "vendor"), ("version", "version")):
        _set(source, dst, product.get(src))
    event["source"] = source
    event["data"] = data
    context: Doc = {}
    if host and isinstance(doc.get("device"), dict):
        context["host"] = read_device(doc["device"])
    user = _obj(doc.get("actor")).get("user")
    if isinstance(user, dict):
        context["user"] = read_user(user)
    cloud = doc.get("cloud")
    provider = cloud.get("provider") if isinstance(cloud, dict) else None
    if isinstance(provider, str) and provider.lower() in CLOUD_PROVIDERS:
        c: Doc = {"provider": provider.lower()}
        _set(c, "account_id", _obj(cloud.get("account")).get("uid"))
        _set(c, "region", cloud.get("region"))
        context["cloud"] = c
    if evidences:
        evidence = _first(doc.get("evidences"))
        network: Doc = {}
        for attr, key in (("src_endpoint", "source"), ("dst_endpoint", "destination")):
            if isinstance(evidence.get(attr), dict):
                ep = evidence[attr]
                network[key] = {k: v for k, v in read_endpoint(ep).items() if k in ("ip", "port", "hostname")}
        ci = evidence.get("connection_info")
        if isinstance(ci, dict):
            _set(network, "protocol", ci.get("protocol_name"))
            _set(network, "direction", DIRECTION_BACK.get(_key(ci.get("direction_id"))))
        if network or evidence:
            context["network"] = network
    if context:
        event["context"] = context
    attack = _first(attacks if attacks is not None else doc.get("attacks"))
    if attack:
        event["mitre"] = read_attack(attack)
    meta: Doc = {}
    score = doc.get("confidence_score")
    if isinstance(score, (int, float)) and not isinstance(score, bool):
        meta["confidence"] = score / 100
    if isinstance(metadata.get("labels"), list):
        meta["tags"] = [t for t in metadata["labels"] if isinstance(t, str)]
    if isinstance(metadata.get("tags"), list):
        meta["labels"] = {t["name"]: t["value"] for t in metadata["tags"]
                          if isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("value"), str)}
    _set(meta, "raw", doc.get("raw_data"))
    _set(meta, "correlation_id", metadata.get("correlation_uid"))
    if meta:
        event["meta"] = meta
    return event


# --- per class --------------------------------------------------------------------------------------
def _alert(doc: Doc) -> Doc:
    fi = _obj(doc.get("finding_info"))
    data: Doc = {}
    _set(data, "alert_id", fi.get("uid"))
    _set(data, "title", fi.get("title"))
    _set(data, "description", fi.get("desc"))
    types = fi.get("types")
    if isinstance(types, list) and types and types[0] in ALERT_CATEGORIES:
        data["category"] = types[0]
    _set(data, "status", ALERT_STATUS_BACK.get(_key(doc.get("status_id"))))
    priority = doc.get("priority_id")
    if priority == 99 and str(doc.get("priority", "")).lower() != "info":
        priority = None
    _set(data, "priority", PRIORITY_BACK.get(_key(priority)))
    _set(data, "assignee", _obj(doc.get("assignee")).get("name"))
    analytic = fi.get("analytic")
    if isinstance(analytic, dict):
        rule: Doc = {}
        for src, dst in (("uid", "id"), ("name", "name"), ("version", "version")):
            _set(rule, dst, analytic.get(src))
        data["detection_rule"] = rule
    if isinstance(doc.get("osint"), list) and doc["osint"]:
        data["indicators"] = read_indicators(doc["osint"], "alert")
    _set(data, "first_seen", _when(fi, "first_seen_time"))
    _set(data, "last_seen", _when(fi, "last_seen_time"))
    _set(data, "count", _count(doc.get("count")))
    return _envelope(doc, "alert", data, evidences=True, attacks=fi.get("attacks"))


def _threat_intel(doc: Doc) -> Doc:
    entries = [e for e in _list(doc.get("osint")) if isinstance(e, dict)]
    first = entries[0] if entries else {}
    data: Doc = {}
    kind = first.get("category")
    if kind in THREAT_TYPES:
        data["threat_type"] = kind
    name = _coalesce(_first(first.get("malware")).get("name"), _obj(first.get("threat_actor")).get("name"),
                     _obj(first.get("campaign")).get("name"))
    if name is None and first.get("type") == w.THREAT_PLACEHOLDER:
        name = first.get("value")
    _set(data, "threat_name", name)
    _set(data, "first_seen", _when(doc, "start_time"))
    _set(data, "last_seen", _when(doc, "end_time"))
    indicators = read_indicators(entries, "threat_intel")
    if indicators:
        data["indicators"] = indicators
    attacks = first.get("attacks")
    if isinstance(attacks, list) and attacks:
        data["ttps"] = [read_attack(a) for a in attacks if isinstance(a, dict)]
    if isinstance(first.get("references"), list):
        data["references"] = list(first["references"])
    return _envelope(doc, "threat_intel", data)


def _vulnerability(doc: Doc) -> Doc:
    v = _first(doc.get("vulnerabilities"))
    cve = _obj(v.get("cve"))
    data: Doc = {}
    _set(data, "vuln_id", cve.get("uid"))
    _set(data, "title", _coalesce(_obj(doc.get("finding_info")).get("title"), v.get("title"), cve.get("title")))
    _set(data, "description", v.get("desc"))
    entries = [e for e in _list(cve.get("cvss")) if isinstance(e, dict)]
    base = next((e for e in entries if e.get("depth") in (None, "Base")), entries[0] if entries else None)
    if base is not None:
        score = base.get("overall_score", base.get("base_score"))
        cvss: Doc = {"version": base.get("version"), "score": score}
        severity = str(base.get("severity", "")).lower()
        cvss["severity"] = severity if severity in CVSS_SEVERITIES else _cvss_severity(score)
        _set(cvss, "vector", base.get("vector_string"))
        if base.get("base_score") is not None and base.get("base_score") != score:
            cvss["base_score"] = base["base_score"]
        for e in entries:
            if e.get("depth") == "Temporal":
                _set(cvss, "temporal_score", e.get("overall_score"))
            elif e.get("depth") == "Environmental":
                _set(cvss, "environmental_score", e.get("overall_score"))
        data["cvss"] = cvss
    cwes = cve.get("related_cwes")
    if isinstance(cwes, list) and cwes:
        data["cwe"] = [c.get("uid") for c in cwes if isinstance(c, dict)]
    packages = [p for p in _list(v.get("affected_packages")) if isinstance(p, dict)]
    if packages:
        products: list[Doc] = []
        last = None
        for p in packages:
            key = (p.get("name"), p.get("vendor_name"), p.get("cpe_name"))
            if key != last:
                product: Doc = {"vendor": _coalesce(p.get("vendor_name"), "unknown"), "product": p.get("name"),
                                "versions": []}
                _set(product, "cpe", p.get("cpe_name"))
                products.append(product)
                last = key
            products[-1]["versions"].append(p.get("version"))
        data["affected_products"] = products
    _set(data, "exploit_available", v.get("is_exploit_available"))
    exploit: Doc = {}
    _set(exploit, "type", v.get("exploit_type"))
    _set(exploit, "url", v.get("exploit_ref_url"))
    if exploit:
        data["exploit_details"] = exploit
    _set(data, "patch_available", v.get("is_fix_available"))
    remediation = v.get("remediation")
    if isinstance(remediation, dict) and isinstance(remediation.get("desc"), str):
        patch: Doc = {"workarounds": remediation["desc"].split("\n")}
        refs = remediation.get("references")
        if isinstance(refs, list) and len(refs) == 1:
            patch["vendor_url"] = refs[0]
        data["patch_details"] = patch
    if isinstance(v.get("references"), list):
        data["references"] = list(v["references"])
    _set(data, "published", _when(cve, "created_time"))
    _set(data, "modified", _when(cve, "modified_time"))
    return _envelope(doc, "vulnerability", data, attacks=_obj(doc.get("finding_info")).get("attacks"))


def _cvss_severity(score: Any) -> str:
    if not isinstance(score, (int, float)) or score == 0:
        return "none"
    return "low" if score < 4 else "medium" if score < 7 else "high" if score < 9 else "critical"


def _incident(doc: Doc) -> Doc:
    fi = _first(doc.get("finding_info_list"))
    data: Doc = {}
    _set(data, "incident_id", fi.get("uid"))
    _set(data, "title", fi.get("title"))
    _set(data, "description", fi.get("desc"))
    types = fi.get("types")
    if isinstance(types, list) and types and types[0] in INCIDENT_CATEGORIES:
        data["category"] = types[0]
    detail = doc.get("status_detail")
    _set(data, "status", detail if detail in INCIDENT_STATUSES else INCIDENT_STATUS_BACK.get(_key(doc.get("status_id"))))
    _set(data, "priority", PRIORITY_BACK.get(_key(doc.get("priority_id"))) if doc.get("priority_id") in (1, 2, 3, 4) else None)
    if isinstance(doc.get("osint"), list) and doc["osint"]:
        data["iocs"] = read_indicators(doc["osint"], "incident")
    _set(data, "created_at", _when(fi, "created_time"))
    _set(data, "updated_at", _when(fi, "modified_time"))
    _set(data, "closed_at", _when(doc, "end_time"))
    _set(data, "lead_analyst", _obj(doc.get("assignee")).get("name"))
    return _envelope(doc, "incident", data, attacks=fi.get("attacks"))


def _network(doc: Doc) -> Doc:
    metadata = _obj(doc.get("metadata"))
    uid = doc.get("class_uid")
    code = metadata.get("event_code")
    if uid == 4001 and code == "network_connection":
        return _endpoint(doc)
    data: Doc = {}
    if code in NETWORK_TYPES and w.NETWORK_CLASS[code] == uid:
        data["event_type"] = code
    else:
        data["event_type"] = {4002: "http", 4003: "dns", 4005: "rdp", 4007: "ssh", 4008: "ftp"}.get(uid, "connection")
        if uid == 4001 and doc.get("app_protocol_name") == "smtp":
            data["event_type"] = "smtp"
    ci = _obj(doc.get("connection_info"))
    proto = ci.get("protocol_name")
    if isinstance(proto, str):
        data["protocol"] = proto.upper()
    elif _key(ci.get("protocol_num")) in PROTOCOL_BY_NUMBER:
        data["protocol"] = PROTOCOL_BY_NUMBER[ci["protocol_num"]]
    _set(data, "direction", DIRECTION_BACK.get(_key(ci.get("direction_id"))))
    _set(data, "action", _coalesce(ACTION_BACK.get(_key(doc.get("disposition_id"))),
                                   {1: "allowed", 2: "blocked"}.get(_key(doc.get("action_id")))))
    for attr, key in (("src_endpoint", "source"), ("dst_endpoint", "destination")):
        if isinstance(doc.get(attr), dict):
            data[key] = read_endpoint(doc[attr])
    traffic = _obj(doc.get("traffic"))
    for src, dst in (("bytes_out", "bytes_sent"), ("bytes_in", "bytes_received"), ("packets_out", "packets_sent"),
                     ("packets_in", "packets_received")):
        _set(data, dst, traffic.get(src))
    _set(data, "duration_ms", doc.get("duration"))
    _set(data, "rule_matched", _obj(doc.get("firewall_rule")).get("name"))
    _set(data, "application", doc.get("app_name"))
    request, response = _obj(doc.get("http_request")), doc.get("http_response")
    _set(data, "url", _coalesce(_obj(doc.get("url")).get("url_string"), _obj(request.get("url")).get("url_string")))
    http: Doc = {}
    for src, dst in (("http_method", "method"), ("user_agent", "user_agent"), ("referrer", "referer")):
        _set(http, dst, request.get(src))
    if isinstance(response, dict):
        _set(http, "status_code", response.get("code"))
        _set(http, "content_type", response.get("content_type"))
    if http or isinstance(response, dict):
        data["http"] = http
    dns: Doc = {}
    query = doc.get("query")
    if isinstance(query, dict):
        _set(dns, "query", query.get("hostname"))
        _set(dns, "query_type", query.get("type"))
    if isinstance(doc.get("answers"), list) and doc["answers"]:
        dns["response"] = [_obj(a).get("rdata") for a in doc["answers"]]
    _set(dns, "response_code", RCODE_BACK.get(_key(doc.get("rcode_id"))))
    if dns or isinstance(query, dict) or "rcode_id" in doc:
        data["dns"] = dns
    tls = doc.get("tls")
    if isinstance(tls, dict):
        data["tls"] = {k: tls[k] for k in ("version", "cipher", "sni") if k in tls}
    return _envelope(doc, "network_event", data)


def _endpoint(doc: Doc) -> Doc:
    uid, activity = doc.get("class_uid"), doc.get("activity_id")
    code = _obj(doc.get("metadata")).get("event_code")
    data: Doc = {"event_type": code if code in ENDPOINT_TYPES else _endpoint_type(uid, activity, doc)}
    data["host"] = read_device(_obj(doc.get("device")))
    os_name = (data["host"].get("os") or {}).get("name")
    if os_name is not None and os_name not in ENDPOINT_OS:
        # An endpoint event's host.os.name is one of three words in WIA; OCSF's is free text
        # ("Windows 11"), its os.type_id says which family (100 Windows, 200 Linux, 300 macOS).
        family = endpoint_os(_obj(_obj(doc.get("device")).get("os")))
        if family:
            data["host"]["os"]["name"] = family
        else:
            del data["host"]["os"]["name"]
    actor = _obj(doc.get("actor"))
    process = doc.get("process") if uid == 1007 else actor.get("process")
    if isinstance(process, dict):
        data["process"] = read_process(process, actor.get("process") if uid == 1007 else None)
    if uid == 1001 and isinstance(doc.get("file"), dict):
        data["file"] = read_file(doc["file"])
    elif uid == 1002 and isinstance(_obj(doc.get("driver")).get("file"), dict):
        data["file"] = read_file(doc["driver"]["file"])
    elif uid == 201004 and isinstance(_obj(doc.get("win_service")).get("service_file"), dict):
        data["file"] = read_file(doc["win_service"]["service_file"])
    elif uid == 201001 and isinstance(_obj(doc.get("reg_key")).get("path"), str):
        data["registry"] = {"key": doc["reg_key"]["path"]}
    elif uid == 201002 and isinstance(_obj(doc.get("reg_value")).get("path"), str):
        value = doc["reg_value"]
        registry: Doc = {"key": value["path"]}
        _set(registry, "value_name", value.get("name"))
        _set(registry, "value_data", value.get("data"))
        _set(registry, "value_type", REG_TYPE_BACK.get(_key(value.get("type_id"))))
        _set(registry, "previous_data", _obj(doc.get("prev_reg_value")).get("data"))
        data["registry"] = registry
    elif uid == 1005:
        file = _obj(_obj(doc.get("module")).get("file"))
        if file:
            dll = {k: v for k, v in read_file(file).items() if k in ("path", "name", "hash")}
            if isinstance(file.get("signature"), dict):
                dll["signed"] = True
            data["dll"] = dll
    elif uid == 4001:
        ci = _obj(doc.get("connection_info"))
        inbound = ci.get("direction_id") == 1
        connection: Doc = {}
        _set(connection, "direction", {1: "inbound", 2: "outbound"}.get(_key(ci.get("direction_id"))))
        proto = ci.get("protocol_name")
        if isinstance(proto, str) and proto.upper() in ("TCP", "UDP"):
            connection["protocol"] = proto.upper()
        for side, attr in (("local", "dst_endpoint" if inbound else "src_endpoint"),
                           ("remote", "src_endpoint" if inbound else "dst_endpoint")):
            ep = _obj(doc.get(attr))
            _set(connection, f"{side}_ip", ep.get("ip"))
            _set(connection, f"{side}_port", ep.get("port"))
        data["network_connection"] = connection
    return _envelope(doc, "endpoint_event", data, host=False)


def _endpoint_type(uid: Any, activity: Any, doc: Doc) -> str:
    if uid == 1007:
        return "process_termination" if activity == 2 else "process_creation"
    if uid == 1001:
        return {3: "file_modify", 4: "file_delete"}.get(_key(activity), "file_create")
    if uid in (201001, 201002):
        table = w.REG_KEY_ACTIVITY if uid == 201001 else w.REG_VALUE_ACTIVITY
        return _inverse(table).get(_key(activity), "registry_modify")
    return {1005: "dll_load", 1002: "driver_load", 201004: "service_install", 4001: "network_connection"}.get(
        uid, "process_creation")


def _auth(doc: Doc) -> Doc:
    uid, activity = doc.get("class_uid"), doc.get("activity_id")
    code = _obj(doc.get("metadata")).get("event_code")
    data: Doc = {}
    if code in AUTH_TYPES and w.AUTH_CLASS[code][0] == uid:
        data["event_type"] = code
    else:
        data["event_type"] = _auth_type(uid, activity, doc.get("status_id"))
    _set(data, "result", {1: "success", 2: "failure"}.get(_key(doc.get("status_id"))))
    if doc.get("status_detail") in FAILURE_REASONS:
        data["failure_reason"] = doc["status_detail"]
    if isinstance(doc.get("user"), dict):
        data["user"] = read_user(doc["user"])
    request = _obj(doc.get("http_request"))
    source: Doc = {}
    if isinstance(doc.get("src_endpoint"), dict):
        ep = doc["src_endpoint"]
        source = {k: v for k, v in read_endpoint(ep).items() if k in ("ip", "hostname", "geo")}
        _set(source, "device_type", DEVICE_TYPE_BACK.get(_key(ep.get("type_id"))) if "type_id" in ep else None)
    _set(source, "user_agent", request.get("user_agent"))
    if source or isinstance(doc.get("src_endpoint"), dict):
        data["source"] = source
    if uid == 3002:
        service, dst = doc.get("service"), _obj(doc.get("dst_endpoint"))
        target: Doc = {}
        if isinstance(service, dict):
            target = {"type": "application", "name": service.get("name")}
        elif dst.get("hostname") is not None:
            target = {"type": "host", "name": dst["hostname"]}
        _set(target, "ip", dst.get("ip"))
        _set(target, "url", _obj(request.get("url")).get("url_string"))
        if target:
            data["target"] = target
        protocol = doc.get("auth_protocol_id")
        if protocol == 6:
            data["auth_method"] = "oauth"
        elif doc.get("auth_protocol") in AUTH_METHODS:
            data["auth_method"] = doc["auth_protocol"]
        _set(data, "mfa_used", doc.get("is_mfa"))
        _set(data, "session_id", _obj(doc.get("session")).get("uid"))
        _set(data, "logon_type", LOGON_TYPE_BACK.get(_key(doc.get("logon_type_id"))))
    _set(data, "attempt_count", _count(doc.get("count")))
    factor = _first(doc.get("auth_factors"))
    _set(data, "mfa_method", MFA_FACTOR_BACK.get(_key(factor.get("factor_type_id"))))
    risk = doc.get("risk_score")
    if isinstance(risk, (int, float)) and not isinstance(risk, bool) and 0 <= risk <= 100:
        data["risk_score"] = risk / 100
    return _envelope(doc, "auth_event", data)


def _auth_type(uid: Any, activity: Any, status: Any) -> str:
    if uid == 3001:
        return {3: "password_change", 4: "password_change", 9: "account_locked", 12: "account_unlocked"}.get(
            _key(activity), "password_change")
    if activity == 2:
        return "logout"
    if activity == 7:
        return "privilege_escalation"
    return "login_failure" if status == 2 else "login_success"


READERS: dict[int, Callable[[Doc], Doc]] = {
    2004: _alert, 5021: _threat_intel, 2002: _vulnerability, 2005: _incident,
    4001: _network, 4002: _network, 4003: _network, 4005: _network, 4007: _network, 4008: _network,
    1001: _endpoint, 1002: _endpoint, 1005: _endpoint, 1007: _endpoint, 5001: _endpoint,
    201001: _endpoint, 201002: _endpoint, 201004: _endpoint,
    3001: _auth, 3002: _auth,
}


_ABSENT = object()


def from_ocsf(doc: Any, *, lenient: bool = False) -> Doc:
    """One WIA event dict for one OCSF event of a class this project maps (ConversionError otherwise)."""
    if not isinstance(doc, dict):
        raise ConversionError("ocsf", "an OCSF event must be a JSON object")
    uid = doc.get("class_uid")
    read = READERS.get(uid) if type(uid) is int else None
    if read is None:
        raise ConversionError("ocsf", f"class_uid {uid!r:.40} has no WIA mapping (supported: "
                              f"{', '.join(str(u) for u in sorted(READERS))})", path="/class_uid")
    event = read(doc)
    patch = _obj(doc.get("unmapped")).get("wia")
    if patch is not None and type(patch) is not dict:
        # `unmapped.wia` is this project's patch, always an object: anything else was not written here
        raise ConversionError("ocsf", f"the `unmapped.wia` patch must be a JSON object, not {patch!r:.60}",
                              path="/unmapped/wia")
    if patch:
        if "type" in patch and patch["type"] != event["type"]:
            # The class (and for 4001 its event_code) decides the type, as every OCSF consumer reads it; the
            # writer never patches it. Another type here would give an event OCSF tools see as something else,
            # its attributes read for the class and the rest filled with the other type's defaults.
            raise ConversionError("ocsf", f"the `unmapped.wia` patch sets `type` to {patch['type']!r:.40}, but this "
                                  f"OCSF event's class (class_uid {uid}) makes it {event['type']!r}: the class decides "
                                  f"the type (the patch holds only what the OCSF attributes cannot give back)",
                                  path="/unmapped/wia/type")
        patched = _obj(patch.get("data")).get("event_type", _ABSENT)
        read_kind = _obj(event.get("data")).get("event_type", _ABSENT)
        if patched is not _ABSENT and read_kind is not _ABSENT and patched != read_kind:
            # The same for the sub-type of network, endpoint and auth events: the class (with its activity,
            # status and event_code) gives it exactly, so the writer never patches it.
            raise ConversionError("ocsf", f"the `unmapped.wia` patch sets `data.event_type` to {patched!r:.40}, but this "
                                  f"OCSF event's class (class_uid {uid}, with its activity, status or event_code) makes it "
                                  f"{read_kind!r}: they decide "
                                  f"the event type (the patch holds only what the OCSF attributes cannot give back)",
                                  path="/unmapped/wia/data/event_type")
        merge(event, patch)             # this project's own event: the patch makes it exact
        try:
            event = _complete(event, doc)
        except (AttributeError, TypeError, KeyError) as exc:     # a patch this project did not write
            raise ConversionError("ocsf", f"the `unmapped.wia` patch does not give a WIA event ({type(exc).__name__}: "
                                  f"{exc})", path="/unmapped/wia") from exc
        return checked(event, "ocsf", lambda pointer: _in_patch(patch, pointer),
                       "the event this OCSF event and its `unmapped.wia` patch give", lenient=lenient)
    return _foreign(_complete(event, doc), doc)


def _in_patch(patch: Doc, pointer: str) -> str:
    """The JSON pointer in the document of the patch member that set the event's value at `pointer`
    (the patch has the event's shape; list elements are patched by index, "0", "1", ...), or of the
    patch itself when the value came from the OCSF attributes."""
    node: Any = patch
    for part in pointer.split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        if type(node) is not dict or key not in node:
            return "/unmapped/wia"
        node = node[key]
    return "/unmapped/wia" + pointer


def _foreign(event: Doc, doc: Doc) -> Doc:
    """An OCSF event another product wrote (no `unmapped.wia`), read as the other readers read foreign
    documents: date-times in WIA's spelling; a value WIA's schema refuses is left out of its WIA field
    (a required one gets its documented default); and every part of the OCSF event that the WIA event
    does not give back is kept as it came in `meta.custom.ocsf`, so nothing the producer sent is lost."""
    _canonical_times(event)
    _scrub(event, doc)
    try:
        rewritten: Any = w.to_ocsf(event, unmapped=False)
    except ConversionError:             # not expected for a valid event; then keep everything
        rewritten = {}
    kept = _unread(doc, rewritten)
    if kept is not _SAME:
        event.setdefault("meta", {}).setdefault("custom", {})["ocsf"] = copy.deepcopy(kept)
    return event


def _canonical_times(node: Any) -> None:
    """Every WIA date-time in the event as WIA writes them (UTC, milliseconds, "Z")."""
    if type(node) is dict:
        for key, value in node.items():
            kind = type(value)
            if kind is str:
                if key in TIME_KEYS:
                    node[key] = utc_ms(value) or value      # no RFC 3339 time: left to `_scrub`
            elif (kind is dict or kind is list) and key != "custom":
                _canonical_times(value)
    else:
        for item in node:
            if type(item) is dict or type(item) is list:
                _canonical_times(item)


#: top-level members of a WIA event that `_scrub` never removes (`_complete` fills them)
_KEEP = frozenset({"", "/data", "/source", "/id", "/type", "/timestamp", "/severity", "/version"})


def _scrub(event: Doc, doc: Doc) -> None:
    """Leave out every value of a foreign event that WIA's schema refuses (a number where WIA wants a
    string, an out-of-range count, an indicator without a value, ...): the attribute it came from is
    then not given back by the WIA event, so `_unread` keeps it in `meta.custom.ocsf`."""
    for _ in range(32):
        errors = validate_event(event, warnings=False).errors
        if not errors:
            return
        targets: list[tuple[Any, Any]] = []
        for issue in errors:
            pointer = issue.path.rsplit("/", 1)[0] if issue.code == "required" else issue.path
            if pointer in _KEEP:
                raise ConversionError("ocsf", f"the WIA event read from this OCSF event is not valid at "
                                      f"{issue.path}: {issue.message}")
            parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
            parent: Any = event
            for part in parts[:-1]:
                parent = parent[int(part)] if isinstance(parent, list) else parent[part]
            targets.append((parent, int(parts[-1]) if isinstance(parent, list) else parts[-1]))
        by_list: dict[int, tuple[list[Any], set[int]]] = {}
        for parent, key in targets:
            if isinstance(parent, list):
                by_list.setdefault(id(parent), (parent, set()))[1].add(key)
            else:
                parent.pop(key, None)
        for items, indexes in by_list.values():
            for i in sorted(indexes, reverse=True):
                del items[i]
        _complete(event, doc)
    raise ConversionError("ocsf", "the WIA event read from this OCSF event could not be made valid")


_SAME = object()


def _unread(original: Any, rewritten: Any) -> Any:
    """The part of `original` (the foreign OCSF event) that `rewritten` (the WIA event written back as
    OCSF) does not hold equal: objects key by key, lists of objects element by element (`{}` where an
    element came back whole, so the others keep their positions), anything else whole. `_SAME` when
    nothing is left."""
    if original == rewritten:
        return _SAME
    if type(original) is dict and type(rewritten) is dict:
        out = {}
        for key, value in original.items():
            rest = _unread(value, rewritten.get(key, _SAME)) if key in rewritten else value
            if rest is not _SAME:
                out[key] = rest
        return out if out else _SAME
    if type(original) is list and type(rewritten) is list and len(original) == len(rewritten) and \
            all(type(v) is dict for v in original) and all(type(v) is dict for v in rewritten):
        items = [_unread(a, b) for a, b in zip(original, rewritten)]
        if all(item is _SAME for item in items):
            return _SAME
        return [{} if item is _SAME else item for item in items]
    return original


def _complete(event: Doc, doc: Doc) -> Doc:
    """Defaults for WIA fields that are required but that this OCSF event does not carry (documented)."""
    if "id" not in event:
        metadata = _obj(doc.get("metadata"))
        seed = metadata.get("uid") or f"{doc.get('class_uid')}:{doc.get('time')}:{doc.get('message')}"
        event["id"] = str(uuid.uuid5(UUID_NAMESPACE, str(seed)))
    if "timestamp" not in event:
        where = "/time_dt" if "time_dt" in doc and "time" not in doc else "/time"
        raise ConversionError("ocsf", f"the OCSF event has no usable `time` (epoch milliseconds) or `time_dt` "
                              f"(RFC 3339): {doc.get(where[1:])!r:.60}", path=where)
    source = event.setdefault("source", {})
    source.setdefault("type", "custom")
    source.setdefault("name", "ocsf")
    data = event.setdefault("data", {})
    etype = event["type"]
    severity = event["severity"]
    if etype == "alert":
        data.setdefault("alert_id", event["id"])
        data.setdefault("title", _text(doc.get("message")) or "Detection Finding")
        data.setdefault("category", "other")
        data.setdefault("status", "new")
        data.setdefault("priority", BAND_PRIORITY.get(band(severity), "medium"))
    elif etype == "incident":
        data.setdefault("incident_id", event["id"])
        data.setdefault("title", _text(doc.get("message")) or "Incident Finding")
        data.setdefault("category", "other")
        data.setdefault("status", "new")
        priority = BAND_PRIORITY.get(band(severity), "medium")
        data.setdefault("priority", "low" if priority == "info" else priority)
    elif etype == "threat_intel":
        data.setdefault("threat_type", "malware")
        data.setdefault("threat_name", _text(doc.get("message")) or "unknown")
        data.setdefault("status", "unknown")
    elif etype == "vulnerability":
        if "vuln_id" not in data:
            raise ConversionError("ocsf", "a WIA vulnerability needs a CVE id (vulnerabilities[0].cve.uid)",
                                  path="/vulnerabilities/0/cve/uid")
        data.setdefault("title", data["vuln_id"])
        cvss = data.setdefault("cvss", {"version": "3.1", "score": 0, "severity": "none"})
        if cvss.get("version") not in CVSS_VERSIONS:
            cvss["version"] = "3.1"
        if not isinstance(cvss.get("score"), (int, float)):
            cvss["score"] = 0
        cvss.setdefault("severity", _cvss_severity(cvss["score"]))
    elif etype == "network_event":
        data.setdefault("protocol", "TCP")
        if data["protocol"] not in PROTOCOLS:
            data["protocol"] = "TCP"
        for side in ("source", "destination"):          # WIA requires both addresses: 0.0.0.0 = unspecified
            data.setdefault(side, {}).setdefault("ip", UNSPECIFIED_IP)
    elif etype == "endpoint_event":
        data.setdefault("host", {}).setdefault("hostname", _text(_obj(doc.get("device")).get("name")) or "unknown")
    elif etype == "auth_event":
        data.setdefault("result", "failure" if data["event_type"].endswith("failure") else "success")
        user = data.setdefault("user", {})
        user.setdefault("name", "unknown")
        target = data.setdefault("target", {})
        target.setdefault("type", "application")
        target.setdefault("name", "unknown")
    return event
