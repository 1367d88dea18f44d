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

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from .._version import WIA_SCHEMA_URI, WIA_VERSION
from ..errors import ConversionError
from ._wia_paths import Remainder, clean, ip_version, is_int, is_number, merge, nonblank
from .base import Format

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


def _strs(v: Any) -> Any:
    return list(v) if isinstance(v, list) and all(isinstance(i, str) for i in v) else None


def _labels(v: Any) -> Any:
    return dict(v) if isinstance(v, dict) else None


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
    R("id", "event.id", _str), R("timestamp", "@timestamp", _str), R("severity", "event.risk_score", _num),
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
              R("first_seen", "indicator.first_seen", _str), R("last_seen", "indicator.last_seen", _str)]

TYPE_RULES: dict[str, list[Rule]] = {
    "alert": [
        R("data.title", "message", _str), R("data.description", "event.reason", _str),
        R("data.detection_rule.id", "rule.id", _str), R("data.detection_rule.name", "rule.name", _str),
        R("data.detection_rule.version", "rule.version", _str),
        R("data.first_seen", "event.start", _str), R("data.last_seen", "event.end", _str),
        *[R(f"data.indicators[].{r.wia}", f"threat.enrichments[].{r.ecs}", r.out, r.back) for r in _INDICATOR],
    ],
    "incident": [
        R("data.title", "message", _str), R("data.description", "event.reason", _str),
        R("data.created_at", "event.start", _str), R("data.closed_at", "event.end", _str),
        R("data.iocs[].value", "threat.enrichments[].matched.atomic", _str),
        R("data.iocs[].description", "threat.enrichments[].indicator.description", _str),
        R("data.iocs[].first_seen", "threat.enrichments[].indicator.first_seen", _str),
    ],
    "threat_intel": [
        R("data.threat_name", "message", _str), R("data.threat_family", "threat.software.name", _str),
        R("data.first_seen", "event.start", _str), R("data.last_seen", "event.end", _str),
        R("data.indicators[].value", "threat.enrichments[].matched.atomic", _str),
        R("data.indicators[].context.description", "threat.enrichments[].indicator.description", _str),
        R("data.indicators[].first_seen", "threat.enrichments[].indicator.first_seen", _str),
        R("data.indicators[].last_seen", "threat.enrichments[].indicator.last_seen", _str),
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
        R("data.tls.certificate.not_before", "tls.server.not_before", _str),
        R("data.tls.certificate.not_after", "tls.server.not_after", _str),
        R("data.tls.certificate.fingerprint_sha256", "tls.server.hash.sha256", _str),
    ],
    "endpoint_event": [
        R("data.event_type", "event.action", _str),
        R("data.host.hostname", "host.hostname", _str), R("data.host.ip", "host.ip", _ips), R("data.host.mac", "host.mac", _strs),
        R("data.host.os.name", "host.os.name", _str), R("data.host.os.version", "host.os.version", _str),
        R("data.host.domain", "host.domain", _str), R("data.host.agent_id", "agent.id", _str),
        R("data.process.pid", "process.pid", _int), R("data.process.name", "process.name", _str),
        R("data.process.path", "process.executable", _str), R("data.process.command_line", "process.command_line", _str),
        R("data.process.user", "process.user.name", _str), R("data.process.start_time", "process.start", _str),
        *_hash_rules("data.process.hash", "process.hash"),
        R("data.process.signature.signed", "process.code_signature.exists", _bool),
        R("data.process.signature.valid", "process.code_signature.trusted", _bool),
        R("data.process.signature.subject", "process.code_signature.subject_name", _str),
        R("data.process.parent.pid", "process.parent.pid", _int), R("data.process.parent.name", "process.parent.name", _str),
        R("data.process.parent.path", "process.parent.executable", _str),
        R("data.process.parent.command_line", "process.parent.command_line", _str),
        R("data.file.path", "file.path", _str), R("data.file.name", "file.name", _str),
        R("data.file.extension", "file.extension", _str), R("data.file.size", "file.size", _int),
        *_hash_rules("data.file.hash", "file.hash"), R("data.file.created", "file.created", _str),
        R("data.file.modified", "file.mtime", _str), R("data.file.accessed", "file.accessed", _str),
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


def _setdefault(doc: dict[str, Any], dotted: str, value: Any) -> None:
    if value is None or value == [] or value == "":
        return
    parts = dotted.split(".")
    if _get(doc, parts) is _MISSING:
        _set(doc, parts, value)


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
        rest = Remainder(event)
        doc: dict[str, Any] = {}
        direction = ((event.get("data") or {}).get("network_connection") or {}).get("direction")
        for rule in rules_for(etype, direction):
            self._forward(rule, event, rest, doc)
        self._derived(event, doc)
        leftover = rest.leftover()
        if leftover:
            doc[CUSTOM_NAMESPACE] = leftover
        return doc

    @staticmethod
    def _forward(rule: Rule, event: dict[str, Any], rest: Remainder, doc: dict[str, Any]) -> None:
        if not rule.listed:
            value = _get(event, rule.wia_head)
            if value is _MISSING:
                return
            if rule.geo:
                geo = _get(event, rule.wia_head[:-1])        # a geo_point needs both coordinates
                if not (is_number(geo.get("latitude")) and is_number(geo.get("longitude"))):
                    return
            out = rule.out(value)
            if out is None or _get(doc, rule.ecs_head) is not _MISSING:
                return
            _set(doc, rule.ecs_head, out)
            back = rule.back(out)
            if back == value and type(back) is type(value):
                rest.pop(*rule.wia_head)
            return
        items = _get(event, rule.wia_head)
        if not isinstance(items, list):
            return
        target = _get(doc, rule.ecs_head)
        if target is _MISSING:
            target = [{} for _ in items]
            _set(doc, rule.ecs_head, target)
        for i, item in enumerate(items):
            value = _get(item, rule.wia_tail)
            if value is _MISSING or i >= len(target):
                continue
            out = rule.out(value)
            if out is None or _get(target[i], rule.ecs_tail) is not _MISSING:
                continue
            _set(target[i], rule.ecs_tail, out)
            back = rule.back(out)
            if back == value and type(back) is type(value):
                rest.pop(*rule.wia_head, i, *rule.wia_tail)

    def _derived(self, event: dict[str, Any], doc: dict[str, Any]) -> None:
        """ECS fields that restate WIA values (ignored on the way back)."""
        etype, data = event["type"], event.get("data") or {}
        severity = event.get("severity")
        kind, category, types, outcome = self._categorization(event)
        _setdefault(doc, "ecs.version", ECS_VERSION)
        _setdefault(doc, "event.kind", kind)
        _setdefault(doc, "event.category", category)
        _setdefault(doc, "event.type", types)
        _setdefault(doc, "event.outcome", outcome)
        _setdefault(doc, "event.module", "wia")
        _setdefault(doc, "event.dataset", f"wia.{etype}")
        if is_number(severity):
            _setdefault(doc, "event.severity", int(round(severity)))
            _setdefault(doc, "event.risk_score_norm", round(severity * 10, 3))
        src = event.get("source") or {}
        _setdefault(doc, "event.provider", src.get("name") if nonblank(src.get("name")) else None)
        # host / endpoints
        if nonblank(_get(doc, ["host", "hostname"]) if _get(doc, ["host", "hostname"]) is not _MISSING else None):
            _setdefault(doc, "host.name", doc["host"]["hostname"])
        os_name = _get(doc, ["host", "os", "name"])
        if isinstance(os_name, str) and os_name.lower() in ("windows", "linux", "macos"):
            _setdefault(doc, "host.os.type", os_name.lower())
        for side in ("source", "destination", "client", "server"):
            node = doc.get(side)
            if isinstance(node, dict):
                _setdefault(doc, f"{side}.address", node.get("ip") or node.get("domain"))
        if etype == "network_event":
            sb, db = _get(doc, ["source", "bytes"]), _get(doc, ["destination", "bytes"])
            if is_int(sb) and is_int(db):
                _setdefault(doc, "network.bytes", sb + db)
            sp, dp = _get(doc, ["source", "packets"]), _get(doc, ["destination", "packets"])
            if is_int(sp) and is_int(dp):
                _setdefault(doc, "network.packets", sp + dp)
            if data.get("event_type") in APP_PROTOCOLS:
                _setdefault(doc, "network.protocol", data["event_type"])
            ipv = ip_version((data.get("source") or {}).get("ip"))
            _setdefault(doc, "network.type", f"ipv{ipv}" if ipv else None)
            dns = data.get("dns") or {}
            if dns:
                _setdefault(doc, "dns.type", "answer" if dns.get("response") or dns.get("response_code") else "query")
                _setdefault(doc, "dns.resolved_ip", [a for a in dns.get("response") or [] if ip_version(a)])
            tls = data.get("tls") or {}
            if isinstance(tls.get("version"), str) and tls["version"].startswith("TLS "):
                _setdefault(doc, "tls.version_protocol", "tls")
            self._url_parts(doc, data.get("url"))
        if etype == "auth_event":
            self._url_parts(doc, (data.get("target") or {}).get("url"))
        if etype == "endpoint_event":
            reg = data.get("registry") or {}
            if nonblank(reg.get("key")):
                head, _, rest = reg["key"].partition("\\")
                hive = _HIVES.get(head.upper(), head.upper() if head.upper() in _HIVES.values() else None)
                if hive:
                    _setdefault(doc, "registry.hive", hive)
                    _setdefault(doc, "registry.key", rest)
                else:
                    _setdefault(doc, "registry.key", reg["key"])
                value = reg.get("value_name")
                _setdefault(doc, "registry.path", f"{reg['key']}\\{value}" if nonblank(value) else reg["key"])
        # message for types without a title
        if etype in ("network_event", "endpoint_event", "auth_event"):
            _setdefault(doc, "message", self._summary(event))
        if etype == "vulnerability":
            _setdefault(doc, "vulnerability.classification", "CVSS")
            _setdefault(doc, "vulnerability.enumeration", "CVE")
            _setdefault(doc, "vulnerability.scanner.vendor", src.get("vendor") if nonblank(src.get("vendor")) else None)
            cwe = [c for c in data.get("cwe") or [] if isinstance(c, str)]
            _setdefault(doc, "vulnerability.category", cwe)
        self._threat(event, doc)
        self._related(doc)

    @staticmethod
    def _url_parts(doc: dict[str, Any], url: Any) -> None:
        if not nonblank(url):
            return
        m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://([^/?#:]*)(?::(\d+))?([^?#]*)(?:\?([^#]*))?", url)
        if not m:
            return
        _setdefault(doc, "url.full", url)
        _setdefault(doc, "url.scheme", m.group(1))
        _setdefault(doc, "url.domain", m.group(2) or None)
        if m.group(3) and int(m.group(3)) <= 65535:
            _setdefault(doc, "url.port", int(m.group(3)))
        _setdefault(doc, "url.path", m.group(4) or None)
        _setdefault(doc, "url.query", m.group(5) or None)

    @staticmethod
    def _categorization(event: dict[str, Any]) -> tuple[str, list[str], list[str], str | None]:
        etype, data = event["type"], event.get("data") or {}
        if etype == "alert":
            return "alert", ALERT_CATEGORIES.get(data.get("category"), ["intrusion_detection"]), ["info"], None
        if etype == "incident":
            return "alert", INCIDENT_CATEGORIES.get(data.get("category"), ["intrusion_detection"]), ["info"], None
        if etype == "threat_intel":
            return "enrichment", ["threat"], ["indicator"], None
        if etype == "vulnerability":
            return "state", ["vulnerability"], ["info"], None
        if etype == "network_event":
            types = ["connection"] + (["protocol"] if data.get("event_type") in APP_PROTOCOLS else [])
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
            category, types = ENDPOINT_CATEGORIES.get(data.get("event_type"), (["host"], ["info"]))
            return "event", category, types, None
        category, types = AUTH_CATEGORIES.get(data.get("event_type"), (["authentication"], ["info"]))
        return "event", category, types, None          # event.outcome comes from data.result (a mapped field)

    @staticmethod
    def _summary(event: dict[str, Any]) -> str:
        etype, data = event["type"], event.get("data") or {}
        if etype == "network_event":
            s, d = data.get("source") or {}, data.get("destination") or {}
            return f"{data.get('event_type')} {s.get('ip')} -> {d.get('ip')}" + (f" {data['action']}" if data.get("action") else "")
        if etype == "endpoint_event":
            return f"{data.get('event_type')} on {(data.get('host') or {}).get('hostname')}"
        return f"{data.get('event_type')} for {(data.get('user') or {}).get('name')} ({data.get('result')})"

    def _threat(self, event: dict[str, Any], doc: dict[str, Any]) -> None:
        etype, data = event["type"], event.get("data") or {}
        threat = doc.get("threat") if isinstance(doc.get("threat"), dict) else None
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
                _setdefault(doc, "threat.group.name", data.get("threat_name"))
                _setdefault(doc, "threat.group.alias", names)
            elif data.get("threat_type") in ("malware", "ransomware", "botnet"):
                _setdefault(doc, "threat.software.type", "Malware")
                _setdefault(doc, "threat.software.alias", names)
            refs = [r for r in data.get("references") or [] if isinstance(r, str)]
            _setdefault(doc, "threat.software.reference", refs[0] if refs and "software" in doc.get("threat", {}) else None)
            threat = doc.get("threat") if isinstance(doc.get("threat"), dict) else None
        if threat is None:
            return
        if any(k in threat for k in ("tactic", "technique")):
            threat.setdefault("framework", "MITRE ATT&CK")
        for key, kind in (("tactic", "tactics"), ("technique", "techniques")):
            node = threat.get(key)
            if isinstance(node, dict) and isinstance(node.get("id"), list):
                node.setdefault("reference", [f"{ATTACK_URL}/{kind}/{i}/" for i in node["id"]])
                sub = node.get("subtechnique")
                if key == "technique" and isinstance(sub, dict) and isinstance(sub.get("id"), list):
                    sub.setdefault("reference", [f"{ATTACK_URL}/techniques/{i.replace('.', '/')}/" for i in sub["id"]])
        source = "indicators" if etype in ("alert", "threat_intel") else "iocs" if etype == "incident" else None
        enrichments = threat.get("enrichments")
        if source and isinstance(enrichments, list):
            for item, enrichment in zip(data.get(source) or [], enrichments):
                if not isinstance(item, dict):
                    continue
                self._indicator(item, enrichment, etype)
            first = enrichments[0].get("indicator") if enrichments and etype == "threat_intel" else None
            if first:
                threat.setdefault("indicator", dict(first))

    @staticmethod
    def _indicator(item: dict[str, Any], enrichment: dict[str, Any], etype: str) -> None:
        kind, value = item.get("type"), item.get("value")
        indicator = enrichment.setdefault("indicator", {})
        enrichment.setdefault("matched", {}).setdefault("type", "indicator_match_rule")
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
    def _related(doc: dict[str, Any]) -> None:
        ips: list[str] = []
        for side in ("source", "destination", "host"):
            value = (doc.get(side) or {}).get("ip") if isinstance(doc.get(side), dict) else None
            ips += value if isinstance(value, list) else [value] if isinstance(value, str) else []
        users = [u for u in ((doc.get("user") or {}).get("name"), ((doc.get("process") or {}).get("user") or {}).get("name"))
                 if isinstance(u, str)]
        hosts = [h for h in ((doc.get("host") or {}).get("hostname"), (doc.get("source") or {}).get("domain"),
                             (doc.get("destination") or {}).get("domain")) if isinstance(h, str)]
        hashes = []
        for field in ("process", "file", "dll"):
            node = ((doc.get(field) or {}).get("hash")) if isinstance(doc.get(field), dict) else None
            if isinstance(node, dict):
                hashes += [v for v in node.values() if isinstance(v, str)]
        for key, values in (("ip", ips), ("user", users), ("hosts", hosts), ("hash", hashes)):
            _setdefault(doc, f"related.{key}", list(dict.fromkeys(values)))

    # -- ECS -> WIA ----------------------------------------------------------------------------
    def to_wia(self, doc: Any, **options: Any) -> list[dict[str, Any]]:
        """One ECS document (nested or with dotted keys, as Elasticsearch `_source` or Beats output) -> one WIA event."""
        if not isinstance(doc, dict):
            raise ConversionError(self.name, "an ECS document must be a JSON object")
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
        for rule in rules_for(etype, direction if isinstance(direction, str) else None):
            self._backward(rule, doc, event)
        event = merge(event, leftover)
        if leftover:
            return [event]
        return [self._complete_foreign(event, doc, etype)]

    @staticmethod
    def _backward(rule: Rule, doc: dict[str, Any], event: dict[str, Any]) -> None:
        if not rule.listed:
            value = _get(doc, rule.ecs_head)
            if value is _MISSING or value is None:
                return
            back = rule.back(value)
            if back is not None:
                _set(event, rule.wia_head, back)
            return
        items = _get(doc, rule.ecs_head)
        if not isinstance(items, list):
            return
        target = _get(event, rule.wia_head)
        if target is _MISSING:
            target = [{} for _ in items]
            _set(event, rule.wia_head, target)
        for i, item in enumerate(items):
            value = _get(item, rule.ecs_tail) if isinstance(item, dict) else _MISSING
            if value is _MISSING or value is None or i >= len(target):
                continue
            back = rule.back(value)
            if back is not None:
                _set(target[i], rule.wia_tail, back)

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
        if not nonblank(event.get("timestamp")):
            raise ConversionError(self.name, "@timestamp is required", path="/@timestamp")
        event.update({"$schema": WIA_SCHEMA_URI, "version": WIA_VERSION, "type": etype})
        if not is_number(event.get("severity")) or not 0 <= event["severity"] <= 10:
            sev = ev.get("severity")
            event["severity"] = min(10, max(0, sev)) if is_number(sev) else 5
        observer = doc.get("observer") if isinstance(doc.get("observer"), dict) else {}
        source = event.setdefault("source", {})
        source.setdefault("name", (doc.get("agent") or {}).get("type") or ev.get("module") or "ecs")
        stype = observer.get("type")
        source["type"] = stype if stype in ("siem", "edr", "ids", "firewall", "scanner", "custom") else "custom"
        data = event.setdefault("data", {})
        categories = ev.get("category") or []
        if etype == "alert":
            data.setdefault("alert_id", ev.get("id") or event["id"])
            data.setdefault("title", doc.get("message") or (doc.get("rule") or {}).get("name") or "alert")
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
            data.setdefault("host", {}).setdefault("hostname", (doc.get("host") or {}).get("name") or "unknown")
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
        elif etype == "threat_intel":
            data.setdefault("threat_name", doc.get("message") or "unknown")
            data.setdefault("threat_type", "malware")
            data.setdefault("status", "unknown")
        return clean(event)


def _undot(doc: dict[str, Any]) -> dict[str, Any]:
    """{"event.kind": "x"} -> {"event": {"kind": "x"}} (recursively), for flattened documents."""
    if not any("." in k for k in doc):
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
