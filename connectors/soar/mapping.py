"""What the SOAR connectors make of a WIA event: severities, CEF fields, indicators, XSOAR fields.

CEF fields come from the event's Splunk CIM fields (wia_security.convert(event, to="cim")) through
the CIM -> CEF table the Splunk SOAR ingestion apps use (src -> sourceAddress, dest ->
destinationAddress, user -> destinationUserName, file_hash -> fileHash, ...), plus wia* custom keys
whose "contains" types are declared in cef_types so SOAR playbooks can act on them.
"""
from __future__ import annotations

import re
from datetime import timezone
from typing import Any, Iterator

from wia_security import convert
from wia_security.severity import band
from wia_security.timeutil import parse_iso

from .. import _eventview as view

#: WIA severity band -> Splunk SOAR container/artifact severity (the three built-in labels).
SOAR_SEVERITY = {"informational": "low", "low": "low", "medium": "medium", "high": "high",
                 "critical": "high", "emergency": "high"}
#: WIA severity band -> XSOAR incident severity (0 unknown, 0.5 informational, 1 low, 2 medium, 3 high, 4 critical).
XSOAR_SEVERITY = {"informational": 0.5, "low": 1, "medium": 2, "high": 3, "critical": 4, "emergency": 4}

#: CIM field -> (CEF key, contains types); the Splunk SOAR ingestion convention.
CIM_TO_CEF: dict[str, tuple[str, list[str]]] = {
    "action": ("act", []), "app": ("app", []), "bytes_in": ("bytesIn", []), "bytes_out": ("bytesOut", []),
    "category": ("cat", []), "dest": ("destinationAddress", ["ip", "host name"]),
    "dest_ip": ("destinationAddress", ["ip"]), "dest_mac": ("destinationMacAddress", ["mac address"]),
    "dest_nt_domain": ("destinationNtDomain", ["domain"]), "dest_port": ("destinationPort", ["port"]),
    "direction": ("deviceDirection", []), "dvc": ("dvc", ["ip", "host name"]),
    "file_create_time": ("fileCreateTime", []), "file_hash": ("fileHash", ["hash"]),
    "file_modify_time": ("fileModificationTime", []), "file_name": ("fileName", ["file name"]),
    "file_path": ("filePath", ["file path"]), "file_size": ("fileSize", []),
    "transport": ("transportProtocol", []), "src": ("sourceAddress", ["ip", "host name"]),
    "src_ip": ("sourceAddress", ["ip"]), "src_mac": ("sourceMacAddress", ["mac address"]),
    "src_port": ("sourcePort", ["port"]), "src_user": ("sourceUserId", ["user name"]),
    "url": ("requestURL", ["url"]), "user": ("destinationUserName", ["user name"]),
    "process": ("destinationProcessName", ["process name"]), "process_id": ("destinationProcessId", ["pid"]),
    "signature": ("signature", []), "cve": ("cve", ["cve"]),
}
#: WIA indicator type -> (CEF key, contains types) for indicator artifacts.
INDICATOR_CEF: dict[str, tuple[str, list[str]]] = {
    "ip": ("destinationAddress", ["ip"]), "domain": ("destinationDnsDomain", ["domain"]),
    "url": ("requestURL", ["url"]), "hash": ("fileHash", ["hash"]), "file_hash_md5": ("fileHashMd5", ["hash", "md5"]),
    "file_hash_sha1": ("fileHashSha1", ["hash", "sha1"]), "file_hash_sha256": ("fileHashSha256", ["hash", "sha256"]),
    "email": ("emailAddress", ["email"]), "file": ("filePath", ["file path"]), "mutex": ("mutexName", ["mutex"]),
    "registry": ("registryKey", ["registry key"]),
}
_UNKNOWN = "unknown"


#: TLP marking (a meta.tags entry, any case; TLP 2.0 and 1.0 names) -> Splunk SOAR container sensitivity, which has
#: TLP 1.0's four. AMBER+STRICT (the recipient's organisation only) has no SOAR level of its own: red, the one
#: that does not share it more widely.
TLP_SENSITIVITY = {"tlp:clear": "white", "tlp:white": "white", "tlp:green": "green", "tlp:amber": "amber",
                   "tlp:amber+strict": "red", "tlp:red": "red"}
_SENSITIVITY_ORDER = ("white", "green", "amber", "red")


def soar_sensitivity(event: dict[str, Any]) -> str | None:
    """The container sensitivity the event's own TLP marking asks for (the strictest, when it has several), or None
    when it carries none."""
    tags = (event.get("meta") or {}).get("tags") or []
    levels = [TLP_SENSITIVITY[t.strip().lower()] for t in tags if isinstance(t, str) and t.strip().lower() in TLP_SENSITIVITY]
    return max(levels, key=_SENSITIVITY_ORDER.index) if levels else None


def soar_severity(event: dict[str, Any]) -> str:
    return SOAR_SEVERITY.get(band(event.get("severity")), "medium")


def xsoar_severity(event: dict[str, Any]) -> float:
    return XSOAR_SEVERITY.get(band(event.get("severity")), 0)


#: RFC 3339 date-time as XSOAR's server reads it (Go's time.RFC3339: 'T' and 'Z' upper case, nothing after the offset).
STRICT_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)")


def xsoar_occurred(timestamp: Any) -> Any:
    """An incident's `occurred`: the event's timestamp as given when XSOAR reads it as it is, else the same instant in
    UTC with microseconds. The schema checks date-times as JSON Schema does (t/z in either case, one trailing line
    break allowed), which XSOAR's reader refuses; the pack's fetch writes `occurred` the same way."""
    if not isinstance(timestamp, str) or STRICT_RFC3339.fullmatch(timestamp):
        return timestamp
    try:
        moment = parse_iso(timestamp).astimezone(timezone.utc)
    except (ValueError, OverflowError):      # not a time this reader takes (a leap second): left as it is
        return timestamp
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
            f"{moment.second:02d}.{moment.microsecond:06d}Z")


