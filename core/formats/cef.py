"""CEF (ArcSight Common Event Format, as Microsoft Sentinel's CommonSecurityLog reads it): one WIA event <-> one CEF line.

Spec: "Implementing ArcSight Common Event Format (CEF)" (Micro Focus, rev. 25), sections "Header
information" (`CEF:Version|Device Vendor|Device Product|Device Version|Device Event Class ID|Name|
Severity|[Extension]`, Severity 0-10), "Character encoding" (UTF-8) and "ArcSight extension
dictionary" (rt, src, dst, spt, dpt, shost, dhost, smac, dmac, suser, sntdom, proto, act, app,
request, requestMethod, requestClientApplication, in, out, cnt, start, end, msg, cat, outcome,
reason, sproc, spid, fname, filePath, fsize, fileHash, dvchost, deviceDirection,
destinationServiceName, cs1..cs6 with cs1Label..cs6Label, cfp1..cfp2 with labels). Escaping,
exactly as the spec's "Special characters" rules say:

    header fields   \\ -> \\\\   | -> \\|        (a header cannot hold a line break: replaced by a space)
    extension value \\ -> \\\\   = -> \\=   LF -> \\n   CR -> \\r   (pipes and spaces need no escape)

The Name field (at most 512 characters) holds the title; Severity is WIA's 0-10 rounded half up.
Sentinel maps the keys to CommonSecurityLog columns (docs/formats/cef.md lists both names). What
no dictionary key holds travels under `wia.<path>` keys (Sentinel: AdditionalExtensions), so
WIA -> CEF -> WIA is lossless. A CEF line from another product parses into an `alert`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..errors import ConversionError
from ..schemas import EVENT_TYPES
from ..timeutil import now_iso
from .keyvalue import (IP, INT32, INT64, MAC, PORT, cut_to, without_trailing_space, ascii_digits, check_own_event, check_text_options, text_option_problem, EPOCH_MS, INT, NUMBER, Codec, Field, decode_carried, decode_fields, encode_fields,
                       TIME_OF_READING, LineFormat, refuse_quoted, foreign_alert, foreign_time, get_path, header_fields, leaves, line_text, mapping,
                       odd_backslashes, read_time, syslog_time)

CEF_VERSION = "0"
VENDOR = "WIA"
PRODUCT = "Security"
#: The spec's limit on the Name header field.
NAME_MAX = 512
#: Text severities the spec allows besides 0-10 (for parsing other products' lines).
TEXT_SEVERITY = {"unknown": None, "low": 3, "medium": 5, "high": 8, "very-high": 10}


# --- escaping ----------------------------------------------------------------------------------------
def escape_header(value: str) -> str:
    return (value.replace("\\", "\\\\").replace("|", "\\|")
            .replace("\r\n", " ").replace("\n", " ").replace("\r", " "))


def escape_value(value: str) -> str:
    if "\\" not in value and "=" not in value and "\n" not in value and "\r" not in value:
        return value                  # the common case: nothing to escape, skip four replace calls
    return value.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")


_UNESCAPE = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}
_ESCAPE = re.compile(r"\\([\\=nr])")


def unescape_value(text: str) -> str:
    """The spec's four escapes undone; any other backslash pair is kept as written."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda match: _UNESCAPE[match.group(1)], text)


