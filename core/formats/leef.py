"""LEEF 2.0 (IBM QRadar Log Event Extended Format): one WIA event <-> one LEEF line.

Spec: IBM QRadar "Log Event Extended Format (LEEF) Version 2" guide, sections "LEEF event
components" (header `LEEF:2.0|Vendor|Product|Version|EventID|DelimiterCharacter|`, the delimiter
a single character or its hex value `0x5E`/`x5E`, tab when empty) and "Predefined LEEF event
attributes" (cat, devTime, devTimeFormat, sev 1-10, src, dst, srcPort, dstPort, srcMAC, dstMAC,
proto, usrName, domain, srcBytes, dstBytes, srcPackets, dstPackets, url, resource,
isLoginEvent, isLogoutEvent). The guide asks vendors to keep the delimiter, tab and pipe out of
values but defines no escape; this module escapes with a backslash so any value survives:

    header fields   \\ -> \\\\   | -> \\|        (line breaks cannot be carried: replaced by a space)
    attribute value \\ -> \\\\   <delimiter> -> \\<delimiter>   LF -> \\n   CR -> \\r

`=` needs no escape in a value (a pair splits at its first `=`; keys never hold one); the parser
also accepts `\\=`. The default delimiter is `^` (as in IBM's LEEF 2.0 examples), not tab,
because syslog relays such as rsyslog rewrite tabs to `#011` by default.

The mapping table is in docs/formats/leef.md. What no predefined key holds, and any value a key
holds only approximately, travels under `wia.<path>` keys (see keyvalue.py), so WIA -> LEEF ->
WIA is lossless. A LEEF line from another product parses into an `alert` (see `foreign_event`).
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from ..errors import ConversionError
from ..schemas import EVENT_TYPES
from ..timeutil import now_iso, parse_iso, to_iso
from .keyvalue import (IP, INT64, MAC, PORT, without_trailing_space, check_own_event, check_text_options, text_option_problem, CEF_TIME_FORMATS, INT, TIME_OF_READING, Codec, Field, decode_carried, decode_fields,
                       LineFormat, refuse_quoted, encode_fields, foreign_alert, java_time_format, header_fields, iso_ms, leaves, line_text,
                       odd_backslashes, read_time, syslog_time)

SPEC_VERSION = "2.0"
VENDOR = "WIA"
PRODUCT = "Security"
DEFAULT_DELIMITER = "^"
#: The devTime spelling this module writes: Java SimpleDateFormat, as IBM's own example uses.
DEV_TIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSZ"
#: Characters that cannot be a delimiter: the header separator, part of the escapes, a character of the
#: keys every line holds (`devTime`, `wia.$schema`, `wia.data.alert_id`: a key is never escaped, so such a
#: delimiter cut it and the line read back as another event, or failed), or of the devTime and devTimeFormat
#: values every line carries (QRadar knows no escape: `devTime=2024\-06...` is no time to it), or a line
#: break of any kind (str.splitlines cuts at \v, \f, \x1c-\x1e, \x85, \u2028 and \u2029 as well).
FORBIDDEN_DELIMITERS = frozenset("|\\=\n\r_$.-:+'" + string.ascii_letters + string.digits
                                 + "\v\f\x1c\x1d\x1e\x85\u2028\u2029")


# --- escaping (the only place the format's special characters are handled) -----------------------
def escape_header(value: str) -> str:
    return (value.replace("\\", "\\\\").replace("|", "\\|")
            .replace("\r\n", " ").replace("\n", " ").replace("\r", " "))


def escape_value(value: str, delimiter: str) -> str:
    if "\\" not in value and delimiter not in value and "\n" not in value and "\r" not in value:
        return value                  # the common case: nothing to escape, skip four replace calls
    out = value.replace("\\", "\\\\").replace(delimiter, "\\" + delimiter)
    return out.replace("\n", "\\n").replace("\r", "\\r")


def delimiter_spec(delimiter: str) -> str:
    """The header's delimiter field: printable characters as they are, others in `xHH` hex."""
    check_delimiter(delimiter)
    return delimiter if delimiter.isprintable() and not delimiter.isspace() else f"x{ord(delimiter):02X}"


def check_delimiter(delimiter: Any) -> None:
    problem = delimiter_problem(delimiter)
    if problem is not None:
        raise ConversionError("leef", problem, path="delimiter")


def delimiter_problem(delimiter: Any) -> str | None:
    """Why `delimiter` cannot separate a LEEF line's attributes, None when it can."""
    if (not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in FORBIDDEN_DELIMITERS
            or (ord(delimiter) > 0xFFFF and not delimiter.isprintable())):   # the header spells it in 1-4 hex digits
        return (f"the delimiter must be one character that is no letter, digit, | \\ = _ $ . - : + ' or line break "
                f"(keys and the devTime values hold those) and, if not printable, at most U+FFFF; got {str(delimiter)[:20]!r}")
    return None