#: A date-time Splunk SOAR reads as written, in every version: its models parse times as Django does (upper-case T,
#: up to 6 fraction digits read, Z upper case or an offset). Its own answers spell them 2015-03-21T19:28:13.759000Z.
SOAR_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")


def soar_time(timestamp: Any) -> Any:
    """A container's or artifact's `start_time`: the event's timestamp as given when SOAR reads it as it is, else the
    same instant in UTC with microseconds. RFC 3339 (and so WIA) also allows a lower-case t or z and any number of
    fraction digits; SOAR refuses a z, and a t or more than 12 digits in some versions (HTTP 400: the container
    was never made). Digits past the microsecond are dropped (SOAR keeps microseconds)."""
    if not isinstance(timestamp, str) or SOAR_DATETIME.fullmatch(timestamp):
        return timestamp
    try:
        moment = parse_iso(timestamp).astimezone(timezone.utc)
    except (ValueError, OverflowError):      # not a time this reader takes: left as it is
        return timestamp
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
            f"{moment.second:02d}.{moment.microsecond:06d}Z")


def event_cef(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(cef, cef_types) for the event artifact: CIM-derived fields plus the WIA envelope."""
    fields = convert(event, to="cim")["fields"]
    cef: dict[str, Any] = {}
    types: dict[str, list[str]] = {}
    for cim_field, (key, contains) in CIM_TO_CEF.items():
        value = fields.get(cim_field)
        if value in (None, "", _UNKNOWN) or key in cef:
            continue
        cef[key] = value if not isinstance(value, list) else ", ".join(map(str, value))
        if contains:
            types[key] = contains
    mitre = event.get("mitre") or {}
    extra = {"wiaEventId": event.get("id"), "wiaEventType": event.get("type"), "wiaSeverity": event.get("severity"),
             "wiaSourceName": (event.get("source") or {}).get("name"),
             "mitreTacticId": mitre.get("tactic"), "mitreTechniqueId": mitre.get("sub_technique") or mitre.get("technique"),
             "mitreTechniqueName": mitre.get("sub_technique_name") or mitre.get("technique_name")}
    cef.update({k: v for k, v in extra.items() if v not in (None, "")})
    types.update(wiaEventId=["wia event id"], mitreTechniqueId=["mitre attack technique"])
    return cef, {k: v for k, v in types.items() if k in cef}


def indicator_cef(kind: str, value: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    key, contains = INDICATOR_CEF.get(kind, ("wiaIndicator", [kind]))
    return {key: value}, {key: contains}


def indicators(event: dict[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """(type, value, context) of every indicator: alert/threat-intel indicators and incident IOCs."""
    for ind in view.indicator_entries(event):
        context = ind.get("context") if isinstance(ind.get("context"), str) else ind.get("description")
        yield ind["type"], ind["value"], context if isinstance(context, str) else None


#: cliName of each incident field of the WIA Security content pack (xsoar_pack/Packs/WIASecurity/IncidentFields).
XSOAR_FIELDS = ("wiaeventid", "wiaeventtype", "wiaversion", "wiaseverityscore", "wiasourcetype", "wiasourcename",
                "wiasourcevendor", "wiaconfidence", "wiacorrelationid", "wiamitretacticid", "wiamitretactic",
                "wiamitretechniqueid", "wiamitretechnique", "wiamitresubtechniqueid", "wiamitresubtechnique", "wiastatus",
                "wiaindicators")


def xsoar_custom_fields(event: dict[str, Any]) -> dict[str, Any]:
    """The WIA Security pack's incident fields for an event (the same the pack's incoming mapper sets)."""
    source, mitre, meta = event.get("source") or {}, event.get("mitre") or {}, event.get("meta") or {}
    values = {
        "wiaeventid": event.get("id"), "wiaeventtype": event.get("type"), "wiaversion": event.get("version"),
        "wiaseverityscore": event.get("severity"), "wiasourcetype": source.get("type"),
        "wiasourcename": source.get("name"), "wiasourcevendor": source.get("vendor"),
        "wiaconfidence": meta.get("confidence"), "wiacorrelationid": meta.get("correlation_id"),
        "wiamitretacticid": mitre.get("tactic"), "wiamitretactic": mitre.get("tactic_name"),
        "wiamitretechniqueid": mitre.get("technique"), "wiamitretechnique": mitre.get("technique_name"),
        "wiamitresubtechniqueid": mitre.get("sub_technique"), "wiamitresubtechnique": mitre.get("sub_technique_name"),
        "wiastatus": view.status(event),
        # each once, in the event's order, as the pack's fetch sets it (an indicator listed twice is one entry)
        "wiaindicators": list(dict.fromkeys(f"{kind}:{value}" for kind, value, _ in indicators(event))) or None,
    }
    return {k: v for k, v in values.items() if v not in (None, "")}


def xsoar_labels(event: dict[str, Any]) -> list[dict[str, str]]:
    meta = event.get("meta") or {}
    labels = [{"type": "wia_event_id", "value": str(event.get("id"))}, {"type": "wia_event_type", "value": str(event.get("type"))}]
    labels += [{"type": str(k), "value": str(v)} for k, v in (meta.get("labels") or {}).items()]
    labels += [{"type": "tag", "value": str(t)} for t in meta.get("tags") or []]
    return labels