# --- codecs and the mapping table --------------------------------------------------------------------
def _severity(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return str(min(10, max(0, int(value + 0.5))))


SEVERITY = Codec(_severity, INT.decode)
DIRECTION = mapping({"inbound": "0", "outbound": "1"})   # the spec's deviceDirection values

#: Labels of the custom string/number slots (a line carries `csNLabel=<label>` beside each `csN`).
LABELS: dict[str, str] = {"cs1": "wiaEventId", "cs2": "mitreTactic", "cs3": "mitreTechnique",
                          "cs4": "mitreSubTechnique", "cs5": "correlationId", "cfp1": "confidence"}
#: cs6 and cfp2 hold one type-specific value each.
TYPE_LABELS: dict[str, dict[str, str]] = {
    "alert": {"cs6": "alertId"}, "incident": {"cs6": "incidentId"}, "threat_intel": {"cs6": "reportId"},
    "vulnerability": {"cs6": "cve", "cfp2": "cvssScore"}, "network_event": {"cs6": "ruleMatched"},
    "endpoint_event": {"cs6": "commandLine"}, "auth_event": {"cs6": "sessionId"},
}

COMMON: tuple[Field, ...] = (
    Field("rt", "timestamp", EPOCH_MS),
    Field("cs1", "id"),
    Field("cs2", "mitre.tactic"), Field("cs3", "mitre.technique"), Field("cs4", "mitre.sub_technique"),
    Field("cs5", "meta.correlation_id"),
    Field("cfp1", "meta.confidence", NUMBER),
    Field("dvchost", "context.host.hostname"),
    Field("suser", "context.user.name"), Field("sntdom", "context.user.domain"),
    Field("src", "context.network.source.ip", IP), Field("spt", "context.network.source.port", PORT),
    Field("shost", "context.network.source.hostname"),
    Field("dst", "context.network.destination.ip", IP), Field("dpt", "context.network.destination.port", PORT),
    Field("dhost", "context.network.destination.hostname"),
    Field("proto", "context.network.protocol"),
    Field("deviceDirection", "context.network.direction", DIRECTION),
)

BY_TYPE: dict[str, tuple[Field, ...]] = {
    "alert": (Field("cat", "data.category"), Field("cs6", "data.alert_id"), Field("msg", "data.description"),
              Field("cnt", "data.count", INT32), Field("start", "data.first_seen", EPOCH_MS),
              Field("end", "data.last_seen", EPOCH_MS)),
    "incident": (Field("cat", "data.category"), Field("cs6", "data.incident_id"), Field("msg", "data.description"),
                 Field("start", "data.created_at", EPOCH_MS), Field("end", "data.closed_at", EPOCH_MS)),
    "threat_intel": (Field("cat", "data.threat_type"), Field("cs6", "data.report_id"),
                     Field("start", "data.first_seen", EPOCH_MS), Field("end", "data.last_seen", EPOCH_MS)),
    "vulnerability": (Field("cat", "data.cvss.severity"), Field("cs6", "data.vuln_id"),
                      Field("msg", "data.description"), Field("cfp2", "data.cvss.score", NUMBER)),
    "network_event": (
        Field("cat", "data.event_type"),
        Field("src", "data.source.ip", IP), Field("spt", "data.source.port", PORT), Field("shost", "data.source.hostname"),
        Field("smac", "data.source.mac", MAC),
        Field("dst", "data.destination.ip", IP), Field("dpt", "data.destination.port", PORT),
        Field("dhost", "data.destination.hostname"), Field("dmac", "data.destination.mac", MAC),
        Field("proto", "data.protocol"), Field("deviceDirection", "data.direction", DIRECTION),
        Field("act", "data.action"), Field("out", "data.bytes_sent", INT64), Field("in", "data.bytes_received", INT64),
        Field("app", "data.application"), Field("request", "data.url"),
        Field("requestMethod", "data.http.method"), Field("requestClientApplication", "data.http.user_agent"),
        Field("cs6", "data.rule_matched"),
    ),
    "endpoint_event": (
        Field("cat", "data.event_type"), Field("dvchost", "data.host.hostname"),
        Field("suser", "data.process.user"), Field("sproc", "data.process.name"),
        Field("spid", "data.process.pid", INT32), Field("cs6", "data.process.command_line"),
        Field("fname", "data.file.name"), Field("filePath", "data.file.path"), Field("fsize", "data.file.size", INT64),
        Field("fileHash", "data.file.hash.sha256"),
        Field("src", "data.network_connection.local_ip", IP), Field("spt", "data.network_connection.local_port", PORT),
        Field("dst", "data.network_connection.remote_ip", IP), Field("dpt", "data.network_connection.remote_port", PORT),
        Field("proto", "data.network_connection.protocol"),
    ),
    "auth_event": (
        Field("cat", "data.event_type"), Field("suser", "data.user.name"), Field("sntdom", "data.user.domain"),
        Field("src", "data.source.ip", IP), Field("shost", "data.source.hostname"),
        Field("requestClientApplication", "data.source.user_agent"),
        Field("dst", "data.target.ip", IP), Field("destinationServiceName", "data.target.name"),
        Field("request", "data.target.url"), Field("outcome", "data.result"), Field("reason", "data.failure_reason"),
        Field("cs6", "data.session_id"), Field("cnt", "data.attempt_count", INT32),
    ),
}

#: The WIA field the Name header carries, for types whose title is required (others get a made-up name).
NAME_PATHS: dict[str, tuple[str, ...]] = {
    "alert": ("data", "title"), "incident": ("data", "title"), "vulnerability": ("data", "title"),
    "threat_intel": ("data", "threat_name"),
}


#: The ArcSight extension dictionary's lengths of the string keys this module fills (CEF 0.1 rows).
KEY_LENGTHS: dict[str, int] = {
    "act": 63, "app": 31, "cat": 1023, "destinationServiceName": 1023, "dhost": 1023, "dvchost": 100, "fileHash": 255,
    "filePath": 1023, "fname": 1023, "msg": 1023, "outcome": 63, "proto": 31, "reason": 1023, "request": 1023,
    "requestClientApplication": 1023, "requestMethod": 1023, "shost": 1023, "sntdom": 255, "sproc": 1023,
    "suser": 1023, **{f"cs{n}": 4000 for n in range(1, 7)},
}


@lru_cache(maxsize=None)
def fields_for(event_type: str) -> tuple[Field, ...]:
    """The type's own rows, then the common rows it does not redefine; a key the dictionary gives a length
    holds at most that many characters of its value (the whole value then travels as `wia.`)."""
    own = BY_TYPE.get(event_type, ())
    taken = {f.key for f in own}
    return tuple(f if f.key not in KEY_LENGTHS else Field(f.key, f.path, cut_to(f.codec, KEY_LENGTHS[f.key]))
                 for f in (*own, *(f for f in COMMON if f.key not in taken)))


def _made_up_name(event: dict[str, Any]) -> str:
    """A Name for types without a title: the rule that matched, else the event kind and protocol."""
    data = event.get("data") or {}
    parts = [data.get("rule_matched")] if data.get("rule_matched") else [
        data.get("event_type"), data.get("protocol"), data.get("result"), (data.get("user") or {}).get("name")]
    return " ".join(str(p) for p in parts if p) or str(event.get("type"))


# --- parsing -------------------------------------------------------------------------------------------
@dataclass(slots=True)
class CefRecord:
    cef_version: str
    vendor: str
    product: str
    product_version: str
    event_class_id: str
    name: str
    severity: str
    extension: dict[str, str] = field(default_factory=dict)
    prefix: str = ""


_KEY = re.compile(r"[^\s=\\]+$")


@lru_cache(maxsize=1024)
def _is_key(name: str) -> bool:
    """Whether `name` can be an extension key (cached: the same keys recur line after line; the
    caller checks a word longer than 128 characters uncached, so the cache never holds megabytes)."""
    return _KEY.match(name) is not None


def split_extension(text: str) -> dict[str, str]:
    """`key=value key2=value with spaces` -> {key: value}; a key is the word before an unescaped `=`.

    One pass over the `=`s: each one that has a key ends the previous key's value. Here a backslash
    takes any next character, so an `=` is escaped exactly when the backslashes before it are odd.
    """
    pairs: dict[str, str] = {}
    has_tab = "\t" in text          # most lines have none: one rfind per '=' instead of two
    has_escape = "\\" in text
    key: str | None = None          # the key whose value is being read
    value_at = 0
    eq = previous = -1              # previous: the '=' before this one (a key holds none)
    while (eq := text.find("=", eq + 1)) >= 0:
        # The space before a key is looked for only back to the previous '=': looking further made
        # a value of many unescaped '=' and no space quadratic.
        low, previous = previous + 1, eq
        if has_escape and odd_backslashes(text, eq):
            continue                                   # an escaped '='
        space = text.rfind(" ", low, eq)
        if has_tab:
            space = max(space, text.rfind("\t", low, eq))
        if space < 0 < low:
            continue                                   # the word before this '=' touches another '='
        name = text[space + 1:eq]
        if not name or not (_is_key(name) if len(name) <= 128 else _KEY.match(name)):
            continue                                   # an '=' inside a value that was not escaped
        if key is not None:
            value = unescape_value(text[value_at:space])
            if pairs.setdefault(key, value) != value:
                raise _duplicate(key)
        elif text[:space + 1].strip():
            raise ConversionError("cef", f"extension text before the first key: {text[:space + 1][:40]!r}",
                                  path="extension")
        key, value_at = name, eq + 1
    if key is None:
        if text.strip():
            raise ConversionError("cef", f"extension without any key=value pair: {text[:40]!r}", path="extension")
    else:
        value = unescape_value(text[value_at:])
        if pairs.setdefault(key, value) != value:
            raise _duplicate(key)
    return pairs


def _duplicate(key: str) -> ConversionError:
    """A key given twice with different values: keeping either would drop the other silently."""
    return ConversionError("cef", f"the key {key[:60]!r} appears twice with different values", path=f"extension/{key[:60]}")


def split_line(line: str | bytes) -> CefRecord:
    """Parse one CEF line (an optional syslog header before `CEF:` is kept as `prefix`)."""
    text = line_text(line, "cef")
    at = text.find("CEF:")
    if at < 0:
        raise ConversionError("cef", "no 'CEF:' header in the line", path="header")
    refuse_quoted(text, at, "cef")
    head, end = header_fields(text, at, 7, format_name="cef", escaped="\\|", after=" after 'CEF:'")
    version, vendor, product, product_version, class_id, name, severity = head
    return CefRecord(version[len("CEF:"):], vendor, product, product_version, class_id, name, severity,
                     split_extension(text[end:]), text[:at].rstrip())


# --- the format -------------------------------------------------------------------------------------------
class CefFormat(LineFormat):
    name = "cef"
    title = "CEF (ArcSight Common Event Format; Sentinel CommonSecurityLog)"
    spec_version = CEF_VERSION
    text = True
    can_parse = True
    options = frozenset({"vendor", "product"})

    def option_problem(self, key: str, value: Any) -> str | None:
        return text_option_problem(key, value)

    def from_wia(self, event: dict[str, Any], *, vendor: str = VENDOR, product: str = PRODUCT,
                 **options: Any) -> str:
        check_text_options("cef", vendor=vendor, product=product)
        event_type, version = event.get("type"), event.get("version")
        if event_type not in EVENT_TYPES or not isinstance(version, str):
            raise ConversionError("cef", "a WIA event needs a known `type` and a `version`", path="/type")
        pairs, exact = encode_fields(event, fields_for(event_type), "cef")
        labels = {**LABELS, **TYPE_LABELS.get(event_type, {})}
        used = {key for key, _ in pairs}
        pairs += [(f"{slot}Label", label) for slot, label in labels.items() if slot in used]
        severity = event.get("severity")
        sev_text = _severity(severity)
        if sev_text is None:
            raise ConversionError("cef", "severity must be a number 0-10", path="/severity")
        if _same_number(int(sev_text), severity):
            exact.add(("severity",))
        name_path = NAME_PATHS.get(event_type)
        if name_path is not None:
            title = get_path(event, name_path)
            name = _trim_escape(escape_header(title)[:NAME_MAX]) if isinstance(title, str) else ""
            if isinstance(title, str) and unescape_header(name) == title:
                exact.add(name_path)
        else:
            name = _trim_escape(escape_header(_made_up_name(event))[:NAME_MAX])
        exact |= {("type",), ("version",)}
        pairs.extend(leaves(event, exact, "cef"))
        header = "|".join(("CEF:" + CEF_VERSION, escape_header(vendor), escape_header(product),
                           escape_header(version), escape_header(event_type), name, sev_text))
        return header + "|" + " ".join([f"{key}={escape_value(value)}" for key, value in pairs])

    def read_line(self, line: Any, *, lenient: bool) -> dict[str, Any]:
        return record_to_wia(split_line(line), lenient=lenient)


_HEADER_ESCAPE = re.compile(r"\\([\\|])")


def unescape_header(text: str) -> str:
    return _HEADER_ESCAPE.sub(r"\1", text)


def _trim_escape(name: str) -> str:
    """A Name cut at NAME_MAX must not end inside an escape (an odd run of trailing backslashes)."""
    trailing = len(name) - len(name.rstrip("\\"))
    return name[:-1] if trailing % 2 else name


def _same_number(a: int, b: Any) -> bool:
    return type(a) is type(b) and a == b


_VERSION = re.compile(r"\d+\.\d+\.\d+")


def record_to_wia(record: CefRecord, *, lenient: bool = False) -> dict[str, Any]:
    """The WIA event a parsed CEF line holds: exact for lines this module wrote, best effort otherwise."""
    ext = record.extension
    if (record.event_class_id not in EVENT_TYPES or not _VERSION.fullmatch(record.product_version)
            or ext.get("cs1Label") != LABELS["cs1"]):
        # Not one of ours (every line from_wia writes carries the event id as cs1 "wiaEventId"): PAN-OS,
        # for one, writes `|11.0.0|vulnerability|THREAT|`, a WIA type and a version in the same places.
        return foreign_event(record)
    event: dict[str, Any] = {"version": record.product_version, "type": record.event_class_id}
    if not ascii_digits(record.severity):      # str.isdigit also takes '²' (int() refuses it) and '٣'
        raise ConversionError("cef", f"Severity {record.severity[:40]!r} is not a whole number 0-10", path="header")
    event["severity"] = int(record.severity)
    name_path = NAME_PATHS.get(record.event_class_id)
    if name_path is not None:
        event.setdefault("data", {})[name_path[1]] = record.name
    fields = fields_for(record.event_class_id)
    decode_fields(ext, fields, event)
    decode_carried(ext, event, "cef")                  # it reads only the `wia.` keys
    return check_own_event(event, ext, fields, "cef", header_paths(record.event_class_id), lenient=lenient)


@lru_cache(maxsize=None)
def header_paths(event_type: str) -> frozenset[tuple[str, ...]]:
    """The WIA paths a line's header carries (Device Version, Device Event Class ID, Severity, Name)."""
    name_path = NAME_PATHS.get(event_type)
    return frozenset({("version",), ("type",), ("severity",), *((name_path,) if name_path else ())})


def foreign_event(record: CefRecord) -> dict[str, Any]:
    """Another product's CEF line as a WIA `alert` (keyvalue.foreign_alert): Name is the title, the
    Device Event Class ID the alert id; csN values are kept under their csNLabel names too; the time
    as `foreign_timestamp` finds it."""
    ext = without_trailing_space(record.extension)
    for slot in [k for k in ext if re.fullmatch(r"(cs|cn|cfp|c6a|flexString|deviceCustomDate)\d", k)]:
        label = ext.get(slot + "Label")
        if label:
            ext.setdefault(label, ext[slot])
    severity = record.severity
    if not ascii_digits(severity):
        mapped = TEXT_SEVERITY.get(severity.lower())
        severity = str(mapped) if mapped is not None else ""
    direction = {"0": "inbound", "1": "outbound"}.get(ext.get("deviceDirection", ""))
    return foreign_alert(
        "cef", vendor=record.vendor, product=record.product, product_version=record.product_version,
        event_id=record.event_class_id, title=record.name, severity=severity, timestamp=foreign_timestamp(record),
        attributes=ext,
        network=(ext.get("src") or ext.get("c6a2"), ext.get("spt"), ext.get("dst") or ext.get("c6a3"), ext.get("dpt"),
                 ext.get("proto")),
        user=ext.get("suser") or ext.get("duser"), hosts=(ext.get("shost"), ext.get("dhost")),
        direction=direction, hashes=(ext.get("fileHash"), ext.get("oldFileHash")))


#: The spec's time keys, the event's own first (rt = deviceReceiptTime), as short or full names.
TIME_KEYS = ("rt", "deviceReceiptTime", "end", "endTime", "start", "startTime")
#: Vendor keys that hold the event time as epoch digits (FortiOS: nanoseconds since 6.2).
VENDOR_TIME_KEYS = ("FTNTFGTeventtime",)


def foreign_timestamp(record: CefRecord) -> tuple[str, str]:
    """(time, where it came from) of another product's line: the first spec time key present
    (`rt`, else `end`, else `start`), read in any spelling the spec allows (epoch ms, `MMM dd [yyyy]
    HH:mm:ss[.SSS][ zzz]`, zzz a zone name or a numeric offset) or refused with a ConversionError
    naming the key, never replaced by another time; else a vendor key (FTNTFGTeventtime); else
    the syslog header's time; else the time of reading, labelled so."""
    ext = record.extension
    for key in TIME_KEYS:
        text = ext.get(key, "")
        if text.strip():
            try:
                return read_time(text), key
            except ValueError as exc:
                raise ConversionError("cef", f"{key} is not a time this reader can place: {exc}",
                                      path=f"extension/{key}") from None
    for key in VENDOR_TIME_KEYS:
        if moment := foreign_time(ext.get(key)):
            return moment, key
    return syslog_time(record.prefix) or (now_iso(), TIME_OF_READING)


__all__ = ["CefFormat", "CefRecord", "split_line", "split_extension", "escape_header", "escape_value",
           "unescape_value", "record_to_wia", "NAME_MAX"]