def parse_delimiter(spec: str) -> str:
    """Header delimiter field -> the character: `^`, `0x5E`, `x5E` (1-4 hex digits); empty -> tab."""
    if spec == "":
        return "\t"
    if len(spec) == 1:
        return spec
    match = re.fullmatch(r"(?:0x|x)([0-9A-Fa-f]{1,4})", spec)
    if not match:
        raise ConversionError("leef", f"bad delimiter field {spec!r} (one character, 0xHH or xHH)", path="header")
    return chr(int(match.group(1), 16))


# --- codecs specific to LEEF ---------------------------------------------------------------------
def _dev_time(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        moment = parse_iso(value).astimezone(timezone.utc)
    except (ValueError, OverflowError):     # OverflowError: in UTC before year 1 or after 9999; wia.* keeps it
        return None
    return iso_ms(moment) + "+0000"


#: devTime as _dev_time writes it (a year below 1000 is left to strptime: strftime does not pad it).
_OUR_DEV_TIME = re.compile(r"[1-9]\d{3}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", re.ASCII)


def _dev_time_value(text: str) -> Any:
    if _OUR_DEV_TIME.fullmatch(text):
        # Our own spelling (every line this module writes, and every encode checks one): strptime
        # would accept it exactly when the date and time exist, and to_iso would give it back in UTC.
        try:
            datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]),
                     int(text[17:19]))
        except ValueError:
            return text
        return text[:23] + "Z"
    try:
        return to_iso(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z"))
    except ValueError:
        return text


def _sev(value: Any) -> str | None:
    """LEEF sev is an integer 1-10: WIA's 0-10 rounded half up, 0 raised to 1 (exact value carried)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return str(min(10, max(1, int(value + 0.5))))


#: Keys written first, in this order (the rest follow the mapping table, then the `wia.` keys).
FIRST_KEYS = {"devTime": 0, "devTimeFormat": 1, "sev": 2, "cat": 3}

DEV_TIME = Codec(_dev_time, _dev_time_value)
SEV = Codec(_sev, INT.decode)

#: Keys every event type fills from the envelope and context (a type's own table overrides a key).
COMMON: tuple[Field, ...] = (
    Field("devTime", "timestamp", DEV_TIME),
    Field("sev", "severity", SEV),
    Field("usrName", "context.user.name"),
    Field("domain", "context.user.domain"),
    Field("src", "context.network.source.ip", IP),
    Field("srcPort", "context.network.source.port", PORT),
    Field("dst", "context.network.destination.ip", IP),
    Field("dstPort", "context.network.destination.port", PORT),
    Field("proto", "context.network.protocol"),
)

BY_TYPE: dict[str, tuple[Field, ...]] = {
    "alert": (Field("cat", "data.category"),),
    "incident": (Field("cat", "data.category"),),
    "threat_intel": (Field("cat", "data.threat_type"),),
    "vulnerability": (Field("cat", "data.cvss.severity"),),
    "network_event": (
        Field("cat", "data.event_type"),
        Field("src", "data.source.ip", IP), Field("srcPort", "data.source.port", PORT),
        Field("srcMAC", "data.source.mac", MAC),
        Field("dst", "data.destination.ip", IP), Field("dstPort", "data.destination.port", PORT),
        Field("dstMAC", "data.destination.mac", MAC),
        Field("proto", "data.protocol"),
        Field("srcBytes", "data.bytes_sent", INT64), Field("dstBytes", "data.bytes_received", INT64),
        Field("srcPackets", "data.packets_sent", INT64), Field("dstPackets", "data.packets_received", INT64),
        Field("url", "data.url"),
    ),
    "endpoint_event": (
        Field("cat", "data.event_type"),
        Field("usrName", "data.process.user"),
        Field("src", "data.network_connection.local_ip", IP),
        Field("srcPort", "data.network_connection.local_port", PORT),
        Field("dst", "data.network_connection.remote_ip", IP),
        Field("dstPort", "data.network_connection.remote_port", PORT),
        Field("proto", "data.network_connection.protocol"),
    ),
    "auth_event": (
        Field("cat", "data.event_type"),
        Field("usrName", "data.user.name"),
        Field("domain", "data.user.domain"),
        Field("src", "data.source.ip", IP),
        Field("dst", "data.target.ip", IP),
        Field("url", "data.target.url"),
        Field("resource", "data.target.name"),
    ),
}


@lru_cache(maxsize=None)
def fields_for(event_type: str) -> tuple[Field, ...]:
    """The mapping table of one event type: its own keys, then the common keys it does not redefine."""
    own = BY_TYPE.get(event_type, ())
    taken = {f.key for f in own}
    return (*own, *(f for f in COMMON if f.key not in taken))


# --- parsing ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class LeefRecord:
    """One parsed LEEF line: the header fields and the attributes in order of appearance."""

    leef_version: str
    vendor: str
    product: str
    product_version: str
    event_id: str
    delimiter: str
    attributes: dict[str, str] = field(default_factory=dict)
    prefix: str = ""                  # a syslog header before "LEEF:", if any


def split_attributes(text: str, delimiter: str) -> dict[str, str]:
    """`key=value<delimiter>...` -> {key: value}, backslash escapes undone (`\\n`, `\\r`, `\\<any>`).

    A backslash takes the next character whatever it is, so a delimiter or `=` is escaped exactly
    when the run of backslashes before it is odd: split with str methods, then undo the escapes.
    """
    pairs: dict[str, str] = {}
    last: str | None = None
    for segment in _segments(text, delimiter):
        eq = segment.find("=")
        while eq >= 0 and odd_backslashes(segment, eq):
            eq = segment.find("=", eq + 1)
        if eq >= 0:
            last = _unescape(segment[:eq])
            value = _unescape(segment[eq + 1:])
            if pairs.setdefault(last, value) != value:   # keeping either value would drop the other silently
                raise ConversionError("leef", f"the attribute {last[:60]!r} appears twice with different values",
                                      path=f"attributes/{last[:60]}")
        elif segment:
            if last is None:
                raise ConversionError("leef", f"attribute text without a key: {_unescape(segment)[:40]!r}",
                                      path="attributes")
            pairs[last] += delimiter + _unescape(segment)   # a stray delimiter inside a value: keep the text
    return pairs


def _segments(text: str, delimiter: str) -> list[str]:
    """`text` cut at every delimiter no backslash escapes (escapes left in)."""
    if delimiter == "\\":
        # Every backslash with a character after it escapes that character: only a last lone one delimits.
        return [text[:-1]] if odd_backslashes(text, len(text)) else [text]
    pieces = text.split(delimiter)
    if "\\" not in text:
        return pieces
    out: list[str] = []
    joined: list[str] = []             # pieces whose delimiter was escaped, up to the current one
    for piece in pieces:
        joined.append(piece)
        # The delimiter is no backslash, so the run of backslashes before it lies within this piece.
        if not odd_backslashes(piece, len(piece)):
            out.append(delimiter.join(joined))
            joined = []
    if joined:
        out.append(delimiter.join(joined))   # a lone backslash at the very end: kept as written
    return out


_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPED = {"n": "\n", "r": "\r"}


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    return _ESCAPE.sub(lambda match: _ESCAPED.get(match.group(1), match.group(1)), raw)


def split_line(line: str | bytes) -> LeefRecord:
    """Parse one LEEF 1.0 or 2.0 line (an optional syslog header before `LEEF:` is kept as `prefix`)."""
    text = line_text(line, "leef")
    at = text.find("LEEF:")
    if at < 0:
        raise ConversionError("leef", "no 'LEEF:' header in the line", path="header")
    refuse_quoted(text, at, "leef")
    head, end = header_fields(text, at, 5, format_name="leef", escaped=None)
    version = head[0][len("LEEF:"):]
    if version.startswith("2"):
        (spec,), end = header_fields(text, end, 1, format_name="leef", escaped=None)
        delimiter = parse_delimiter(spec)
    elif version.startswith("1"):
        delimiter = "\t"
    else:
        raise ConversionError("leef", f"unsupported LEEF version {version!r}", path="header")
    return LeefRecord(version, head[1], head[2], head[3], head[4], delimiter,
                      split_attributes(text[end:], delimiter), text[:at].rstrip())


# --- the format ------------------------------------------------------------------------------------
class LeefFormat(LineFormat):
    name = "leef"
    title = "LEEF 2.0 (IBM QRadar)"
    spec_version = SPEC_VERSION
    text = True
    can_parse = True
    options = frozenset({"delimiter", "vendor", "product"})

    def option_problem(self, key: str, value: Any) -> str | None:
        if key == "delimiter":
            return delimiter_problem(value)
        return text_option_problem(key, value)

    def from_wia(self, event: dict[str, Any], *, delimiter: str = DEFAULT_DELIMITER, vendor: str = VENDOR,
                 product: str = PRODUCT, **options: Any) -> str:
        check_delimiter(delimiter)
        check_text_options("leef", vendor=vendor, product=product)
        event_type, version = event.get("type"), event.get("version")
        if event_type not in EVENT_TYPES or not isinstance(version, str):
            raise ConversionError("leef", "a WIA event needs a known `type` and a `version`", path="/type")
        pairs, exact = encode_fields(event, fields_for(event_type), "leef")
        pairs.append(("devTimeFormat", DEV_TIME_FORMAT))
        if event_type == "auth_event":
            kind = (event.get("data") or {}).get("event_type")
            if kind == "login_success":
                pairs.append(("isLoginEvent", "true"))
            elif kind == "logout":
                pairs.append(("isLogoutEvent", "true"))
        pairs.sort(key=lambda pair: FIRST_KEYS.get(pair[0], len(FIRST_KEYS)))
        exact |= {("type",), ("version",)}
        pairs.extend(leaves(event, exact, "leef"))
        header = "|".join(("LEEF:" + SPEC_VERSION, escape_header(vendor), escape_header(product),
                           escape_header(version), escape_header(event_type), delimiter_spec(delimiter)))
        return header + "|" + delimiter.join([f"{k}={escape_value(v, delimiter)}" for k, v in pairs])

    def read_line(self, line: Any, *, lenient: bool) -> dict[str, Any]:
        return record_to_wia(split_line(line), lenient=lenient)


_VERSION = re.compile(r"\d+\.\d+\.\d+")


def record_to_wia(record: LeefRecord, *, lenient: bool = False) -> dict[str, Any]:
    """The WIA event a parsed LEEF line holds: exact for lines this module wrote, best effort otherwise."""
    attrs = record.attributes
    if record.event_id not in EVENT_TYPES or not _VERSION.fullmatch(record.product_version) or "wia.id" not in attrs:
        # Not one of ours (every line from_wia writes carries the event id as `wia.id`): another
        # product may well name its EventID "alert" and version itself 1.0.0.
        return foreign_event(record)
    event: dict[str, Any] = {"version": record.product_version, "type": record.event_id}
    fields = fields_for(record.event_id)
    decode_fields(attrs, fields, event)
    decode_carried(attrs, event, "leef")
    return check_own_event(event, attrs, fields, "leef", HEADER_PATHS, lenient=lenient)


#: The WIA paths a line's header carries (Version, EventID).
HEADER_PATHS: frozenset[tuple[str, ...]] = frozenset({("version",), ("type",)})


def foreign_event(record: LeefRecord) -> dict[str, Any]:
    """Another product's LEEF line as a WIA `alert` (keyvalue.foreign_alert): EventID and cat make
    the title, sev the severity, src/dst/srcPort/dstPort/proto/usrName the context, identHostName
    the host, devTime the timestamp; every attribute is kept in `meta.custom.leef`."""
    attrs = without_trailing_space(record.attributes)
    return foreign_alert(
        "leef", vendor=record.vendor, product=record.product, product_version=record.product_version,
        event_id=record.event_id, title=record.event_id + (f" ({attrs['cat']})" if attrs.get("cat") else ""),
        severity=attrs.get("sev"), timestamp=_foreign_time(record), attributes=attrs,
        network=(attrs.get("src"), attrs.get("srcPort"), attrs.get("dst"), attrs.get("dstPort"), attrs.get("proto")),
        user=attrs.get("usrName") or attrs.get("accountName"), host=attrs.get("identHostName"))


def _foreign_time(record: LeefRecord) -> tuple[str, str]:
    """(time, where it came from): devTime as its devTimeFormat (a Java SimpleDateFormat pattern)
    says, else in the spellings the guide names (epoch milliseconds, `MMM dd yyyy HH:mm:ss[.SSS]
    [zzz]`, RFC 3339); a devTime none of these read is refused with a ConversionError naming it,
    never replaced by another time. Without devTime: the syslog header's time, else the time of
    reading, labelled so."""
    attrs = record.attributes
    text = attrs.get("devTime", "")
    if text.strip():
        pattern = java_time_format(attrs.get("devTimeFormat", ""))
        try:
            return read_time(text, ((pattern,) if pattern else ()) + CEF_TIME_FORMATS), "devTime"
        except ValueError as exc:
            raise ConversionError("leef", f"devTime is not a time this reader can place (devTimeFormat "
                                          f"{attrs.get('devTimeFormat', '')[:60]!r}): {exc}",
                                  path="attributes/devTime") from None
    return syslog_time(record.prefix) or (now_iso(), TIME_OF_READING)


__all__ = ["LeefFormat", "LeefRecord", "split_line", "split_attributes", "escape_header", "escape_value",
           "parse_delimiter", "delimiter_spec", "record_to_wia", "DEFAULT_DELIMITER", "DEV_TIME_FORMAT"]
