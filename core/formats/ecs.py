"""Elastic Common Schema 9.4: one ECS document per WIA event, and back, without losing anything.

Spec: ECS 9.4.0 field reference (fields.csv / ecs_flat.yml): categorization fields from their
allowed values (event.kind / category / type / outcome), `threat.*` for ATT&CK, `threat.enrichments`
for indicators, and the network, process, file, registry, dll, user, host, vulnerability, rule and
observer field sets for the event-specific data.

The mapping is a table per event type of (WIA path, ECS field, to ECS, back to WIA). A WIA value is
taken by its ECS field only when converting back gives exactly the same value; otherwise (and for
every WIA field ECS has no field for) it stays under `wia.*`, the custom namespace this project
documents (ECS guidance: nest custom fields under a proper name that ECS will not use). So ECS -> WIA
restores the event exactly; fields that ECS expects but that only restate other values (host.name,
source.address, network.bytes, related.*, *.reference) are added on the way out and ignored on the way
back. Suggested Elasticsearch mapping for `wia`: `flattened`. The mapping table: docs/formats/ecs.md.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import timedelta, timezone
from functools import lru_cache
from typing import Any, Callable

from .._version import WIA_SCHEMA_URI, WIA_VERSION
from ..errors import ConversionError
from ..timeutil import at_own_offset, from_epoch_ms, parse_iso, to_iso
from ._own_event import checked, holds
from ._wia_paths import canonical_times, clean, ip_version, is_int, is_number, merge, nonblank
from .base import Format, MemberOutcome, all_or_nothing, guarded_members, read_member

ECS_VERSION = "9.4.0"
CUSTOM_NAMESPACE = "wia"
ATTACK_URL = "https://attack.mitre.org"

Fn = Callable[[Any], Any]


def _same(v: Any) -> Any:
    return v


def _str(v: Any) -> Any:
    return v if isinstance(v, str) else None


def _ip(v: Any) -> Any:
    return v if ip_version(v) else None


def _ips(v: Any) -> Any:
    return list(v) if isinstance(v, list) and v and all(ip_version(i) for i in v) else None


def _int(v: Any) -> Any:
    return v if is_int(v) else None


def _num(v: Any) -> Any:
    return v if is_number(v) else None


def _bool(v: Any) -> Any:
    return v if isinstance(v, bool) else None


#: More than nine fraction digits, which Elasticsearch's default `date` format does not read.
_LONG_FRACTION = re.compile(r"\.[0-9]{10}").search


def _date(v: Any) -> Any:
    """A WIA date-time as an ECS `date` field, when Elasticsearch's default date format
    (strict_date_optional_time) reads it: not an RFC 3339 spelling it refuses, a lower-case `t` or `z`
    (elastic/elasticsearch#77432: mapper_parsing_exception) or more than nine fraction digits. Those
    stay in `wia.*` (and @timestamp is written from them in UTC: `_timestamp`), as does one with the
    trailing newline the date-time format takes (`$`). Checked cheaply, for a valid date-time: no letter but
    T and Z can be in one, and with nine fraction digits or fewer it has at most 30 characters with `Z`, 35
    with an offset."""
    if not isinstance(v, str):
        return None
    return v if _readable(v) else None


def _readable(v: str) -> bool:
    """Whether strict_date_optional_time reads a valid WIA date-time `v` as it is (see `_date`). An offset
    beyond 18:00 is valid RFC 3339 (up to 23:59) but not a Java ZoneOffset, so Elasticsearch refuses it too
    (mapper_parsing_exception); in a valid time the offset is the last six characters."""
    return ('t' not in v and 'z' not in v and v[-1:] != "\n" and (len(v) <= 30 or not _LONG_FRACTION(v))
            and (v[-6:-5] not in "+-" or v[-5:-3] < "18" or v[-5:] == "18:00"))


def _utc(v: str) -> str:
    """A date-time `_date` refuses as the same instant in UTC with milliseconds (as it is if no time)."""
    try:
        return to_iso(parse_iso(v))
    except ValueError:
        return v
    except OverflowError:
        # in UTC before year 1 or after 9999 (9999-12-31t23:30:00-01:00): the same instant at its own offset,
        # spelled as Elasticsearch reads it (which takes years past 9999 in UTC)
        kept = at_own_offset(v)
        if _readable(kept):
            return kept
        # and an offset beyond 18:00, which Elasticsearch does not read: the same instant at 18:00 if that
        # still has a four-digit year, else nothing Elasticsearch reads spells it
        moment = parse_iso(v)
        offset = moment.utcoffset() or timedelta(0)
        at_18 = timedelta(hours=18 if offset > timedelta(0) else -18)
        try:        # not astimezone: it goes through UTC, which is what has no spelling
            return (moment.replace(tzinfo=None) + (at_18 - offset)).replace(tzinfo=timezone(at_18)).isoformat()
        except OverflowError:
            raise ConversionError("ecs", f"{v!r} is valid RFC 3339, but Elasticsearch reads neither its offset "
                                  "(beyond 18:00) nor its instant in UTC (outside the years 0001-9999)",
                                  path="/timestamp") from None


def _timestamp(v: Any) -> Any:
    """@timestamp, which ECS requires: the event's time, or, when Elasticsearch would refuse it as it is
    (`_date`), the same instant in UTC; the way back then does not give the time as written, so that
    stays in wia.timestamp too."""
    if not isinstance(v, str):
        return None
    return v if _readable(v) else _utc(v)


def _strs(v: Any) -> Any:
    return list(v) if isinstance(v, list) and all(isinstance(i, str) for i in v) else None


def _labels(v: Any) -> Any:
    return _copy(v) if isinstance(v, dict) else None        # a copy all the way down: never the event's own values


def _one(v: Any) -> Any:
    return [v] if isinstance(v, str) else None


def _first(v: Any) -> Any:
    return v[0] if isinstance(v, list) and len(v) == 1 else None


def _lower(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else None


def _upper(v: Any) -> Any:
    return v.upper() if isinstance(v, str) else None


def _split(path: str) -> tuple[list[str], list[str]]:
    """"a.b[].c" -> (["a", "b"], ["c"]); no list -> (parts, [])."""
    if "[]" in path:
        head, _, tail = path.partition("[]")
        return head.split("."), [p for p in tail.strip(".").split(".") if p]
    return path.split("."), []


@dataclass(frozen=True, slots=True)
class Rule:
    """WIA path (dotted; `[]` marks the list being walked) <-> ECS field (dotted; `[]` likewise)."""

    wia: str
    ecs: str
    out: Fn = _same
    back: Fn = _same
    # the paths split once: (head, tail) where tail is the part after "[]" (empty when no list)
    wia_head: tuple[str, ...] = ()
    wia_tail: tuple[str, ...] = ()
    ecs_head: tuple[str, ...] = ()
    ecs_tail: tuple[str, ...] = ()
    listed: bool = False
    geo: bool = False


def R(wia: str, ecs: str, out: Fn = _same, back: Fn = _same) -> Rule:
    wh, wt = _split(wia)
    eh, et = _split(ecs)
    return Rule(wia, ecs, out, back, tuple(wh), tuple(wt), tuple(eh), tuple(et), "[]" in wia,
                ecs.endswith((".location.lat", ".location.lon")))


def _hash_rules(wia: str, ecs: str) -> list[Rule]:
    return [R(f"{wia}.{h}", f"{ecs}.{h}", _str) for h in ("md5", "sha1", "sha256")]


def _geo_rules(wia: str, ecs: str) -> list[Rule]:
    return [R(f"{wia}.country", f"{ecs}.geo.country_iso_code", _str), R(f"{wia}.country_name", f"{ecs}.geo.country_name", _str),
            R(f"{wia}.city", f"{ecs}.geo.city_name", _str), R(f"{wia}.latitude", f"{ecs}.geo.location.lat", _num),
            R(f"{wia}.longitude", f"{ecs}.geo.location.lon", _num), R(f"{wia}.asn", f"{ecs}.as.number", _int),
            R(f"{wia}.org", f"{ecs}.as.organization.name", _str)]


def _endpoint_rules(wia: str, ecs: str) -> list[Rule]:
    return [R(f"{wia}.ip", f"{ecs}.ip", _ip), R(f"{wia}.port", f"{ecs}.port", _int),
            R(f"{wia}.hostname", f"{ecs}.domain", _str)]


_DURATION_NS = (lambda v: v * 1_000_000 if is_int(v) else None, lambda v: v // 1_000_000 if is_int(v) else None)
_TLS_VERSION = (lambda v: v[4:] if isinstance(v, str) and v.startswith("TLS ") else None,
                lambda v: f"TLS {v}" if isinstance(v, str) else None)

ENVELOPE = [
    R("id", "event.id", _str), R("timestamp", "@timestamp", _timestamp), R("severity", "event.risk_score", _num),
    R("source.type", "observer.type", _str), R("source.name", "observer.product", _str),
    R("source.vendor", "observer.vendor", _str), R("source.version", "observer.version", _str),
    R("meta.raw", "event.original", _str), R("meta.tags", "tags", _strs), R("meta.labels", "labels", _labels),
]
MITRE = [
    R("mitre.tactic", "threat.tactic.id", _one, _first), R("mitre.tactic_name", "threat.tactic.name", _one, _first),
    R("mitre.technique", "threat.technique.id", _one, _first),
    R("mitre.technique_name", "threat.technique.name", _one, _first),
    R("mitre.sub_technique", "threat.technique.subtechnique.id", _one, _first),
    R("mitre.sub_technique_name", "threat.technique.subtechnique.name", _one, _first),
]
CONTEXT = [
    R("context.host.hostname", "host.hostname", _str), R("context.host.ip", "host.ip", _ips),
    R("context.host.mac", "host.mac", _strs), R("context.host.os.name", "host.os.name", _str),
    R("context.host.os.version", "host.os.version", _str),
    *_endpoint_rules("context.network.source", "source"), *_endpoint_rules("context.network.destination", "destination"),
    R("context.network.protocol", "network.protocol", _lower, _same),
    R("context.network.direction", "network.direction", _str),
    R("context.user.name", "user.name", _str), R("context.user.domain", "user.domain", _str),
    R("context.user.email", "user.email", _str), R("context.user.employee_id", "user.id", _str),
    R("context.cloud.provider", "cloud.provider", _str), R("context.cloud.account_id", "cloud.account.id", _str),
    R("context.cloud.region", "cloud.region", _str),
]
_INDICATOR = [R("value", "matched.atomic", _str), R("context", "indicator.description", _str),
              R("first_seen", "indicator.first_seen", _date), R("last_seen", "indicator.last_seen", _date)]

TYPE_RULES: dict[str, list[Rule]] = {
    "alert": [
        R("data.title", "message", _str), R("data.description", "event.reason", _str),
        R("data.detection_rule.id", "rule.id", _str), R("data.detection_rule.name", "rule.name", _str),
        R("data.detection_rule.version", "rule.version", _str),
        R("data.first_seen", "event.start", _date), R("data.last_seen", "event.end", _date),
        *[R(f"data.indicators[].{r.wia}", f"threat.enrichments[].{r.ecs}", r.out, r.back) for r in _INDICATOR],
    ],
    "incident": [
        R("data.title", "message", _str), R("data.description", "event.reason", _str),
        R("data.created_at", "event.start", _date), R("data.closed_at", "event.end", _date),
        R("data.iocs[].value", "threat.enrichments[].matched.atomic", _str),
        R("data.iocs[].description", "threat.enrichments[].indicator.description", _str),
        R("data.iocs[].first_seen", "threat.enrichments[].indicator.first_seen", _date),
    ],
    "threat_intel": [
        R("data.threat_name", "message", _str), R("data.threat_family", "threat.software.name", _str),
        R("data.first_seen", "event.start", _date), R("data.last_seen", "event.end", _date),
        R("data.indicators[].value", "threat.enrichments[].matched.atomic", _str),
        R("data.indicators[].context.description", "threat.enrichments[].indicator.description", _str),
        R("data.indicators[].first_seen", "threat.enrichments[].indicator.first_seen", _date),
        R("data.indicators[].last_seen", "threat.enrichments[].indicator.last_seen", _date),
    ],
    "vulnerability": [
        R("data.vuln_id", "vulnerability.id", _str), R("data.title", "message", _str),
        R("data.description", "vulnerability.description", _str),
        R("data.cvss.score", "vulnerability.score.base", _num), R("data.cvss.version", "vulnerability.score.version", _str),
        R("data.cvss.temporal_score", "vulnerability.score.temporal", _num),
        R("data.cvss.environmental_score", "vulnerability.score.environmental", _num),
        R("data.cvss.severity", "vulnerability.severity", _str), R("data.references", "vulnerability.reference", _strs),
    ],
    "network_event": [
        R("data.action", "event.action", _str), R("data.protocol", "network.transport", _lower, _upper),
        R("data.direction", "network.direction", _str),
        *_endpoint_rules("data.source", "source"), R("data.source.mac", "source.mac", _str), *_geo_rules("data.source.geo", "source"),
        *_endpoint_rules("data.destination", "destination"), R("data.destination.mac", "destination.mac", _str),
        *_geo_rules("data.destination.geo", "destination"),
        R("data.bytes_sent", "source.bytes", _int), R("data.bytes_received", "destination.bytes", _int),
        R("data.packets_sent", "source.packets", _int), R("data.packets_received", "destination.packets", _int),
        R("data.duration_ms", "event.duration", *_DURATION_NS), R("data.rule_matched", "rule.name", _str),
        R("data.application", "network.application", _str), R("data.url", "url.original", _str),
        R("data.http.method", "http.request.method", _str), R("data.http.status_code", "http.response.status_code", _int),
        R("data.http.user_agent", "user_agent.original", _str), R("data.http.referer", "http.request.referrer", _str),
        R("data.http.content_type", "http.response.mime_type", _str),
        R("data.dns.query", "dns.question.name", _str), R("data.dns.query_type", "dns.question.type", _str),
        R("data.dns.response_code", "dns.response_code", _str),
        R("data.dns.response", "dns.answers", lambda v: [{"data": a} for a in v] if _strs(v) else None,
          lambda v: [a.get("data") for a in v] if isinstance(v, list) else None),
        R("data.tls.version", "tls.version", *_TLS_VERSION), R("data.tls.cipher", "tls.cipher", _str),
        R("data.tls.sni", "tls.client.server_name", _str),
        R("data.tls.certificate.issuer", "tls.server.issuer", _str), R("data.tls.certificate.subject", "tls.server.subject", _str),
        R("data.tls.certificate.not_before", "tls.server.not_before", _date),
        R("data.tls.certificate.not_after", "tls.server.not_after", _date),
        R("data.tls.certificate.fingerprint_sha256", "tls.server.hash.sha256", _str),
    ],
    "endpoint_event": [
        R("data.event_type", "event.action", _str),
        R("data.host.hostname", "host.hostname", _str), R("data.host.ip", "host.ip", _ips), R("data.host.mac", "host.mac", _strs),
        R("data.host.os.name", "host.os.name", _str), R("data.host.os.version", "host.os.version", _str),
        R("data.host.domain", "host.domain", _str), R("data.host.agent_id", "agent.id", _str),
        R("data.process.pid", "process.pid", _int), R("data.process.name", "process.name", _str),
        R("data.process.path", "process.executable", _str), R("data.process.command_line", "process.command_line", _str),
        R("data.process.user", "process.user.name", _str), R("data.process.start_time", "process.start", _date),
        *_hash_rules("data.process.hash", "process.hash"),
        R("data.process.signature.signed", "process.code_signature.exists", _bool),
        R("data.process.signature.valid", "process.code_signature.trusted", _bool),
        R("data.process.signature.subject", "process.code_signature.subject_name", _str),
        R("data.process.parent.pid", "process.parent.pid", _int), R("data.process.parent.name", "process.parent.name", _str),
        R("data.process.parent.path", "process.parent.executable", _str),
        R("data.process.parent.command_line", "process.parent.command_line", _str),
        R("data.file.path", "file.path", _str), R("data.file.name", "file.name", _str),
        R("data.file.extension", "file.extension", _str), R("data.file.size", "file.size", _int),
        *_hash_rules("data.file.hash", "file.hash"), R("data.file.created", "file.created", _date),
        R("data.file.modified", "file.mtime", _date), R("data.file.accessed", "file.accessed", _date),
        R("data.file.owner", "file.owner", _str),
        R("data.registry.value_name", "registry.value", _str),
        R("data.registry.value_data", "registry.data.strings", _one, _first),
        R("data.registry.value_type", "registry.data.type", _str),
        R("data.network_connection.protocol", "network.transport", _lower, _upper),
        R("data.network_connection.direction", "network.direction", _str),
        R("data.dll.path", "dll.path", _str), R("data.dll.name", "dll.name", _str), *_hash_rules("data.dll.hash", "dll.hash"),
        R("data.dll.signed", "dll.code_signature.exists", _bool),
    ],
    "auth_event": [
        R("data.event_type", "event.action", _str), R("data.result", "event.outcome", _str),
        R("data.failure_reason", "event.reason", _str),
        R("data.user.name", "user.name", _str), R("data.user.domain", "user.domain", _str),
        R("data.user.email", "user.email", _str), R("data.user.employee_id", "user.id", _str),
        R("data.user.groups", "user.group.name", _strs), R("data.user.roles", "user.roles", _strs),
        R("data.source.ip", "source.ip", _ip), R("data.source.hostname", "source.domain", _str),
        R("data.source.geo.country", "source.geo.country_iso_code", _str), R("data.source.geo.city", "source.geo.city_name", _str),
        R("data.source.user_agent", "user_agent.original", _str),
        R("data.target.name", "destination.address", _str), R("data.target.ip", "destination.ip", _ip),
        R("data.target.url", "url.original", _str),
    ],
}
#: network_connection sides depend on the direction: outbound local -> source, inbound local -> destination
_CONNECTION = {"outbound": [R("data.network_connection.local_ip", "source.ip", _ip), R("data.network_connection.local_port", "source.port", _int),
                            R("data.network_connection.remote_ip", "destination.ip", _ip),
                            R("data.network_connection.remote_port", "destination.port", _int)],
               "inbound": [R("data.network_connection.remote_ip", "source.ip", _ip), R("data.network_connection.remote_port", "source.port", _int),
                           R("data.network_connection.local_ip", "destination.ip", _ip),
                           R("data.network_connection.local_port", "destination.port", _int)]}

#: (category, type) per event; type values are from ECS's allowed values for that category
ENDPOINT_CATEGORIES = {
    "process_creation": (["process"], ["start"]), "process_termination": (["process"], ["end"]),
    "file_create": (["file"], ["creation"]), "file_modify": (["file"], ["change"]), "file_delete": (["file"], ["deletion"]),
    "registry_create": (["registry"], ["creation"]), "registry_modify": (["registry"], ["change"]),
    "registry_delete": (["registry"], ["deletion"]), "network_connection": (["network"], ["connection", "start"]),
    "dll_load": (["library"], ["start"]), "driver_load": (["driver"], ["start"]),
    "service_install": (["configuration"], ["creation"]),
}
AUTH_CATEGORIES = {
    "login_success": (["authentication"], ["start"]), "login_failure": (["authentication"], ["start"]),
    "mfa_success": (["authentication"], ["info"]), "mfa_failure": (["authentication"], ["info"]),
    "logout": (["authentication"], ["end"]), "password_change": (["iam"], ["change", "user"]),
    "account_locked": (["iam"], ["change", "user"]), "account_unlocked": (["iam"], ["change", "user"]),
    "privilege_escalation": (["iam"], ["admin", "change"]),
}
ALERT_CATEGORIES = {"malware": ["malware"], "intrusion": ["intrusion_detection"], "reconnaissance": ["intrusion_detection"],
                    "policy": ["intrusion_detection"], "other": ["intrusion_detection"]}
INCIDENT_CATEGORIES = {"malware": ["malware"], "ransomware": ["malware"]}       # others: intrusion_detection
#: the defaults of the tables above (copied into each document like the tables' own lists)
_INTRUSION, _HOST_INFO, _AUTHENTICATION_INFO = ["intrusion_detection"], (["host"], ["info"]), (["authentication"], ["info"])
APP_PROTOCOLS = {"dns", "http", "tls", "smtp", "ftp", "ssh", "rdp"}
#: WIA indicator type -> (ECS indicator type, the threat.*.indicator field that holds the value)
INDICATOR_FIELDS = {"domain": ("domain-name", "url.domain"), "url": ("url", "url.full"), "email": ("email-addr", "email.address"),
                    "file": ("file", "file.path"), "mutex": ("mutex", None), "registry": ("windows-registry-key", "registry.path"),
                    "file_hash_md5": ("file", "file.hash.md5"), "file_hash_sha1": ("file", "file.hash.sha1"),
                    "file_hash_sha256": ("file", "file.hash.sha256")}
_HASH_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_HIVES = {"HKEY_LOCAL_MACHINE": "HKLM", "HKEY_CURRENT_USER": "HKCU", "HKEY_USERS": "HKU", "HKEY_CLASSES_ROOT": "HKCR",
          "HKEY_CURRENT_CONFIG": "HKCC"}
_MISSING = object()


def _unique(values: list[Any]) -> list[Any]:
    """`values` without repeats, in order (most lists here have one or two values)."""
    if len(values) == 1:
        return values
    if len(values) == 2:
        return values if values[0] != values[1] else values[:1]
    return list(dict.fromkeys(values))


_DATASETS = {etype: f"wia.{etype}" for etype in TYPE_RULES}
_IP_TYPES = {4: "ipv4", 6: "ipv6"}
#: ECS fields that only EcsFormat._derived sets: no rule may map to them or below them (_check),
#: so they are stored without looking whether a rule set them first
_DERIVED_ONLY = ("ecs", "related", "client", "server", "event.kind", "event.category", "event.type", "event.module",
                 "event.dataset", "event.severity", "event.risk_score_norm", "event.provider", "host.name",
                 "network.bytes", "network.packets", "network.type", "dns.type", "dns.resolved_ip", "tls.version_protocol",
                 "url.full", "url.scheme", "url.domain", "url.port", "url.path", "url.query", "registry.hive",
                 "registry.path", "vulnerability.classification", "vulnerability.enumeration", "vulnerability.scanner",
                 "vulnerability.category")


def _get(doc: Any, parts: list[str]) -> Any:
    node = doc
    for p in parts:
        if not isinstance(node, dict) or p not in node:
            return _MISSING
        node = node[p]
    return node


def _set(doc: dict[str, Any], parts: list[str], value: Any) -> None:
    node = doc
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value


_NORMS: dict[float, float] = {}


def _risk_score_norm(severity: int | float) -> int | float:
    """round(severity * 10, 3). Rounding a float to digits is slow and a stream has few distinct
    severities, so non-zero floats are remembered (not 0.0: it equals -0.0, which stays -0.0)."""
    if severity.__class__ is not float or not severity:
        return round(severity * 10, 3)
    norm = _NORMS.get(severity)
    if norm is None:
        if len(_NORMS) >= 4096:
            _NORMS.clear()
        norm = _NORMS[severity] = round(severity * 10, 3)
    return norm


_SEVERITY_FIELDS: dict[float, tuple[int, int | float]] = {}


def _severity_fields(severity: float) -> tuple[int, int | float]:
    """(event.severity, event.risk_score_norm) of a non-zero float severity, remembered like
    _risk_score_norm's (a stream has few distinct severities; rounding is slow). NaN and infinities
    raise here, as `int(round(...))` does, and are never stored."""
    fields = (int(round(severity)), _risk_score_norm(severity))
    if len(_SEVERITY_FIELDS) >= 4096:
        _SEVERITY_FIELDS.clear()
    _SEVERITY_FIELDS[severity] = fields
    return fields


_PARTS: dict[str, list[str]] = {}       # dotted field -> its parts (the fields are the constants of this module)


def _setdefault(doc: dict[str, Any], dotted: str, value: Any) -> None:
    """`value` at the dotted field unless it is empty or the field is set; missing dicts on the way
    are made."""
    if value is None or value == [] or value == "":
        return
    parts = _PARTS.get(dotted)
    if parts is None:
        parts = _PARTS[dotted] = dotted.split(".")
    node = doc
    for i in range(len(parts) - 1):
        child = node.get(parts[i], _MISSING)
        if child is _MISSING:           # the field is missing too: make the rest of the way
            for p in parts[i:-1]:
                child = node[p] = {}
                node = child
            break
        if child.__class__ is not dict:         # not made here (never in practice): the general way
            if _get(doc, parts) is _MISSING:
                _set(doc, parts, value)
            return
        node = child
    if parts[-1] not in node:
        node[parts[-1]] = value


#: ATT&CK id -> its page (threat.*.reference). A stream repeats few ids; an f-string per id and event was
#: 2% of a conversion's instructions. Each dict is bounded like the other caches here.
_TACTIC_URLS: dict[str, str] = {}
_TECHNIQUE_URLS: dict[str, str] = {}
_SUBTECHNIQUE_URLS: dict[str, str] = {}


def _references(ids: list[Any], urls: dict[str, str]) -> list[str]:
    """The ATT&CK URLs of `ids` (strings: one-element lists from `mitre.*` or the ids of data.ttps)."""
    out = []
    for i in ids:
        url = urls.get(i) if i.__class__ is str else None       # only exact strings are remembered
        if url is None:
            if urls is _SUBTECHNIQUE_URLS:
                url = f"{ATTACK_URL}/techniques/{i.replace('.', '/')}/"
            elif urls is _TACTIC_URLS:
                url = f"{ATTACK_URL}/tactics/{i}/"
            else:
                url = f"{ATTACK_URL}/techniques/{i}/"
            if i.__class__ is str:
                if len(urls) >= 4096:
                    urls.clear()
                urls[i] = url
        out.append(url)
    return out


_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://([^/?#:]*)(?::(\d+))?([^?#]*)(?:\?([^#]*))?")


@lru_cache(maxsize=None)
def rules_for(event_type: str, direction: str | None = None) -> tuple[Rule, ...]:
    """The rule table of one event type: its own rules first; a shared rule whose ECS field the type
    already uses is left out (the field has one owner, so the way back is unambiguous)."""
    own = list(TYPE_RULES.get(event_type, []))
    if event_type == "endpoint_event":
        own += _CONNECTION["inbound" if direction == "inbound" else "outbound"]
    shared = ENVELOPE + CONTEXT + (MITRE if event_type != "threat_intel" else [])
    # network.protocol of a network event restates data.event_type (see _derived), so no rule owns it there.
    taken = {r.ecs for r in own} | ({"network.protocol"} if event_type == "network_event" else set())
    owner_prefixes = {r.wia.split(".")[1] for r in own if r.wia.startswith("data.")}
    out = own[:]
    for rule in shared:
        if rule.ecs in taken:
            continue
        # The endpoint's own host block owns host.*; the auth event's user owns user.*.
        if event_type == "endpoint_event" and rule.wia.startswith("context.host."):
            continue
        if event_type == "auth_event" and rule.wia.startswith("context.user.") and "user" in owner_prefixes:
            continue
        taken.add(rule.ecs)
        out.append(rule)
    return tuple(out)


# -- the rule tables, compiled ----------------------------------------------------------------
# Interpreting a table per event (split paths walked in both documents, several calls per rule,
# ~50 rules) was most of the converter's time. So each table is compiled once, on first use, into
# two plain functions that do exactly what its rules say, in table order:
#   forward(event, doc)    WIA -> ECS; returns the `wia.*` leftover: every WIA dict a rule reads is
#                          copied when first reached and a value its ECS field takes is deleted from
#                          the copy; at the end the copies are put together (see _finish_lines);
#   backward(doc, event)   ECS -> WIA.
# Each dict on the way is looked up once per event; a rule is then one `.get`, a test and a store.
# A rule whose way back is the identity for every value it accepts (_INLINE) is a type test; any
# other rule calls its own `out` and `back` and compares, as the interpreter did. To read the code
# of one table: `print(wia_security.formats.ecs.compiled_source("alert"))`.

#: (out, back) -> (test of the WIA value `v`, the ECS value, when it is taken). Without a condition a
#: value is taken for sure, except a NaN number: not equal to itself, it stays in `wia.*` too. A
#: condition (on `v` and the ECS value `o`) is what `back(o) == v and type(back(o)) is type(v)` comes
#: to for the values the test accepts: a copied list or dict comes back equal, so only its type
#: decides. The tests are `isinstance` with the common exact types first (`v` is None when the field
#: is absent).
_INLINE: dict[tuple[Fn, Fn], tuple[str, str, str | None]] = {
    (_str, _same): ("v is not None and (v.__class__ is str or isinstance(v, str))", "v", None),
    (_date, _same): ("v is not None and (v.__class__ is str or isinstance(v, str))"
                     " and 't' not in v and 'z' not in v and v[-1:] != '\\n' and (len(v) <= 30 or not _LONG_FRACTION(v))"
                     " and (v[-6:-5] not in '+-' or v[-5:-3] < '18' or v[-5:] == '18:00')", "v", None),
    (_timestamp, _same): ("v is not None and (v.__class__ is str or isinstance(v, str))",
                          "v if 't' not in v and 'z' not in v and v[-1:] != '\\n' and (len(v) <= 30 or not _LONG_FRACTION(v))"
                          " and (v[-6:-5] not in '+-' or v[-5:-3] < '18' or v[-5:] == '18:00') else _utc(v)",
                          "o is v"),
    (_int, _same): ("v is not None and (v.__class__ is int or isinstance(v, int) and not isinstance(v, bool))", "v", None),
    (_num, _same): ("v is not None and (v.__class__ is float or v.__class__ is int"
                    " or isinstance(v, (int, float)) and not isinstance(v, bool))", "v", None),
    (_bool, _same): ("(v is True or v is False)", "v", None),
    (_ip, _same): ("v is not None and ip_version(v)", "v", None),
    (_one, _first): ("v is not None and (v.__class__ is str or isinstance(v, str))", "[v]", None),
    (_strs, _same): ("v is not None and isinstance(v, list)"
                     " and (_STR.issuperset(map(type, v)) or all(isinstance(i, str) for i in v))", "list(v)", "type(v) is list"),
    (_ips, _same): ("v is not None and isinstance(v, list) and v and all(map(ip_version, v))", "list(v)", "type(v) is list"),
    (_labels, _same): ("v is not None and isinstance(v, dict)", "_copy(v)", "type(v) is dict"),
    (_lower, _same): ("v is not None and isinstance(v, str)", "v.lower()", "type(v) is str and o == v"),
    (_lower, _upper): ("v is not None and isinstance(v, str)", "v.lower()", "type(v) is str and o.upper() == v"),
}
_STR = frozenset({str})


class _Each:
    """A node of the taken-paths tree: the list a `[]` rule walks; `tree` holds the element paths."""

    __slots__ = ("tree",)

    def __init__(self, tree: dict[str, Any]) -> None:
        self.tree = tree


@dataclass(frozen=True, slots=True)
class _Plan:
    """One compiled rule table."""

    forward: Callable[[dict[str, Any], dict[str, Any]], Any]
    backward: Callable[[dict[str, Any], dict[str, Any]], None]
    taken: dict[str, Any]          # the WIA paths of the rules: key -> rule number, subtree or _Each
    source: str


def _check(rules: tuple[Rule, ...]) -> None:
    """What the compiled code relies on: on each side a field has one rule and is not inside another
    rule's field, there is at most one `[]` list, and a null maps to nothing (it is never taken)."""
    for side in ("wia", "ecs"):
        names = [getattr(r, side).replace("[]", "") for r in rules]
        clash = {n for n in names if names.count(n) > 1} | {b for a in names for b in names if b.startswith(a + ".")}
        lists = {getattr(r, f"{side}_head") for r in rules if r.listed}
        if clash or len(lists) > 1 or any("[]" in getattr(r, side).partition("[]")[2] for r in rules):
            raise ValueError(f"ECS rule table: {side} fields {sorted(clash) or sorted(lists)} cannot be compiled")
    for r in rules:
        if r.out(None) is not None:
            raise ValueError(f"ECS rule {r.wia} -> {r.ecs}: a null must map to nothing")
        name = r.ecs.replace("[]", "")
        if any(name == f or name.startswith(f + ".") for f in _DERIVED_ONLY):
            raise ValueError(f"ECS rule {r.wia} -> {r.ecs}: the field is derived (_DERIVED_ONLY)")


class _Source:
    """Python source of one table's two functions: one variable per dict on the way."""

    def __init__(self) -> None:
        self.names: dict[tuple[str, tuple[str, ...]], str] = {}

    def var(self, side: str, parts: tuple[str, ...]) -> str:
        if not parts:
            return {"w": "event", "e": "doc", "l": "rest"}[side]
        key = (side, parts)
        if key not in self.names:
            name = "_".join([side, *(re.sub(r"[^0-9a-zA-Z]", "_", p) for p in parts)])
            while name in self.names.values():       # "a_b" and "a.b" would share one
                name += "_"
            self.names[key] = name
        return self.names[key]

    def nest(self, side: str, rules: list[tuple[tuple[str, ...], list[str]]]) -> list[str]:
        """Each rule's lines inside `if` blocks that look up its parent dicts. Rules stay in table
        order; consecutive rules share the blocks of their common parents (reopened when needed).
        Forward, the first block of a dict also copies it for the leftover (if that block's test
        fails, so do the others: they test the same dict)."""
        lines: list[str] = []
        open_: tuple[str, ...] = ()
        opened: set[tuple[str, ...]] = set()
        for parent, body in rules:
            common = 0
            while common < min(len(open_), len(parent)) and open_[common] == parent[common]:
                common += 1
            for k in range(common + 1, len(parent) + 1):
                var = self.var(side, parent[:k])
                lines += _indent([f"{var} = {self.var(side, parent[:k - 1])}.get({parent[k - 1]!r})",
                                  f"if {var} is not None and ({var}.__class__ is dict or isinstance({var}, dict)):"], k - 1)
                if side == "w" and parent[:k] not in opened:       # a reopened block finds it copied
                    opened.add(parent[:k])
                    rest = self.var("l", parent[:k])
                    lines += _indent([f"{rest} = {var}.copy() if {var}.__class__ is dict else dict({var})"], k)
            open_ = parent
            lines += _indent(body, len(parent))
        return lines

    def ensure(self, side: str, parts: tuple[str, ...], made: dict[str, None]) -> list[str]:
        """Lines creating the dict at `parts` (and its parents) unless an earlier rule did."""
        if not parts:
            return []
        var = self.var(side, parts)
        made.setdefault(var)
        inner = self.ensure(side, parts[:-1], made) + [f"{var} = {self.var(side, parts[:-1])}[{parts[-1]!r}] = {{}}"]
        return [f"if {var} is None:", *_indent(inner)]


def _indent(lines: list[str], depth: int = 1) -> list[str]:
    return ["    " * depth + line for line in lines]


def _item_read(parts: tuple[str, ...]) -> list[str]:
    """Lines reading `parts` below a list element `item` into `v` (None when absent)."""
    lines, node = [], "item"
    for p in parts:
        lines.append(f"v = {node}.get({p!r}) if isinstance({node}, dict) else None")
        node = "v"
    return lines


def _forward_rule(n: int, r: Rule, src: _Source, made: dict[str, None]) -> list[str]:
    """Rule `n` as forward code, inside the block of its parent dict (its path id is `n` too: a WIA
    path has one rule)."""
    inline = _INLINE.get((r.out, r.back))
    parent = src.var("w", r.wia_head[:-1])
    if r.listed:
        store = f"t{''.join(f'.setdefault({p!r}, {{}})' for p in r.ecs_tail[:-1])}[{r.ecs_tail[-1]!r}]"
        take = f"popped.add(({n}, i))"
    else:
        store = f"{src.var('e', r.ecs_head[:-1])}[{r.ecs_head[-1]!r}]"
        take = f"del {src.var('l', r.wia_head[:-1])}[{r.wia_head[-1]!r}]"
    ensure = [] if r.listed else src.ensure("e", r.ecs_head[:-1], made)
    if inline:
        test, value, taken_if = inline
        if taken_if is None:
            body = [*ensure, f"{store} = {value}"] + (["if v == v:", f"    {take}"] if r.out is _num else [take])
        else:
            body = [f"o = {value}", *ensure, f"{store} = o", f"if {taken_if}:", f"    {take}"]
    else:
        test = "v is not None"
        body = [f"o = out_{n}(v)", "if o is not None:",
                *_indent([*ensure, f"{store} = o", f"b = back_{n}(o)", "if b == v and type(b) is type(v):", f"    {take}"])]
    if r.geo:                                   # a geo_point needs both coordinates
        test += f" and is_number({parent}.get('latitude')) and is_number({parent}.get('longitude'))"
    rule = [f"if {test}:", *_indent(body)]
    if not r.listed:
        return [f"# {r.wia} -> {r.ecs}", f"v = {parent}.get({r.wia_head[-1]!r})", *rule]
    target = src.var("e", r.ecs_head)
    made.setdefault(target)
    return [f"# {r.wia} -> {r.ecs}", f"items = {parent}.get({r.wia_head[-1]!r})", "if isinstance(items, list):",
            *_indent([f"if {target} is None:",
                      *_indent([*src.ensure("e", r.ecs_head[:-1], made),
                                f"{target} = {src.var('e', r.ecs_head[:-1])}[{r.ecs_head[-1]!r}] = [{{}} for _ in items]"]),
                      f"for i, (item, t) in enumerate(zip(items, {target})):",
                      *_indent([*_item_read(r.wia_tail), *rule])])]


def _backward_rule(n: int, r: Rule, src: _Source, made: dict[str, None]) -> list[str]:
    """Rule `n` as backward code, inside the block of its parent ECS dict."""
    back = [] if r.back is _same else [f"v = back_{n}(v)", "if v is not None:"]
    parent = src.var("e", r.ecs_head[:-1])
    if not r.listed:
        store = [*src.ensure("w", r.wia_head[:-1], made), f"{src.var('w', r.wia_head[:-1])}[{r.wia_head[-1]!r}] = v"]
        return [f"# {r.ecs} -> {r.wia}", f"v = {parent}.get({r.ecs_head[-1]!r})", "if v is not None:",
                *_indent([*back, *_indent(store, 1 if back else 0)])]
    target = src.var("w", r.wia_head)
    made.setdefault(target)
    store = [f"t{''.join(f'.setdefault({p!r}, {{}})' for p in r.wia_tail[:-1])}[{r.wia_tail[-1]!r}] = v"]
    return [f"# {r.ecs} -> {r.wia}", f"items = {parent}.get({r.ecs_head[-1]!r})", "if isinstance(items, list):",
            *_indent([f"if {target} is None:",
                      *_indent([*src.ensure("w", r.wia_head[:-1], made),
                                f"{target} = {src.var('w', r.wia_head[:-1])}[{r.wia_head[-1]!r}] = [{{}} for _ in items]"]),
                      f"for item, t in zip(items, {target}):",
                      *_indent([*_item_read(r.ecs_tail), "if v is not None:", *_indent([*back, *_indent(store, 1 if back else 0)])])])]


def _finish_lines(src: _Source, parts: tuple[str, ...], taken: dict[str, Any], env: dict[str, Any]) -> list[str]:
    """Forward's last lines for the dict at `parts` and those below it (children first): its copy
    `rest` (what no rule took) gets copies of the containers no rule reads, the finished copies of
    its children (the `[]` list via `_rest`), and goes into its parent's copy; a dict the rules
    emptied is left out, one that was empty stays."""
    lines: list[str] = []
    for key, sub in taken.items():
        if sub.__class__ is dict:
            lines += _finish_lines(src, (*parts, key), sub, env)
    rest = src.var("l", parts)
    body: list[str] = []
    walked: dict[str, type] = {}             # key -> the type its value has when a rule walked it
    for key, sub in taken.items():
        if sub.__class__ is dict:
            walked[key] = dict
        elif sub.__class__ is _Each:
            walked[key] = list
            tree = f"each_{len(env)}"
            env[tree] = sub.tree
            body += [f"v = {rest}.get({key!r})", "if isinstance(v, list):",
                     f"    v = _rest_items(v, {tree}, popped)", "    if v is _MISSING:", f"        del {rest}[{key!r}]",
                     "    else:", f"        {rest}[{key!r}] = v"]
    skip = f"walked_{len(env)}"
    env[skip] = walked
    if walked:
        # Children: every value is looked at, in line (a call to _copy_unwalked per dict cost more
        # than the loop). A value whose class is exactly the type a rule walked is that walk's new
        # copy (a walked dict or `[]` list of the event is always replaced by one, or removed), so
        # only other containers are copied: what _copy_unwalked does, atoms ruled out first.
        copies = [f"for k, v in {rest}.items():",
                  f"    if v.__class__ not in _ATOMS and {skip}.get(k) is not v.__class__ and isinstance(v, (dict, list)):",
                  f"        {rest}[k] = _copy(v)"]
    else:                       # leaves: mostly strings and numbers, which the C-level test finds at once
        copies = [f"if not _ATOMS.issuperset(map(type, {rest}.values())):", f"    _copy_unwalked({rest}, {skip})"]
    if not parts:
        return [*lines, *body, *copies, "return rest or _MISSING"]
    parent = src.var("l", parts[:-1])
    # a dict the rules emptied needs no copying: the test for that comes first
    body += [f"if {rest}:", *_indent(copies), f"    {parent}[{parts[-1]!r}] = {rest}",
             f"elif {src.var('w', parts)}:", f"    del {parent}[{parts[-1]!r}]",
             "else:", f"    {parent}[{parts[-1]!r}] = {rest}"]
    return [*lines, f"if {rest} is not None:", *_indent(body)]


def _dict_paths(tree: dict[str, Any], parts: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    return [p for key, sub in tree.items() if sub.__class__ is dict for p in [(*parts, key), *_dict_paths(sub, (*parts, key))]]


def _compile(rules: tuple[Rule, ...]) -> _Plan:
    _check(rules)
    src = _Source()
    env: dict[str, Any] = {"ip_version": ip_version, "is_number": is_number, "_ATOMS": _ATOMS, "_MISSING": _MISSING,
                           "_LONG_FRACTION": _LONG_FRACTION, "_utc": _utc,
                           "_copy": _copy, "_STR": _STR, "_copy_unwalked": _copy_unwalked, "_rest_items": _rest_items}
    taken: dict[str, Any] = {}
    forward: list[tuple[tuple[str, ...], list[str]]] = []
    backward: list[tuple[tuple[str, ...], list[str]]] = []
    made_e: dict[str, None] = {}
    made_w: dict[str, None] = {}
    for n, r in enumerate(rules):
        env[f"out_{n}"], env[f"back_{n}"] = r.out, r.back
        node = taken
        for p in r.wia_head[:-1]:
            node = node.setdefault(p, {})
        if r.listed:
            node = node.setdefault(r.wia_head[-1], _Each({})).tree
            for p in r.wia_tail[:-1]:
                node = node.setdefault(p, {})
            node[r.wia_tail[-1]] = n
        else:
            node[r.wia_head[-1]] = n
        forward.append((r.wia_head[:-1], _forward_rule(n, r, src, made_e)))
        backward.append((r.ecs_head[:-1], _backward_rule(n, r, src, made_w)))
    fwd_body = src.nest("w", forward)             # first: it names the variables
    source = "\n".join([
        "def forward(event, doc):", *_indent([f"{v} = None" for v in made_e]),
        *_indent([f"{src.var('l', p)} = None" for p in _dict_paths(taken)]),
        *_indent(["rest = event.copy() if event.__class__ is dict else dict(event)",
                  "popped = set()" if any(r.listed for r in rules) else "popped = None"]),
        *_indent(fwd_body), *_indent(_finish_lines(src, (), taken, env)), "",
        "def backward(doc, event):", *_indent([f"{v} = None" for v in made_w]), *_indent(src.nest("e", backward)), ""])
    exec(compile(source, "<ecs rule table>", "exec"), env)
    return _Plan(env["forward"], env["backward"], taken, source)


_PLANS: dict[tuple[str, bool], _Plan] = {}


def plan_for(event_type: str, inbound: bool = False) -> _Plan:
    """The compiled `rules_for(event_type, direction)`; the direction matters only for endpoint events."""
    key = (event_type, inbound and event_type == "endpoint_event")
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _compile(rules_for(event_type, "inbound" if key[1] else None))
    return plan


def compiled_source(event_type: str, direction: str | None = None) -> str:
    """The Python source the rule table of `event_type` compiles to (for reading and debugging)."""
    return plan_for(event_type, direction == "inbound").source


def _copy(value: Any) -> Any:
    """A copy of a JSON value: dicts and lists are new, everything else is shared."""
    cls = value.__class__
    # most containers hold only strings and numbers: copied whole (the C-level test finds that at once)
    if cls is list and _ATOMS.issuperset(map(type, value)):
        return value[:]
    if cls is dict and _ATOMS.issuperset(map(type, value.values())):
        return value.copy()
    if isinstance(value, dict):
        out = dict(value)
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                out[k] = _copy(v)
        return out
    if isinstance(value, list):
        return [_copy(v) if isinstance(v, (dict, list)) else v for v in value]
    return value


_ATOMS = frozenset({str, int, float, bool, type(None)})


def _copy_unwalked(node: dict[str, Any], walked: dict[str, type]) -> None:
    """Copies of the containers in `node` (a copy itself) that no rule walked, in place."""
    for k, v in node.items():
        if isinstance(v, (dict, list)) and not isinstance(v, walked.get(k, ())):
            node[k] = _copy(v)


def _rest_items(items: list[Any], tree: dict[str, Any], popped: set[Any]) -> Any:
    """The leftover of a `[]` list (a copy): each element without what the rules took from it
    (`popped` holds (rule, index)); `{}` for an element they emptied, _MISSING if they emptied all."""
    if not items:
        return []
    rest = [_rest(item, tree, popped, i) if isinstance(item, dict) and item else _copy(item) for i, item in enumerate(items)]
    if all(item is _MISSING for item in rest):
        return _MISSING
    return [{} if item is _MISSING else item for item in rest]


def _rest(node: dict[str, Any], taken: dict[str, Any], popped: set[Any], index: int | None = None) -> Any:
    """A copy of `node` without the values the rules took, or _MISSING when nothing is left.

    `taken` is the tree of rule paths below `node`; `index` the position in the `[]` list being
    walked, if any. Dicts emptied by the rules disappear, dicts that were empty stay, and a list
    element emptied entirely leaves `{}` so that the others keep their positions.
    """
    out = dict(node)
    for k, v in node.items():
        sub = taken.get(k)
        if sub is None:                                     # no rule reads here or below
            if isinstance(v, (dict, list)):
                out[k] = _copy(v)
        elif sub.__class__ is int:                          # a rule's field
            if (sub if index is None else (sub, index)) in popped:
                del out[k]
            elif isinstance(v, (dict, list)):
                out[k] = _copy(v)
        elif sub.__class__ is dict and isinstance(v, dict) and v:
            rest = _rest(v, sub, popped, index)
            if rest is _MISSING:
                del out[k]
            else:
                out[k] = rest
        elif sub.__class__ is _Each and isinstance(v, list) and v:
            items = [_rest(item, sub.tree, popped, i) if isinstance(item, dict) and item else _copy(item)
                     for i, item in enumerate(v)]
            if any(item is not _MISSING for item in items):
                out[k] = [{} if item is _MISSING else item for item in items]
            else:
                del out[k]
        elif isinstance(v, (dict, list)):                   # not what the rules read: kept whole
            out[k] = _copy(v)
    return out or _MISSING


class EcsFormat(Format):
    name = "ecs"
    title = "Elastic Common Schema"
    spec_version = ECS_VERSION
    can_parse = True

    #: Every WIA field survives WIA -> ECS -> WIA (mapped fields exactly; the rest via `wia.*`).
    survives = ("*",)

    # -- WIA -> ECS ----------------------------------------------------------------------------
    def from_wia(self, event: dict[str, Any], **options: Any) -> dict[str, Any]:
        etype = event.get("type")
        if etype not in TYPE_RULES:
            raise ConversionError(self.name, f"no ECS mapping for event type {etype!r}", path="/type")
        data = event.get("data") or {}
        direction = (data.get("network_connection") or {}).get("direction")
        # the compiled table looked up directly; plan_for compiles it on first use
        plan = _PLANS.get((etype, direction == "inbound" and etype == "endpoint_event")) \
            or plan_for(etype, direction == "inbound")
        doc: dict[str, Any] = {}
        leftover = plan.forward(event, doc) if isinstance(event, dict) else copy.deepcopy(event)
        self._derived(event, etype, data, doc)
        if leftover and leftover is not _MISSING:
            doc[CUSTOM_NAMESPACE] = leftover
        return doc

    def _derived(self, event: dict[str, Any], etype: str, data: dict[str, Any], doc: dict[str, Any]) -> None:
        """ECS fields that restate WIA values (ignored on the way back). Like `_setdefault`, each is
        set only when it has a value and no rule set it; the ECS dicts here are all made by the rules
        (never a non-dict on the way), so `setdefault` on them does exactly that. Fields no rule can
        set (_DERIVED_ONLY, checked when a table compiles) are plainly stored.

        The steps run in a fixed order: it decides the key order of the document and, for a
        malformed event, which error is raised first."""
        severity = event.get("severity")
        kind, category, types, outcome = self._categorization(etype, data)
        doc["ecs"] = {"version": ECS_VERSION}
        ev = doc.get("event")
        if ev is None:
            ev = doc["event"] = {}
        ev["kind"] = kind
        ev["category"] = category
        ev["type"] = types
        if outcome is not None:
            ev.setdefault("outcome", outcome)
        ev["module"] = "wia"
        ev["dataset"] = _DATASETS[etype]
        if severity is not None:
            if severity.__class__ is int:               # int(round(n)) is n; round(n * 10, 3) is n * 10
                ev["severity"] = severity
                ev["risk_score_norm"] = severity * 10
            elif severity.__class__ is float and severity:
                fields = _SEVERITY_FIELDS.get(severity)
                if fields is None:
                    fields = _severity_fields(severity)
                ev["severity"], ev["risk_score_norm"] = fields
            elif is_number(severity):
                ev["severity"] = int(round(severity))
                ev["risk_score_norm"] = _risk_score_norm(severity)
        src = event.get("source") or {}
        provider = src.get("name")
        if isinstance(provider, str) and provider.strip():
            ev["provider"] = provider
        # host / endpoints
        host = doc.get("host")
        if host is not None:
            hostname = host.get("hostname")
            if isinstance(hostname, str) and hostname.strip():
                host["name"] = hostname
            host_os = host.get("os")
            os_name = host_os.get("name") if host_os else None
            if isinstance(os_name, str) and os_name.lower() in ("windows", "linux", "macos"):
                host_os.setdefault("type", os_name.lower())
        source, destination = doc.get("source"), doc.get("destination")
        for node in (source, destination):         # no rule makes client.* or server.* (_DERIVED_ONLY)
            if node is not None:
                address = node.get("ip") or node.get("domain")
                if address:                 # a string from the rules (_ip, _str): set unless empty
                    node.setdefault("address", address)
        if etype == "network_event":
            self._network(data, doc, source or {}, destination or {})
            doc.setdefault("message", self._summary(etype, data))
        elif etype == "endpoint_event":
            reg = data.get("registry") or {}
            if nonblank(reg.get("key")):
                self._registry(reg, doc)
            doc.setdefault("message", self._summary(etype, data))
        elif etype == "auth_event":
            self._url_parts(doc, (data.get("target") or {}).get("url"))
            doc.setdefault("message", self._summary(etype, data))
        elif etype == "vulnerability":
            node = doc.setdefault("vulnerability", {})
            node["classification"] = "CVSS"
            node["enumeration"] = "CVE"
            if nonblank(src.get("vendor")):
                node["scanner"] = {"vendor": src["vendor"]}
            cwe = [c for c in data.get("cwe") or [] if isinstance(c, str)]
            if cwe:
                node["category"] = cwe
        if etype == "threat_intel" or "threat" in doc:
            self._threat(etype, data, doc)
        self._related(doc, source, destination, host)

    def _network(self, data: dict[str, Any], doc: dict[str, Any], source: dict[str, Any], destination: dict[str, Any]) -> None:
        """The derived fields of a network event (network.*, dns.*, tls.*, url.*)."""
        sb, db = source.get("bytes"), destination.get("bytes")
        if is_int(sb) and is_int(db):
            doc.setdefault("network", {})["bytes"] = sb + db
        sp, dp = source.get("packets"), destination.get("packets")
        if is_int(sp) and is_int(dp):
            doc.setdefault("network", {})["packets"] = sp + dp
        if data.get("event_type") in APP_PROTOCOLS:
            doc.setdefault("network", {}).setdefault("protocol", data["event_type"])
        ipv = ip_version((data.get("source") or {}).get("ip"))
        if ipv:
            doc.setdefault("network", {})["type"] = _IP_TYPES[ipv]
        dns = data.get("dns") or {}
        if dns:
            node = doc.setdefault("dns", {})
            node["type"] = "answer" if dns.get("response") or dns.get("response_code") else "query"
            resolved = [a for a in dns.get("response") or [] if ip_version(a)]
            if resolved:
                node["resolved_ip"] = resolved
        tls = data.get("tls") or {}
        version = tls.get("version")
        if isinstance(version, str) and version.startswith("TLS "):
            doc.setdefault("tls", {})["version_protocol"] = "tls"
        self._url_parts(doc, data.get("url"))

    @staticmethod
    def _registry(reg: dict[str, Any], doc: dict[str, Any]) -> None:
        """registry.hive/key/path from the WIA key (HKEY_LOCAL_MACHINE\\Software\\... -> HKLM, Software\\...)."""
        node = doc.setdefault("registry", {})        # the path below is always set
        head, _, rest = reg["key"].partition("\\")
        hive = _HIVES.get(head.upper(), head.upper() if head.upper() in _HIVES.values() else None)
        if hive:
            node["hive"] = hive
            if rest:
                node.setdefault("key", rest)
        else:
            node.setdefault("key", reg["key"])
        value = reg.get("value_name")
        node["path"] = f"{reg['key']}\\{value}" if nonblank(value) else reg["key"]

    @staticmethod
    def _url_parts(doc: dict[str, Any], url: Any) -> None:
        if url is None or not nonblank(url):
            return
        m = _URL.match(url)
        if not m:
            return
        scheme, domain, port, path, query = m.groups()
        node = doc.get("url")               # made by the rules (url.original) or here
        if node is None:
            node = doc["url"] = {}
        node["full"] = url
        node["scheme"] = scheme
        if domain:
            node["domain"] = domain
        if port and (number := int(port)) <= 65535:
            node["port"] = number
        if path:
            node["path"] = path
        if query:
            node["query"] = query

    @staticmethod
    def _categorization(etype: str, data: dict[str, Any]) -> tuple[str, list[str], list[str], str | None]:
        """event.kind/category/type/outcome. The lists are new each time: a caller may change its
        document, and the tables' own lists must not change with it."""
        if etype == "alert":
            return "alert", [*ALERT_CATEGORIES.get(data.get("category"), _INTRUSION)], ["info"], None
        if etype == "incident":
            return "alert", [*INCIDENT_CATEGORIES.get(data.get("category"), _INTRUSION)], ["info"], None
        if etype == "threat_intel":
            return "enrichment", ["threat"], ["indicator"], None
        if etype == "vulnerability":
            return "state", ["vulnerability"], ["info"], None
        if etype == "network_event":
            types = ["connection", "protocol"] if data.get("event_type") in APP_PROTOCOLS else ["connection"]
            action = data.get("action")
            if action == "allowed":
                types.append("allowed")
            elif action in ("blocked", "dropped", "reset"):
                types.append("denied")
            outcome = None
            status = (data.get("http") or {}).get("status_code")
            if is_int(status):
                outcome = "failure" if status >= 400 else "success"
            elif (data.get("dns") or {}).get("response_code"):
                outcome = "success" if data["dns"]["response_code"] == "NOERROR" else "failure"
            return "event", ["network"], types, outcome
        if etype == "endpoint_event":
            category, types = ENDPOINT_CATEGORIES.get(data.get("event_type"), _HOST_INFO)
            return "event", [*category], [*types], None
        category, types = AUTH_CATEGORIES.get(data.get("event_type"), _AUTHENTICATION_INFO)
        return "event", [*category], [*types], None          # event.outcome comes from data.result (a mapped field)

    @staticmethod
    def _summary(etype: str, data: dict[str, Any]) -> str:
        if etype == "network_event":
            s, d = data.get("source") or {}, data.get("destination") or {}
            return f"{data.get('event_type')} {s.get('ip')} -> {d.get('ip')}" + (f" {data['action']}" if data.get("action") else "")
        if etype == "endpoint_event":
            return f"{data.get('event_type')} on {(data.get('host') or {}).get('hostname')}"
        return f"{data.get('event_type')} for {(data.get('user') or {}).get('name')} ({data.get('result')})"

    def _threat(self, etype: str, data: dict[str, Any], doc: dict[str, Any]) -> None:
        if etype == "threat_intel":
            ttps = [t for t in data.get("ttps") or [] if isinstance(t, dict)]
            if ttps:
                techniques = [t.get("technique") for t in ttps if nonblank(t.get("technique"))]
                parents = [t.split(".")[0] for t in techniques]
                subs = [t for t in techniques if "." in t]
                tactics = list(dict.fromkeys(t.get("tactic") for t in ttps if nonblank(t.get("tactic"))))
                _setdefault(doc, "threat.technique.id", list(dict.fromkeys(parents)))
                _setdefault(doc, "threat.technique.subtechnique.id", subs)
                _setdefault(doc, "threat.tactic.id", tactics)
            names = [n for n in data.get("aliases") or [] if isinstance(n, str)]
            if data.get("threat_type") == "apt":
                _setdefault(doc, "threat.group.name", _copy(data.get("threat_name")))      # any value: never the event's own
                _setdefault(doc, "threat.group.alias", names)
            elif data.get("threat_type") in ("malware", "ransomware", "botnet"):
                _setdefault(doc, "threat.software.type", "Malware")
                _setdefault(doc, "threat.software.alias", names)
            refs = [r for r in data.get("references") or [] if isinstance(r, str)]
            _setdefault(doc, "threat.software.reference", refs[0] if refs and "software" in doc.get("threat", {}) else None)
        threat = doc.get("threat")          # made by the rules or above: a dict
        if threat is None:
            return
        if "tactic" in threat or "technique" in threat:
            threat.setdefault("framework", "MITRE ATT&CK")
        tactic, technique = threat.get("tactic"), threat.get("technique")
        if tactic is not None:
            ids = tactic.get("id")
            if isinstance(ids, list) and "reference" not in tactic:
                tactic["reference"] = _references(ids, _TACTIC_URLS)
        if technique is not None:
            ids = technique.get("id")
            if isinstance(ids, list):
                if "reference" not in technique:
                    technique["reference"] = _references(ids, _TECHNIQUE_URLS)
                sub = technique.get("subtechnique")
                if sub is not None:
                    ids = sub.get("id")
                    if isinstance(ids, list) and "reference" not in sub:
                        sub["reference"] = _references(ids, _SUBTECHNIQUE_URLS)
        source = "indicators" if etype in ("alert", "threat_intel") else "iocs" if etype == "incident" else None
        enrichments = threat.get("enrichments")
        if source and isinstance(enrichments, list):
            for item, enrichment in zip(data.get(source) or [], enrichments):
                if not isinstance(item, dict):
                    continue
                self._indicator(item, enrichment, etype)
            first = enrichments[0].get("indicator") if enrichments and etype == "threat_intel" else None
            if first:
                threat.setdefault("indicator", _copy(first))      # its own dicts, not those of enrichments[0]

    @staticmethod
    def _indicator(item: dict[str, Any], enrichment: dict[str, Any], etype: str) -> None:
        kind, value = item.get("type"), item.get("value")
        # the enrichment and its dicts are made by the rules (never None): looked up, not setdefault({})
        indicator = enrichment.get("indicator")
        if indicator is None:
            indicator = enrichment["indicator"] = {}
        matched = enrichment.get("matched")
        if matched is None:
            matched = enrichment["matched"] = {}
        matched.setdefault("type", "indicator_match_rule")
        if not isinstance(value, str):
            return
        if kind == "ip":
            version = ip_version(value)
            if version:
                indicator.setdefault("type", f"ipv{version}-addr")
                indicator.setdefault("ip", value)
            return
        if kind == "hash":
            algorithm = _HASH_BY_LENGTH.get(len(value))
            indicator.setdefault("type", "file")
            if algorithm:
                indicator.setdefault("file", {}).setdefault("hash", {})[algorithm] = value
            return
        ecs_type, field = INDICATOR_FIELDS.get(kind, (None, None))
        if ecs_type:
            indicator.setdefault("type", ecs_type)
        if field:
            _setdefault(indicator, field, value)
        conf = item.get("confidence")
        if is_number(conf):
            indicator.setdefault("confidence", "High" if conf >= 0.7 else "Medium" if conf >= 0.4 else "Low" if conf > 0 else "None")

    @staticmethod
    def _related(doc: dict[str, Any], source: Any, destination: Any, host: Any) -> None:
        """related.ip/user/hosts/hash: the values of those kinds in the document, each once, in order.
        `source`, `destination` and `host` are the document's (dicts made by the rules, or None).
        Written out node by node: the loops over (node, key) pairs this replaces cost twice the
        instructions, and it runs for every event."""
        ips: list[Any] = []
        hosts: list[str] = []
        if host is not None:
            name = host.get("hostname")
            if name is not None and isinstance(name, str):
                hosts.append(name)
        for node in (source, destination):
            if node is not None:
                value = node.get("ip")
                if value is not None:
                    if isinstance(value, list):
                        ips += value
                    elif isinstance(value, str):
                        ips.append(value)
                name = node.get("domain")
                if name is not None and isinstance(name, str):
                    hosts.append(name)
        if host is not None:
            value = host.get("ip")
            if value is not None:
                if isinstance(value, list):
                    ips += value
                elif isinstance(value, str):
                    ips.append(value)
        get = doc.get
        users: list[str] = []
        user, process = get("user"), get("process")
        if user is not None:
            name = user.get("name")
            if name is not None and isinstance(name, str):
                users.append(name)
        hashes: list[str] = []
        if process is not None:
            process_user = process.get("user")
            if process_user is not None:
                name = process_user.get("name")
                if name is not None and isinstance(name, str):
                    users.append(name)
            node = process.get("hash")
            if node:
                hashes += [v for v in node.values() if isinstance(v, str)]
        for node in (get("file"), get("dll")):
            if node is not None:
                node = node.get("hash")
                if node:
                    hashes += [v for v in node.values() if isinstance(v, str)]
        if ips or users or hosts or hashes:
            related = doc["related"] = {}                   # _DERIVED_ONLY
            # one value (the common case) is unique as it is: _unique is called only for more
            if ips:
                related["ip"] = ips if len(ips) == 1 else _unique(ips)
            if users:
                related["user"] = users if len(users) == 1 else _unique(users)
            if hosts:
                related["hosts"] = hosts if len(hosts) == 1 else _unique(hosts)
            if hashes:
                related["hash"] = hashes if len(hashes) == 1 else _unique(hashes)

    # -- ECS -> WIA ----------------------------------------------------------------------------
    def to_wia(self, doc: Any, **options: Any) -> list[dict[str, Any]]:
        """One ECS document (nested or with dotted keys, as Elasticsearch `_source` or Beats output) -> one
        WIA event; a whole `_search` response -> one per hit (the first hit that fails raises)."""
        return all_or_nothing(self.to_wia_each(doc, **options))

    @guarded_members
    def to_wia_each(self, doc: Any, *, lenient: bool = False, **options: Any) -> list[MemberOutcome]:
        """As `to_wia`, one outcome per hit of a `_search` / scroll response (errors name
        /hits/hits/N/...), so one hit that cannot be read refuses only itself. `lenient`: an event in this
        project's layout may hold null for an absent optional member."""
        if not isinstance(doc, dict):
            raise ConversionError(self.name, "an ECS document must be a JSON object")
        hits = doc.get("hits")
        if isinstance(hits, dict) and isinstance(hits.get("hits"), list) and "@timestamp" not in doc:
            return [self._hit(hit, f"/hits/hits/{n}", lenient) for n, hit in enumerate(hits["hits"])]
        if isinstance(doc.get("_source"), dict) and "_index" in doc:
            # one hit, as _search returns it
            return [MemberOutcome("", self._located(doc["_source"], "/_source", lenient))]
        return [MemberOutcome("", [self._document(doc, lenient)])]

    def _hit(self, hit: Any, where: str, lenient: bool) -> MemberOutcome:
        if not (isinstance(hit, dict) and isinstance(hit.get("_source"), dict)):
            return MemberOutcome(where, error=ConversionError(self.name, "a search hit without a _source object",
                                                              path=where), member=hit)
        return read_member(self, where, hit, lambda: self._located(hit["_source"], f"{where}/_source", lenient))

    def _located(self, doc: dict[str, Any], where: str, lenient: bool) -> list[dict[str, Any]]:
        """`_document(doc)`, its errors' paths prefixed with where `doc` sits in what was read."""
        try:
            return [self._document(doc, lenient)]
        except ConversionError as exc:
            raise ConversionError(self.name, exc.reason, path=where + exc.path) from None

    def _document(self, doc: dict[str, Any], lenient: bool = False) -> dict[str, Any]:
        original = doc
        doc = _undot(doc)
        leftover = doc.get(CUSTOM_NAMESPACE) if isinstance(doc.get(CUSTOM_NAMESPACE), dict) else {}
        etype = leftover.get("type") or self._type_from_ecs(doc)
        if etype not in TYPE_RULES:
            raise ConversionError(self.name, "cannot tell the WIA event type (no wia.type, and event.category "
                                  "does not name one)", path="/event/category")
        direction = _get(doc, ["network", "direction"]) if etype == "endpoint_event" else None
        if etype == "endpoint_event":
            lo = ((leftover.get("data") or {}).get("network_connection") or {}).get("direction")
            direction = lo or direction
        event: dict[str, Any] = {}
        plan_for(etype, direction == "inbound").backward(doc, event)
        event = merge(event, leftover, _copy)
        if leftover:      # this project's layout: the event as written, so checked as the other readers do
            inbound = direction == "inbound"        # the carrier is looked for only when the event is refused
            return checked(event, self.name, lambda pointer: _carrier(original, leftover, etype, inbound, pointer),
                           "the event restored from this project's ECS layout (the mapped fields and wia.*)",
                           lenient=lenient)
        return self._complete_foreign(event, doc, etype)

    @staticmethod
    def _type_from_ecs(doc: dict[str, Any]) -> str | None:
        event = doc.get("event") if isinstance(doc.get("event"), dict) else {}
        categories = event.get("category") or []
        categories = categories if isinstance(categories, list) else [categories]
        kind = event.get("kind")
        if "vulnerability" in categories:
            return "vulnerability"
        if kind == "enrichment" or "threat" in categories:
            return "threat_intel"
        if kind in ("alert", "signal"):
            return "alert"
        if "authentication" in categories or "iam" in categories:
            return "auth_event"
        if any(c in categories for c in ("process", "file", "registry", "library", "driver")):
            return "endpoint_event"
        if "network" in categories:
            return "network_event"
        return None

    def _complete_foreign(self, event: dict[str, Any], doc: dict[str, Any], etype: str) -> dict[str, Any]:
        """An ECS document from elsewhere (Beats, Elastic Agent): fill what the WIA schema requires."""
        import uuid
        ev = doc.get("event") if isinstance(doc.get("event"), dict) else {}
        if not _is_uuid(event.get("id")):
            event["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"ecs:{ev.get('id') or doc.get('@timestamp')}:{doc.get('message')}"))
        kept: dict[str, Any] = {}          # source values this completion had to change, as they came
        stamp = doc.get("@timestamp")
        if _EPOCH_MILLIS.fullmatch(str(stamp)) and stamp is not True and stamp is not False:
            # Elasticsearch `date` fields take epoch milliseconds too (the default epoch_millis format)
            try:
                event["timestamp"] = from_epoch_ms(float(stamp))
            except (OverflowError, ValueError):
                raise ConversionError(self.name, f"@timestamp {stamp!r} milliseconds is outside years 1-9999",
                                      path="/@timestamp") from None
            kept["@timestamp"] = stamp
        if not nonblank(event.get("timestamp")):
            raise ConversionError(self.name, "@timestamp is required" if stamp is None else
                                  f"@timestamp {stamp!r} is neither an RFC 3339 time nor epoch milliseconds",
                                  path="/@timestamp")
        event.update({"$schema": WIA_SCHEMA_URI, "version": WIA_VERSION, "type": etype})
        severity = _foreign_severity(doc, ev)
        cvss_score = _dig(doc, "vulnerability", "score", "base")
        event["severity"] = severity if severity is not None else \
            cvss_score if etype == "vulnerability" and is_number(cvss_score) and 0 <= cvss_score <= 10 else 5
        try:
            moment = to_iso(parse_iso(event["timestamp"]))
        except (TypeError, ValueError):
            raise ConversionError(self.name, f"@timestamp {event['timestamp']!r} is not an ISO 8601 time", path="/@timestamp") from None
        except OverflowError:           # in UTC past 9999 or before 1 (9999-12-31T23:30:00-01:00): no UTC spelling,
            moment = event["timestamp"]     # but valid RFC 3339 as it is, and Elasticsearch stores it
        if moment != event["timestamp"] and "@timestamp" not in kept:
            # WIA writes UTC with milliseconds (what every WIA SDK accepts); the exact original stays.
            kept["@timestamp"], event["timestamp"] = event["timestamp"], moment
        rule = _alert_fields(doc)
        observer = doc.get("observer") if isinstance(doc.get("observer"), dict) else {}
        source = event.setdefault("source", {})
        source.setdefault("name", (doc.get("agent") or {}).get("type") or ev.get("module") or "ecs")
        stype = observer.get("type")
        source["type"] = stype if stype in ("siem", "edr", "ids", "firewall", "scanner", "custom") else "custom"
        data = event.setdefault("data", {})
        categories = ev.get("category") or []
        host = doc.get("host") if isinstance(doc.get("host"), dict) else {}
        hostname = host.get("name") if nonblank(host.get("name")) else host.get("hostname")
        if etype != "endpoint_event" and nonblank(hostname):
            event.setdefault("context", {}).setdefault("host", {}).setdefault("hostname", hostname)
        # ECS directions WIA has no word for (ingress/egress, unknown, ...) land in data.direction
        # (network events) or context.network.direction (every type): translated, or kept aside.
        network = (event.get("context") or {}).get("network")
        for where in (data if etype == "network_event" else None, network if isinstance(network, dict) else None):
            if where is not None and where.get("direction") not in (None, "inbound", "outbound", "internal"):
                kept["network.direction"] = where["direction"]
                direction = _DIRECTIONS.get(where.pop("direction"))
                if direction:
                    where["direction"] = direction
        if etype == "alert":
            for key in ("alert_id", "title", "description", "status"):
                if nonblank(rule.get(key)):
                    data[key] = rule[key]
            if rule.get("detection_rule"):
                data["detection_rule"] = rule["detection_rule"]
            if rule.get("mitre") and "mitre" not in event:
                event["mitre"] = rule["mitre"]
            data.setdefault("alert_id", ev.get("id") or event["id"])
            data.setdefault("title", doc.get("message") or (doc.get("rule") or {}).get("name") or "alert")
            hashes = ((doc.get("file") or {}).get("hash") or {}) if isinstance(doc.get("file"), dict) else {}
            if "malware" in categories and isinstance(hashes, dict) and "indicators" not in data:
                data["indicators"] = [{"type": f"file_hash_{algo}", "value": hashes[algo]}
                                      for algo in ("md5", "sha1", "sha256") if nonblank(hashes.get(algo))] or None
            data.setdefault("category", "malware" if "malware" in categories else "intrusion")
            data.setdefault("status", "new")
            from ..severity import BAND_PRIORITY, band
            data.setdefault("priority", BAND_PRIORITY.get(band(event["severity"]), "medium"))
        elif etype == "network_event":
            data.setdefault("event_type", doc.get("network", {}).get("protocol") if doc.get("network", {}).get("protocol")
                            in APP_PROTOCOLS else "connection")
            data.setdefault("protocol", "TCP")
            if data.get("protocol") not in ("TCP", "UDP", "ICMP", "GRE", "ESP"):
                data["protocol"] = "TCP"
            for side in ("source", "destination"):
                if not ip_version((data.get(side) or {}).get("ip")):
                    raise ConversionError(self.name, f"a network event needs {side}.ip", path=f"/{side}/ip")
            if data.get("action") not in (None, "allowed", "blocked", "dropped", "reset"):
                data.pop("action")
        elif etype == "endpoint_event":
            kinds = dict((v[0][0] + "/" + v[1][0], k) for k, v in ENDPOINT_CATEGORIES.items())
            cat = categories[0] if categories else "process"
            types = ev.get("type") or ["start"]
            if data.get("event_type") not in ENDPOINT_CATEGORIES:
                data["event_type"] = kinds.get(f"{cat}/{types[0] if isinstance(types, list) else types}", "process_creation")
            data.setdefault("host", {}).setdefault("hostname", hostname if nonblank(hostname) else "unknown")
            os_ = data["host"].get("os") or {}
            if os_.get("name") not in (None, "Windows", "Linux", "macOS"):
                kept["host.os.name"] = os_["name"]
                family = _os_family(host.get("os"))
                if family:
                    os_["name"] = family
                else:
                    del os_["name"]
        elif etype == "auth_event":
            if data.get("event_type") not in AUTH_CATEGORIES:
                data["event_type"] = "login_failure" if ev.get("outcome") == "failure" else "login_success"
            data["result"] = "failure" if ev.get("outcome") == "failure" else "success"
            data.setdefault("user", {}).setdefault("name", (doc.get("user") or {}).get("name") or "unknown")
            data.setdefault("target", {}).setdefault("name", (doc.get("host") or {}).get("name") or "unknown")
            data["target"].setdefault("type", "host")
            data.pop("failure_reason", None)
        elif etype == "vulnerability":
            cvss = data.setdefault("cvss", {})
            cvss.setdefault("score", event["severity"])
            if cvss.get("version") not in ("2.0", "3.0", "3.1", "4.0"):
                cvss["version"] = "3.1"
            score = cvss["score"]
            cvss["severity"] = "none" if score == 0 else "low" if score < 4 else "medium" if score < 7 else "high" if score < 9 else "critical"
            data.setdefault("title", doc.get("message") or data.get("vuln_id"))
            if isinstance(data.get("references"), str):
                data["references"] = [data["references"]]     # ECS keyword fields hold one value or an array
        elif etype == "threat_intel":
            indicator = (doc.get("threat") or {}).get("indicator") if isinstance(doc.get("threat"), dict) else None
            if isinstance(indicator, dict) and "indicators" not in data:
                data["indicators"] = _indicators_from(indicator) or None
            software = ((doc.get("threat") or {}).get("software") or {}).get("name")
            data.setdefault("threat_name", doc.get("message") or software or
                            (isinstance(indicator, dict) and indicator.get("description")) or "unknown")
            data.setdefault("threat_type", "malware")
            data.setdefault("status", "unknown")
        for key, value in doc.items():
            if key not in ECS_TOP_LEVEL and key != CUSTOM_NAMESPACE:
                kept[key] = _copy(value)   # an integration's own namespace (winlog, zeek, panw, kibana...)
        # Nulls and empty containers are cleaned from the WIA fields only: under meta.custom the
        # schema takes any JSON, so the integration's namespaces are kept exactly as they came.
        event = clean(event)
        if kept:
            event.setdefault("meta", {}).setdefault("custom", {})["ecs"] = kept
        return canonical_times(event)


#: Epoch milliseconds as a JSON number or a string of digits (Elasticsearch's `epoch_millis`).
_EPOCH_MILLIS = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]+)?")
#: The top-level names of ECS 9.4.0 (fields.csv): any other top-level key of a document is an
#: integration's own namespace, which a foreign document's event keeps in `meta.custom.ecs`.
ECS_TOP_LEVEL = frozenset({
    "@timestamp", "agent", "client", "cloud", "container", "data_stream", "destination", "device", "dll", "dns", "ecs",
    "email", "entity", "error", "event", "faas", "file", "gen_ai", "group", "host", "http", "labels", "log", "message",
    "network", "observer", "orchestrator", "organization", "package", "process", "registry", "related", "rule",
    "server", "service", "source", "span", "tags", "threat", "tls", "trace", "transaction", "url", "user",
    "user_agent", "volume", "vulnerability"})
#: ECS network.direction values WIA has a word for (ECS: ingress/egress are the observer's view).
_DIRECTIONS = {"ingress": "inbound", "egress": "outbound", "inbound": "inbound", "outbound": "outbound", "internal": "internal"}
#: Elastic Security's severity words and the risk scores its rules default to (detection rules docs).
_ELASTIC_SEVERITY = {"low": 21, "medium": 47, "high": 73, "critical": 99}
_WORKFLOW_STATUS = {"open": "new", "acknowledged": "investigating", "in-progress": "investigating", "closed": "closed"}


def _foreign_severity(doc: dict[str, Any], ev: dict[str, Any]) -> int | float | None:
    """0-10 from what the document says. ECS leaves `event.severity` to the source; Elastic's own
    products score 0-100 (`*.risk_score`, Elastic Defend's `event.severity`: 21/47/73/99), so a
    risk score or severity word of Elastic Security comes first, then `event.risk_score_norm`
    (0-100), then `event.risk_score` (the source's scale: 0-10 as is, 11-100 as 0-100), then `event.severity` (Suricata/Snort priorities 1-4 by their table, else 0-10 as is,
    11-100 as a 0-100 score); None when none says."""
    alert = _dig(doc, "kibana", "alert") or {}
    signal_rule = _dig(doc, "signal", "rule") or {}
    for score in (alert.get("risk_score"), _dig(alert, "rule", "parameters", "risk_score"), signal_rule.get("risk_score"),
                  ev.get("risk_score_norm")):
        if is_number(score) and 0 <= score <= 100:
            return _tenth(score)
    # ECS: event.risk_score is "your system's original value", on the source's own scale (this project's
    # writer puts the WIA 0-10 severity there): read as event.severity is, 0-10 as it is, above 10 as 0-100.
    risk = ev.get("risk_score")
    if is_number(risk) and 0 <= risk <= 100:
        return risk if risk <= 10 else _tenth(risk)
    for word in (alert.get("severity"), _dig(alert, "rule", "parameters", "severity"), signal_rule.get("severity")):
        if isinstance(word, str) and word.lower() in _ELASTIC_SEVERITY:
            return _tenth(_ELASTIC_SEVERITY[word.lower()])
    sev = ev.get("severity")
    inverted = _PRIORITY_SCALES.get(str(ev.get("module") or str(ev.get("dataset") or "").split(".")[0]))
    if inverted and sev in inverted:
        return inverted[sev]
    if is_number(sev) and sev >= 0:
        return sev if sev <= 10 else _tenth(min(sev, 100))
    return None


#: Sources whose `event.severity` is a priority, 1 the most urgent (the Suricata and Snort
#: integrations copy alert.severity / priority: 1 high, 2 medium, 3 low) -> WIA 0-10.
_PRIORITY_SCALES = {"suricata": {1: 8, 2: 5, 3: 3, 4: 1}, "snort": {1: 8, 2: 5, 3: 3, 4: 1}}


def _tenth(score: int | float) -> int | float:
    value = round(score / 10, 1)
    return int(value) if value == int(value) else value


def _dig(node: Any, *keys: str) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _alert_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """What an Elastic Security alert (`kibana.alert.*`, 8.x) or signal (`signal.*`, 7.x) says about
    itself: id, rule, reason, workflow status and the rule's ATT&CK mapping."""
    alert = _dig(doc, "kibana", "alert") or {}
    signal = doc.get("signal") if isinstance(doc.get("signal"), dict) else {}
    rule = alert.get("rule") if isinstance(alert.get("rule"), dict) else signal.get("rule") if isinstance(signal.get("rule"), dict) else {}
    out: dict[str, Any] = {"alert_id": alert.get("uuid") or signal.get("id"), "title": rule.get("name"),
                           "description": alert.get("reason") or signal.get("reason"),
                           "status": _WORKFLOW_STATUS.get(alert.get("workflow_status") or signal.get("status"))}
    detection = clean({"id": rule.get("rule_id") or rule.get("uuid") or rule.get("id"), "name": rule.get("name"),
                       "version": str(rule["version"]) if is_number(rule.get("version")) else None})
    if detection:
        out["detection_rule"] = detection
    threat = rule.get("threat") or (_dig(rule, "parameters", "threat"))
    for entry in threat if isinstance(threat, list) else []:
        if not isinstance(entry, dict):
            continue
        tactic = entry.get("tactic") if isinstance(entry.get("tactic"), dict) else {}
        techniques = [t for t in entry.get("technique") or [] if isinstance(t, dict)]
        technique = techniques[0] if techniques else {}
        subs = [t for t in technique.get("subtechnique") or [] if isinstance(t, dict)]
        mitre = clean({"tactic": tactic.get("id"), "tactic_name": tactic.get("name"),
                       "technique": technique.get("id"), "technique_name": technique.get("name"),
                       "sub_technique": subs[0].get("id") if subs else None,
                       "sub_technique_name": subs[0].get("name") if subs else None})
        if not re.fullmatch(r"TA\d{4}", str(mitre.get("tactic", "TA0000"))):
            mitre.pop("tactic", None)
        if mitre:
            out["mitre"] = mitre
            break
    return out


def _os_family(os_: Any) -> str | None:
    """WIA's endpoint OS word (Windows, Linux, macOS) for an ECS host.os: from os.type, platform, family or name."""
    if not isinstance(os_, dict):
        return None
    text = " ".join(str(os_.get(k, "")) for k in ("type", "platform", "family", "name")).lower()
    if "windows" in text:
        return "Windows"
    if re.search(r"\b(macos|darwin|mac os|os x)\b", text):
        return "macOS"
    if re.search(r"\b(linux|ubuntu|debian|rhel|redhat|centos|fedora|amazon|suse|alpine|rocky|alma|arch)\b", text):
        return "Linux"
    return None


def _indicators_from(indicator: dict[str, Any]) -> list[dict[str, Any]]:
    """The observables of an ECS threat.indicator (Filebeat/Agent threat intel integrations)."""
    out = []
    ip = indicator.get("ip")
    if nonblank(ip):
        out.append({"type": "ip", "value": ip})
    url = indicator.get("url") if isinstance(indicator.get("url"), dict) else {}
    if nonblank(url.get("full")) or nonblank(url.get("original")):
        out.append({"type": "url", "value": url.get("full") or url.get("original")})
    elif nonblank(url.get("domain")):
        out.append({"type": "domain", "value": url["domain"]})
    email = indicator.get("email") if isinstance(indicator.get("email"), dict) else {}
    if nonblank(email.get("address")):
        out.append({"type": "email", "value": email["address"]})
    hashes = _dig(indicator, "file", "hash") or {}
    for algo in ("md5", "sha1", "sha256"):
        if isinstance(hashes, dict) and nonblank(hashes.get(algo)):
            out.append({"type": f"file_hash_{algo}", "value": hashes[algo]})
    for item in out:
        for src, dst in (("first_seen", "first_seen"), ("last_seen", "last_seen")):
            if nonblank(indicator.get(src)):
                item[dst] = indicator[src]
        if nonblank(indicator.get("description")):
            item["context"] = {"description": indicator["description"]}
    return out


def _carrier(original: dict[str, Any], leftover: dict[str, Any], event_type: str, inbound: bool, pointer: str) -> str:
    """The JSON pointer in `original` (the document as it came: nested, dotted keys or both) of the field
    that gave the event's value at `pointer`: the `wia.*` member when `leftover` holds one there, else the
    ECS field of the rule of `event_type` that maps it (a rule walking a list is not followed: its elements need not line
    up), else "" (the document itself)."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if holds(leftover, pointer):
        return _pointer_in(original, [CUSTOM_NAMESPACE, *parts]) or f"/{CUSTOM_NAMESPACE}{pointer}"
    best: list[str] | None = None
    depth = 0
    for rule in rules_for(event_type, "inbound" if inbound else None):
        head = rule.wia_head
        if not rule.listed and len(head) > depth and tuple(parts[:len(head)]) == head:
            best, depth = [*rule.ecs_head, *parts[len(head):]], len(head)
    return (_pointer_in(original, best) if best else None) or ""


def _pointer_in(doc: Any, parts: list[str]) -> str | None:
    """The JSON pointer of the field `parts` (a dotted path split) in an ECS document whose keys may be
    nested or dotted ({"source": {"ip": ..}}, {"source.ip": ..}): the longest dotted key first at each
    level. None when the document holds no such field."""
    node, out, i = doc, [], 0
    while i < len(parts):
        if isinstance(node, list):
            if not parts[i].isdigit() or int(parts[i]) >= len(node):
                return None
            key, node, i = parts[i], node[int(parts[i])], i + 1
        elif isinstance(node, dict):
            for j in range(len(parts), i, -1):
                key = ".".join(parts[i:j])
                if key in node:
                    node, i = node[key], j
                    break
            else:
                return None
        else:
            return None
        out.append(key)
    return "".join("/" + k.replace("~", "~0").replace("/", "~1") for k in out)


def _undot(doc: dict[str, Any]) -> dict[str, Any]:
    """{"event.kind": "x"} -> {"event": {"kind": "x"}} (recursively), for flattened documents."""
    for key in doc:
        if "." in key:
            break
    else:
        return doc
    out: dict[str, Any] = {}
    for key, value in doc.items():
        value = _undot(value) if isinstance(value, dict) and key != CUSTOM_NAMESPACE else value
        parts = key.split(".") if key != "@timestamp" else [key]
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        if isinstance(node.get(parts[-1]), dict) and isinstance(value, dict):
            node[parts[-1]] = merge(node[parts[-1]], value)
        else:
            node[parts[-1]] = value
    return out


def _is_uuid(value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", value))
