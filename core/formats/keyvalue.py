"""Shared machinery of the key=value line formats (LEEF, CEF): mapping tables, lossless carry-over, schema types.

A line format maps some WIA fields onto the product's predefined keys (`src`, `dpt`, `usrName`...)
through a `Field` table. Everything else, and any mapped value the product key cannot carry
exactly (severity 7.5 -> `sev=8`, a second host IP), travels under a `wia.<dotted.path>` key, so
`WIA -> line -> WIA` returns the same event. The value spelling of a `wia.` key is chosen by the
WIA schema at that path: strings as they are, numbers and booleans as JSON literals, arrays and
free-form objects (`meta.labels`, `meta.custom`) as JSON text. The parser reads the same schema to
undo it, so "5" (a string field) and 5 (a number field) never get confused.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any, Callable, Iterable, Sequence

from .. import schemas
from .._version import WIA_VERSION
from ..errors import ConversionError
from ..severity import BAND_PRIORITY, band
from ..timeutil import parse_iso
from ..validation.nodes import Node, load_node
from ._own_event import checked
from .base import Format, MemberOutcome, all_or_nothing, guarded_members, read_member
from ._wia_paths import compact_json, ip_version

#: Prefix of the keys that carry WIA fields no predefined key holds.
CARRY_PREFIX = "wia."
#: Key holding top-level members the schema does not define (allowed: no additionalProperties).
EXTRA_KEY = "wia.extra"
_NAME = re.compile(r"^[A-Za-z0-9_$]+$")
_MISSING = object()
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)

Path = tuple[str, ...]


def header_fields(text: str, start: int, count: int, *, format_name: str, escaped: str | None,
                  after: str = "") -> tuple[list[str], int]:
    """`count` pipe-terminated header fields from `start`, and the offset after them. A backslash
    escapes the next character when it is in `escaped` (any character when None; else `escaped`
    must hold the backslash and the pipe)."""
    # A backslash always escapes a following backslash or pipe, so a pipe ends a field exactly
    # when the run of backslashes before it is even: find the pipes, then undo the escapes.
    unescape = _escape_pattern(escaped)
    fields: list[str] = []
    i = start
    while len(fields) < count:
        bar = text.find("|", i)
        while bar >= 0 and odd_backslashes(text, bar, i):
            bar = text.find("|", bar + 1)
        if bar < 0:
            raise ConversionError(format_name, f"the {format_name.upper()} header needs {count} '|'-terminated "
                                               f"fields{after}, found {len(fields)}", path="header")
        field = text[i:bar]
        fields.append(unescape.sub(r"\1", field) if "\\" in field else field)
        i = bar + 1
    return fields, i


@lru_cache(maxsize=None)
def _escape_pattern(escaped: str | None) -> re.Pattern[str]:
    return re.compile(r"\\(.)" if escaped is None else r"\\([" + re.escape(escaped) + "])", re.DOTALL)


def odd_backslashes(text: str, at: int, start: int = 0) -> bool:
    """Whether the character at `at` is escaped: the run of backslashes before it (not looking
    before `start`, where scanning began) is odd, each backslash having taken the next character."""
    i = at
    while i > start and text[i - 1] == "\\":
        i -= 1
    return (at - i) % 2 == 1




def text_option_problem(key: str, value: Any) -> str | None:
    """Why a header option (`vendor`, `product`) will not do, None when it will: it must be text
    (`--option vendor:=5` gave an int, and the writer died on it with an AttributeError)."""
    if key in ("vendor", "product") and not isinstance(value, str):
        return f"must be text (got {type(value).__name__})"
    return None


def check_text_options(format_name: str, **options: Any) -> None:
    for key, value in options.items():
        if (problem := text_option_problem(key, value)) is not None:
            raise ConversionError(format_name, f"the option {key} {problem}", path=key)


def ascii_digits(text: str) -> bool:
    """Whether `text` is digits 0-9 only: str.isdigit also takes '²' (which int() refuses) and other
    scripts' digits ('٨٠'), which no CEF or LEEF number is written in."""
    return text.isascii() and text.isdigit()


#: A severity another product wrote as a number (`7`, `7.5`, `-1`); 'nan', 'inf', '1e5' are no severity.
_SEVERITY_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def without_trailing_space(pairs: dict[str, str]) -> dict[str, str]:
    """A copy of another product's pairs without the whitespace after the line's last value: a sender or
    relay leaves it there (`dst=10.0.0.2\t`, `proto=TCP `) and it belongs to no value (Elasticsearch's CEF
    processor trims it too). Not for lines in this project's own layout, whose last value is exact."""
    out = dict(pairs)
    if out:
        last = next(reversed(out))
        out[last] = out[last].rstrip()
    return out


def line_text(line: Any, format_name: str) -> str:
    """One line as text: bytes must be UTF-8 (both specs say so); the line break is taken off."""
    if isinstance(line, (bytes, bytearray)):
        try:
            line = bytes(line).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConversionError(format_name, f"the line is not UTF-8 (byte {exc.start})", path="line") from None
    if not isinstance(line, str):
        raise ConversionError(format_name, f"a line must be text, got {type(line).__name__}", path="line")
    return line.rstrip("\r\n")


def refuse_quoted(text: str, at: int, format_name: str) -> None:
    """Refuses a line that is a quoted string holding a line (`"CEF:0|...",` as a pretty-printed JSON list
    of lines has them when read one line at a time, or a CSV cell): read as is, the quote would be a syslog
    prefix, the last key's value would end with `"` or `",` and JSON escapes would be kept as text. `at`:
    where the header starts in `text`."""
    if text[:at].strip() == '"' and text.rstrip().endswith(('"', '",')):
        upper = format_name.upper()
        raise ConversionError(format_name, f"the line is a quoted string (a line of a JSON list of lines, or of a CSV "
                              f"export?), not a {upper} line: its quotes and escapes would be read as {upper} text; give "
                              f"one {upper} line per line, or read a JSON list with parse(doc, from_={format_name!r})",
                              path="line")


class LineFormat(Format):
    """A format of one text line per event (CEF, LEEF): `read_line` reads one; a JSON list of lines is read line
    by line."""

    def read_line(self, line: Any, *, lenient: bool) -> dict[str, Any]:
        raise NotImplementedError

    def to_wia(self, doc: Any, **options: Any) -> list[dict[str, Any]]:
        """One line, or a JSON list of lines (the first line that fails raises, its path starting with
        its index: `/3/extension/cnt`)."""
        return all_or_nothing(self.to_wia_each(doc, **options))

    @guarded_members
    def to_wia_each(self, doc: Any, *, lenient: bool = False, **options: Any) -> list[MemberOutcome]:
        """As `to_wia`, one outcome per line of a list (at `/<index>`), so one line that cannot be read
        refuses only itself. `lenient`: a line in this project's own layout may carry null for an absent
        optional member."""
        return line_members(self, doc, lambda line: self.read_line(line, lenient=lenient))


def line_members(fmt: Format, doc: Any, read_line: Callable[[Any], dict[str, Any]]) -> list[MemberOutcome]:
    """The outcomes of a document: one line (one outcome; a refusal's path is the line's own:
    `extension/cnt`, `header`, `/data/incident_id`), or a JSON list of lines, read line by line so one bad
    line refuses only itself: its outcome is at `/<index>` and its refusal's path starts there
    (`/3/extension/cnt`, `/3/header`, `/3/data/incident_id`; `/3` for an item that is no text)."""
    if not isinstance(doc, list):
        try:
            return [MemberOutcome("", [read_line(doc)])]
        except ConversionError as exc:
            return [MemberOutcome(exc.path, error=exc)]
    return [read_member(fmt, f"/{index}", line, functools.partial(_list_line, fmt, read_line, line, f"/{index}"))
            for index, line in enumerate(doc)]


def _list_line(fmt: Format, read_line: Callable[[Any], dict[str, Any]], line: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(line, (str, bytes, bytearray)):
        raise ConversionError(fmt.name, f"a line must be text, got {type(line).__name__}", path=where)
    try:
        return [read_line(line)]
    except ConversionError as exc:          # the path in the list the caller sent
        inner = exc.path if exc.path.startswith("/") else f"/{exc.path}" if exc.path else ""
        raise ConversionError(fmt.name, exc.reason, path=where + inner) from exc


# --- codecs: WIA value <-> key text ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Codec:
    encode: Callable[[Any], str | None]     # None: this value has no spelling under the key
    decode: Callable[[str], Any]


def _int_text(value: Any) -> str | None:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _int_value(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def _number_text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return json.dumps(value)


def _number_value(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else text


def epoch_ms_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        moment = parse_iso(value)
    except ValueError:
        return None
    return str((moment - EPOCH) // _MS)


def epoch_ms_value(text: str) -> Any:
    try:
        return iso_ms(EPOCH + _MS * int(text)) + "Z"       # = to_iso(...)
    except (ValueError, OverflowError, OSError):
        return text


def iso_ms(moment: datetime) -> str:
    """A UTC `moment` as `YYYY-MM-DDTHH:MM:SS.mmm`, as to_iso spells it before the Z (isoformat: much faster
    than strftime, which also writes the year 1 as "1", not "0001")."""
    return moment.isoformat(timespec="milliseconds")[:23]


def first_item(codec: "Codec") -> Codec:
    """The first element of a list under a single-valued key; the rest travels as `wia.` carry-over."""
    def encode(value: Any) -> str | None:
        return codec.encode(value[0]) if isinstance(value, list) and value else None
    return Codec(encode, lambda text: [codec.decode(text)])


def mapping(table: dict[str, str]) -> Codec:
    """An enumerated value renamed (WIA `inbound` -> CEF `0`)."""
    back = {v: k for k, v in table.items()}
    return Codec(lambda value: table.get(value) if isinstance(value, str) else None,
                 lambda text: back.get(text, text))


def _port_text(value: Any) -> str | None:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535 else None


#: A MAC address as both specs write one: six colon-separated hex pairs (CEF "00:0D:60:AF:1B:61").
_MAC = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}", re.ASCII)

TEXT = Codec(lambda value: value if isinstance(value, str) else None, lambda text: text)
INT = Codec(_int_text, _int_value)
#: Keys typed as an IP address, a MAC address or a port by the specs (CEF src/dst/smac/spt, LEEF
#: src/srcMAC/srcPort): a value that is none (a host name in `src`, port 70000) is left out of the key,
#: where consumers refuse it (Elasticsearch's CEF processor fails the whole line on a bad IP), and
#: travels under its `wia.` key.
IP = Codec(lambda value: value if ip_version(value) else None, lambda text: text)
MAC = Codec(lambda value: value if isinstance(value, str) and _MAC.fullmatch(value) else None, lambda text: text)
PORT = Codec(_port_text, _int_value)


def _ranged(low: int, high: int) -> Codec:
    def encode(value: Any) -> str | None:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high else None
    return Codec(encode, _int_value)


#: Integer keys as the dictionaries type them (CEF cnt/spid Integer, in/out/fsize Long; LEEF srcBytes...):
#: a number outside the range (the WIA schema sets none) would overflow the consumer's field (Elasticsearch's
#: CEF processor fails the whole line on cnt=3000000000), so it travels under its `wia.` key only.
INT32 = _ranged(-2**31, 2**31 - 1)
INT64 = _ranged(-2**63, 2**63 - 1)


def cut_to(codec: Codec, length: int) -> Codec:
    """`codec` with its text cut to `length` UTF-16 code units (a CEF dictionary key's length, counted as Java
    counts a String; a pair is not split): the key keeps the value's start, and since the text then decodes to
    another value, the whole value travels under its `wia.` key."""
    encode = codec.encode

    def cut_encode(value: Any) -> str | None:
        text = encode(value)
        if text is None or len(text) * 2 <= length or (len(text) <= length and (text.isascii() or max(text) <= "\uffff")):
            return text                   # the common case: short, or no character outside the BMP
        units = text.encode("utf-16-le", "surrogatepass")[:2 * length].decode("utf-16-le", "surrogatepass")
        last = len(units) - 1          # a high surrogate there that the text does not have: a pair was cut in two
        return units[:-1] if last >= 0 and "\ud800" <= units[last] <= "\udbff" and text[last] != units[last] else units
    return Codec(cut_encode, codec.decode)
NUMBER = Codec(_number_text, _number_value)
EPOCH_MS = Codec(epoch_ms_text, epoch_ms_value)


@dataclass(frozen=True, slots=True)
class Field:
    """One row of a mapping table: the product key, the WIA path it holds, and how it is spelled."""

    key: str
    path: str
    codec: Codec = TEXT
    parts: Path = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(self.path.split(".")))


# --- schema lookups ------------------------------------------------------------------------------
def _parts(node: Node) -> list[Node]:
    out = [node]
    for sub in node.all_of:
        out += _parts(sub)
    return out


@lru_cache(maxsize=None)
def _root(event_type: str | None) -> tuple[Node, ...]:
    return tuple(_parts(load_node(schemas.schema_uri(event_type if event_type in schemas.EVENT_TYPES else None))))


def _child(nodes: tuple[Node, ...], name: str) -> tuple[Node, ...]:
    out: list[Node] = []
    for node in nodes:
        if name in node.properties:
            out += _parts(node.properties[name])
    return tuple(out)


def _types(nodes: tuple[Node, ...]) -> tuple[str, ...]:
    return next((node.types for node in nodes if node.types), ())


class _Level:
    """The schema at one path, with what the encoder asks of it worked out once: every event walks
    the same paths, and rebuilding the name sets per value was most of the encoder's time."""

    __slots__ = ("names", "walkable", "string", "children")

    def __init__(self, nodes: tuple[Node, ...]) -> None:
        self.names = frozenset(name for node in nodes for name in node.properties)
        # The members an object is walked by: named by the schema and fit for a dotted key.
        self.walkable = frozenset(name for name in self.names if _NAME.match(name))
        self.string = "string" in _types(nodes)
        self.children = _Children(nodes)


class _Children(dict[str, _Level]):
    """Member name -> its _Level, made on first use (a plain dict lookup after that)."""

    __slots__ = ("nodes",)

    def __init__(self, nodes: tuple[Node, ...]) -> None:
        super().__init__()
        self.nodes = nodes

    def __missing__(self, name: str) -> _Level:
        level = self[name] = _level(_child(self.nodes, name))
        return level


@lru_cache(maxsize=None)
def _level(nodes: tuple[Node, ...]) -> _Level:
    """One _Level per distinct set of schema nodes (so a recursive schema still gives finitely many)."""
    return _Level(nodes)


@lru_cache(maxsize=4096)
def schema_types(event_type: str | None, path: Path) -> tuple[str, ...]:
    """The JSON types the schema allows at `path` for this event type (() when it says nothing)."""
    nodes = _root(event_type)
    for name in path:
        nodes = _child(nodes, name)
        if not nodes:
            return ()
    return _types(nodes)


# --- WIA event -> flat key/value pairs -------------------------------------------------------------
def get_path(event: dict[str, Any], path: Path) -> Any:
    node: Any = event
    for name in path:
        if not isinstance(node, dict) or name not in node:
            return _MISSING
        node = node[name]
    return node


def set_path(event: dict[str, Any], path: Path, value: Any) -> None:
    node = event
    for name in path[:-1]:
        node = node.setdefault(name, {})
    node[path[-1]] = value


def carry_text(string: bool, path: Path, value: Any, format_name: str) -> str:
    """The spelling of one `wia.` value: raw text where the schema says string, JSON otherwise."""
    if string:
        if not isinstance(value, str):
            raise ConversionError(format_name, f"expected a string, got {type(value).__name__}",
                                  path="/" + "/".join(path))
        return value
    return compact_json(value)


def leaves(event: dict[str, Any], skip: set[Path], format_name: str) -> list[tuple[str, str]]:
    """`(wia.<path>, text)` for every value of the event not in `skip` (already carried exactly).

    Objects whose members the schema names are walked member by member; arrays and free-form
    objects go whole as JSON. Top-level members the schema does not name go together under EXTRA_KEY.
    """
    event_type = event.get("type") if isinstance(event.get("type"), str) else None
    root = _level(_root(event_type))
    known = root.names
    extra = {k: v for k, v in event.items() if k not in known}
    out: list[tuple[str, str]] = []
    _walk(root, (), CARRY_PREFIX, ((k, v) for k, v in event.items() if k in known), skip, format_name, out)
    if extra:
        out.append((EXTRA_KEY, compact_json(extra)))
    return out


def _walk(level: _Level, path: Path, prefix: str, members: Iterable[tuple[str, Any]], skip: set[Path],
          format_name: str, out: list[tuple[str, str]]) -> None:
    """Append the leaves of an object's members to `out`; `prefix` is the key of `path` plus a dot."""
    for name, value in members:
        sub_path = (*path, name)
        if value is None or sub_path in skip:
            continue                     # null = absent, as lenient validation reads it
        sub_level = level.children[name]
        if isinstance(value, dict) and value and value.keys() <= sub_level.walkable:
            _walk(sub_level, sub_path, prefix + name + ".", value.items(), skip, format_name, out)
        else:
            out.append((prefix + name, carry_text(sub_level.string, sub_path, value, format_name)))


# --- the mapping table, both ways -----------------------------------------------------------------
def encode_fields(event: dict[str, Any], fields: Sequence[Field], format_name: str) -> tuple[list[tuple[str, str]], set[Path]]:
    """Product keys for the table's fields present in the event, and the paths they carry exactly."""
    pairs: list[tuple[str, str]] = []
    exact: set[Path] = set()
    for field in fields:
        value: Any = event
        for name in field.parts:                 # get_path inlined: this runs for every row of the table
            if not isinstance(value, dict) or name not in value:
                break
            value = value[name]
        else:
            if value is not None and (text := field.codec.encode(value)) is not None:
                pairs.append((field.key, text))
                if _same(field.codec.decode(text), value):
                    exact.add(field.parts)
    return pairs, exact


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def decode_fields(pairs: dict[str, str], fields: Sequence[Field], event: dict[str, Any]) -> None:
    for field in fields:
        if field.key in pairs:
            set_path(event, field.parts, field.codec.decode(pairs[field.key]))


def decode_carried(pairs: dict[str, str], event: dict[str, Any], format_name: str) -> None:
    """Apply the `wia.` keys (after the product keys: an exact value wins over a lossy one)."""
    event_type = event.get("type") if isinstance(event.get("type"), str) else None
    for key, text in pairs.items():
        if key == EXTRA_KEY:
            extra = _json(text, key, format_name)
            if not isinstance(extra, dict):
                raise ConversionError(format_name, "expected a JSON object", path=key_path(format_name, key))
            event.update(extra)
        elif key.startswith(CARRY_PREFIX):
            path, string = _carried(event_type, key)
            try:
                set_path(event, path, text if string else _json(text, key, format_name))
            except (AttributeError, TypeError):      # another key (or wia.extra) put a value that is no object there
                raise ConversionError(format_name, f"{key[:60]} names a member below a value that is not an object",
                                      path=key_path(format_name, key)) from None


@lru_cache(maxsize=4096)
def _carried(event_type: str | None, key: str) -> tuple[Path, bool]:
    """The path a `wia.` key names, and whether the schema says string there (keys recur line after line)."""
    path = tuple(key[len(CARRY_PREFIX):].split("."))
    return path, "string" in schema_types(event_type, path)


#: The members every WIA event has (wia-security-v1.schema.json `required`).
REQUIRED = ("version", "id", "type", "timestamp", "severity", "source", "data")
#: The part of a line its keys are in, as errors' paths name it (`extension/cnt`, `attributes/sev`).
KEYS_PART = {"cef": "extension", "leef": "attributes"}


def key_path(format_name: str, key: str) -> str:
    return f"{KEYS_PART.get(format_name, format_name)}/{key[:60]}"


def check_required(event: dict[str, Any], format_name: str) -> dict[str, Any]:
    """A line that claims to be one this project wrote (WIA header, wia id) but lacks a member every
    WIA event has was not written by `from_wia`: refused with the member's path, not passed on half-made."""
    for member in REQUIRED:
        if member not in event:
            raise ConversionError(format_name, f"a line in WIA's own layout lacks the required member {member!r}",
                                  path="/" + member)
    return event


def check_own_event(event: dict[str, Any], pairs: dict[str, str], fields: Sequence[Field], format_name: str,
                    header: frozenset[Path], *, lenient: bool = False) -> dict[str, Any]:
    """The event a line in WIA's own layout gives, when it is valid WIA (`check_required`, then the
    schema). A line `from_wia` wrote always is; one edited, damaged or forged is refused at the key
    that carried the first invalid value (`extension/cnt`, `attributes/wia.data.priority`), at
    `header` for a value the header carries (`header`: those paths), else at the event's JSON pointer
    (a required member that no key gives). `lenient`: a null optional member is taken as absent
    (`_own_event.checked`)."""
    check_required(event, format_name)
    return checked(event, format_name, lambda pointer: _carrier(pointer, pairs, fields, format_name, header),
                   "the event this line gives", lenient=lenient)


def _carrier(pointer: str, pairs: dict[str, str], fields: Sequence[Field], format_name: str,
             header: frozenset[Path]) -> str:
    """Where the value at `pointer` (in the event) came from: the `wia.` key that set it or an object
    above it last (or wia.extra, for a top-level member it holds), else the product key of it, else
    the header."""
    parts = tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:])
    order = {key: i for i, key in enumerate(pairs)}        # the `wia.` keys are applied in line order
    carried = [key for n in range(1, len(parts) + 1) if (key := CARRY_PREFIX + ".".join(parts[:n])) in order]
    if parts and EXTRA_KEY in order and _holds(pairs[EXTRA_KEY], parts[0]):
        carried.append(EXTRA_KEY)
    if carried:
        return key_path(format_name, max(carried, key=order.__getitem__))
    for n in range(len(parts), 0, -1):
        for field in fields:
            if field.parts == parts[:n] and field.key in pairs:
                return key_path(format_name, field.key)
        if parts[:n] in header:
            return "header"
    return pointer or "/"


def _holds(text: str, member: str) -> bool:
    try:
        extra = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(extra, dict) and member in extra


def _json(text: str, key: str, format_name: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConversionError(format_name, f"value is not JSON: {exc}", path=key_path(format_name, key)) from None
    except RecursionError:
        raise ConversionError(format_name, "value is JSON nested too deep to read", path=key_path(format_name, key)) from None


# --- lines from other products -----------------------------------------------------------------------
#: Namespace of the deterministic ids given to events parsed from other products' lines.
FOREIGN_NAMESPACE = uuid.UUID("6f1d7c52-5a39-4d5e-9a43-8f0c2f6b1e21")


#: IANA protocol numbers some products write in `proto` (Fortinet: proto=6).
IANA_PROTOCOLS = {"1": "ICMP", "6": "TCP", "17": "UDP", "47": "GRE", "50": "ESP", "58": "ICMP"}
#: Time-zone names the CEF spec's `zzz` and common syslog lines use (others are not guessed).
_ZONES = {"UTC": 0, "GMT": 0, "Z": 0, "UT": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6,
          "PST": -8, "PDT": -7, "CET": 1, "CEST": 2, "BST": 1, "IST": 5.5, "JST": 9, "AEST": 10}
#: Java SimpleDateFormat letters (LEEF devTimeFormat) -> strptime directives, longest first.
_JAVA_DIRECTIVES = (("yyyy", "%Y"), ("yy", "%y"), ("MMMM", "%B"), ("MMM", "%b"), ("MM", "%m"), ("dd", "%d"),
                    ("d", "%d"), ("HH", "%H"), ("H", "%H"), ("hh", "%I"), ("mm", "%M"), ("ss", "%S"),
                    ("SSS", "%f"), ("EEEE", "%A"), ("EEE", "%a"), ("a", "%p"), ("XXX", "%z"), ("XX", "%z"),
                    ("X", "%z"), ("ZZ", "%z"), ("Z", "%z"), ("zzz", "%Z"), ("z", "%Z"))
#: The spellings the CEF spec allows for rt/start/end besides epoch milliseconds (zone handled apart).
CEF_TIME_FORMATS = ("%b %d %Y %H:%M:%S.%f", "%b %d %Y %H:%M:%S", "%b %d %H:%M:%S.%f", "%b %d %H:%M:%S")


def java_time_format(pattern: str) -> str | None:
    """A Java SimpleDateFormat pattern as a strptime format ('quoted' text literal), None if it has other letters."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                return None
            out.append(pattern[i + 1:end].replace("%", "%%") or "'")
            i = end + 1
            continue
        if ch.isalpha():
            for java, directive in _JAVA_DIRECTIVES:
                if pattern.startswith(java, i):
                    out.append(directive)
                    i += len(java)
                    break
            else:
                return None
            continue
        out.append("%%" if ch == "%" else ch)
        i += 1
    return "".join(out)


def _epoch(text: str) -> datetime:
    """Digits as epoch time, the unit told by the size (s, ms, us, ns: products use all four)."""
    value = int(text)
    for limit, scale in ((10**17, 10**9), (10**14, 10**6), (10**11, 10**3)):
        if value >= limit:
            return EPOCH + timedelta(microseconds=value * 10**6 // scale)
    return EPOCH + timedelta(seconds=value)


def _with_year(moment: datetime, now: datetime) -> datetime:
    """A time written without a year (syslog style) is the latest one not after tomorrow (for 29 Feb:
    the latest leap year's)."""
    for year in range(now.year, now.year - 9, -1):     # leap years are at most 8 apart (1896 -> 1904)
        try:
            candidate = moment.replace(year=year)
        except ValueError:                              # 29 Feb of a common year
            continue
        if candidate - now <= timedelta(days=1):
            return candidate
    raise ValueError(f"no year fits {moment:%b %d}")


def foreign_time(text: str | None, formats: Sequence[str] = CEF_TIME_FORMATS, *, now: datetime | None = None) -> str | None:
    """A time stamp another product wrote as WIA's UTC spelling (see `read_time`); None when it
    cannot be read for sure."""
    try:
        return read_time(text, formats, now=now)
    except ValueError:
        return None


#: A zone after the time: a numeric offset (`+0200`, `-05:00`, `+02`, `GMT+2`, `UTC-05:00`) or a name.
_ZONE_TAIL = re.compile(r"^(?P<head>.*\d)\s*(?:(?P<gmt>GMT|UTC|UT)?(?P<sign>[+-])(?P<hh>\d{1,2})(?::?(?P<mm>\d\d))?"
                        r"|\s(?P<name>[A-Za-z][A-Za-z0-9_+/-]*))$", re.ASCII)


def _zone(match: re.Match[str], text: str) -> tzinfo:
    """The zone `_ZONE_TAIL` found: an offset of at most 14 hours, a name of `_ZONES` (fixed offsets), or
    an IANA name (`Europe/Berlin`, read with zoneinfo). Anything else raises ValueError: not guessed."""
    if match.group("sign"):
        hours, minutes = int(match.group("hh")), int(match.group("mm") or 0)
        if (hours, minutes) > (14, 0) or minutes >= 60 or (not match.group("gmt") and match.group("mm") is None
                                                             and len(match.group("hh")) == 1):
            raise ValueError(f"{text[:60]!r}: {match.group(0)[len(match.group('head')):].strip()!r} is no UTC offset")
        sign = -1 if match.group("sign") == "-" else 1
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    name = match.group("name")
    if name.upper() in _ZONES:
        return timezone(timedelta(hours=_ZONES[name.upper()]))
    if "/" in name:
        try:
            from zoneinfo import ZoneInfo
            return ZoneInfo(name)
        except (ValueError, LookupError, OSError):     # ZoneInfoNotFoundError is a KeyError
            pass
    raise ValueError(f"{text[:60]!r}: unknown time zone {name!r} (not guessed)")


def _local(moment: datetime, zone: tzinfo, text: str) -> datetime:
    """`moment` (naive) in `zone`; a local time that a daylight-saving change makes ambiguous or
    skips is refused, never guessed."""
    first, second = moment.replace(tzinfo=zone, fold=0), moment.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        raise ValueError(f"{text[:60]!r}: a daylight-saving change of {zone} makes this local time ambiguous (repeated or skipped)")
    return first


def read_time(text: str | None, formats: Sequence[str] = CEF_TIME_FORMATS, *, now: datetime | None = None) -> str:
    """A time stamp another product wrote, as WIA's UTC spelling (milliseconds, `Z`): epoch digits
    (the unit told by the size), RFC 3339, or one of `formats` (strptime), the latter optionally
    followed by a zone (`_ZONE_TAIL`: a numeric offset, a fixed-offset name, an IANA name). No
    zone: UTC. A time without a year gets the latest year that puts it no later than tomorrow.
    Raises ValueError saying why when the text is no time, or its zone is unknown or ambiguous."""
    from ..timeutil import to_iso
    text = (text or "").strip()
    if not text:
        raise ValueError("empty time")
    try:
        if text.isascii() and text.isdigit():
            if len(text) > 20:                          # beyond nanoseconds in year 9999: no epoch time
                raise OverflowError
            return to_iso(_epoch(text))
        try:
            return to_iso(parse_iso(text))
        except ValueError:
            pass
        now = now or datetime.now(timezone.utc)
        # a pattern with its own numeric offset (LEEF devTimeFormat "...Z") reads it as written; a zone
        # *name* (%Z) is left to _zone below (strptime would take the machine's local zone name, naive)
        for fmt in formats:
            if "%Z" not in fmt and (moment := _strptime(text, fmt)) is not None:
                return to_iso(_dated(moment, fmt, now, timezone.utc, text))
        match = _ZONE_TAIL.match(text)
        if match:
            zone = _zone(match, text)
            head = match.group("head")
            for fmt in formats:
                bare = fmt[:-3] if fmt.endswith((" %Z", " %z")) else fmt
                if "%Z" not in bare and "%z" not in bare and (moment := _strptime(head, bare)) is not None:
                    return to_iso(_dated(moment, bare, now, zone, text))
    except OverflowError:
        raise ValueError(f"{text[:40]!r}: out of range") from None
    raise ValueError(f"{text[:40]!r} is not a time in a layout this reader knows")


def _strptime(text: str, fmt: str) -> datetime | None:
    if "%Y" not in fmt and "%y" not in fmt:
        # No year written: parse in a leap year, so that 29 Feb exists (strptime's default 1900 has
        # none, and Python 3.15 stops defaulting); _dated picks the real year.
        text, fmt = f"2000 {text}", f"%Y {fmt}"
    try:
        return datetime.strptime(text, fmt)
    except (ValueError, re.error):      # re.error: a devTimeFormat naming a field twice ("yyyy ... yyyy")
        return None


def _dated(moment: datetime, fmt: str, now: datetime, zone: tzinfo, text: str) -> datetime:
    if moment.tzinfo is None:
        if "%Y" not in fmt and "%y" not in fmt:
            moment = _with_year(moment, now.replace(tzinfo=None))
        moment = _local(moment, zone, text)
    return moment


#: Where a syslog header (before `CEF:` / `LEEF:`) keeps a time, best first: FortiOS's epoch
#: `eventtime=`, FortiOS's `date=` + `time=` (+ `tz=`), an RFC 5424 / RFC 3339 time stamp after the
#: priority, an RFC 3164 `Mmm dd hh:mm:ss`.
_SYSLOG_EVENTTIME = re.compile(r"(?:^|[\s>])eventtime=\"?(\d{9,19})\"?(?=\s|$)", re.ASCII)
_SYSLOG_DATE_TIME = re.compile(r"(?:^|[\s>])date=\"?(\d{4}-\d\d-\d\d)\"?\s+time=\"?(\d\d:\d\d:\d\d)\"?(?=\s|$)", re.ASCII)
_SYSLOG_TZ = re.compile(r"(?:^|[\s>])tz=\"?([+-]\d{4})\"?(?=\s|$)", re.ASCII)
_SYSLOG_5424 = re.compile(r"^(?:<\d{1,3}>)?(?:\d{1,2} )?(\d{4}-\d\d-\d\d[Tt]\S+)\s", re.ASCII)
_SYSLOG_3164 = re.compile(r"^(?:<\d{1,3}>)?([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)\s", re.ASCII)


def syslog_time(prefix: str, *, now: datetime | None = None) -> tuple[str, str] | None:
    """(WIA time, where it was found) from the syslog header before a CEF/LEEF line, None when the
    header holds no readable time. Times the header writes without a zone (RFC 3164, FortiOS
    date/time without tz) are read as UTC."""
    prefix = prefix.lstrip("\ufeff")
    if (m := _SYSLOG_EVENTTIME.search(prefix)) and (moment := foreign_time(m.group(1))):
        return moment, "syslog:eventtime"
    if m := _SYSLOG_DATE_TIME.search(prefix):
        tz = _SYSLOG_TZ.search(prefix)
        if moment := foreign_time(f"{m.group(1)}T{m.group(2)}{tz.group(1) if tz else ''}"):
            return moment, "syslog:date+time"
    if (m := _SYSLOG_5424.match(prefix)) and (moment := foreign_time(m.group(1))):
        return moment, "syslog:rfc5424"
    if (m := _SYSLOG_3164.match(prefix)) and (moment := foreign_time(m.group(1).replace("  ", " 0"), now=now)):
        return moment, "syslog:rfc3164"
    return None


#: meta.labels key naming where a foreign line's `timestamp` came from (TIME_OF_READING: nowhere).
TIMESTAMP_SOURCE = "timestamp_source"
TIME_OF_READING = "time_of_reading"


def _hash_indicator(value: str | None) -> dict[str, str] | None:
    kind = {32: "file_hash_md5", 40: "file_hash_sha1", 64: "file_hash_sha256"}.get(len(value or ""))
    if kind and re.fullmatch(r"[0-9A-Fa-f]+", value or ""):
        return {"type": kind, "value": value.lower()}
    return None


def foreign_alert(format_name: str, *, vendor: str, product: str, product_version: str, event_id: str,
                  title: str, severity: str | None, timestamp: tuple[str, str], attributes: dict[str, str],
                  network: tuple[str | None, str | None, str | None, str | None, str | None],
                  user: str | None, hosts: tuple[str | None, str | None] = (None, None),
                  host: str | None = None, direction: str | None = None, hashes: Iterable[str | None] = ()) -> dict[str, Any]:
    """A WIA `alert` from a line another product wrote: its header names the source, its own keys
    land in `meta.custom.<format>` verbatim, the common ones (addresses, ports, host names, user,
    file hashes) in `context` and `data.indicators`. `timestamp` is (time, where it came from): the
    second goes to `meta.labels.timestamp_source` (TIME_OF_READING when the line has no time, so
    the time of reading is never passed off as the event's). The id is a UUIDv5 of the header and
    attributes, so parsing the same line twice gives one event."""
    text = (severity or "").strip()
    score = max(0.0, min(10.0, float(text))) if _SEVERITY_NUMBER.fullmatch(text) else 5.0
    value: int | float = int(score) if score.is_integer() else score
    identity = "|".join((format_name, vendor, product, product_version, event_id, repr(sorted(attributes.items()))))
    event: dict[str, Any] = {
        "$schema": "https://wia.live/security/v1/schema.json",
        "version": WIA_VERSION,
        "id": str(uuid.uuid5(FOREIGN_NAMESPACE, identity)),
        "type": "alert",
        "timestamp": timestamp[0],
        "severity": value,
        "source": {"type": "siem", "name": product or "unknown", "vendor": vendor, "version": product_version},
        "data": {"alert_id": event_id or "unknown", "title": title or f"{format_name.upper()} event",
                 "category": "other", "status": "new", "priority": BAND_PRIORITY[band(value)]},
        "meta": {"labels": {TIMESTAMP_SOURCE: timestamp[1]}, "custom": {format_name: dict(attributes)}},
    }
    src, spt, dst, dpt, proto = network
    net: dict[str, Any] = {}
    for side, ip, port, hostname in (("source", src, spt, hosts[0]), ("destination", dst, dpt, hosts[1])):
        endpoint: dict[str, Any] = {}
        if ip:
            endpoint["ip"] = ip
        if port and ascii_digits(port) and int(port) <= 65535:
            endpoint["port"] = int(port)
        if hostname:
            endpoint["hostname"] = hostname
        if endpoint:
            net[side] = endpoint
    if proto:
        net["protocol"] = IANA_PROTOCOLS.get(proto, proto)
    if direction in ("inbound", "outbound", "internal"):
        net["direction"] = direction
    context: dict[str, Any] = {}
    if net:
        context["network"] = net
    if user:
        context["user"] = {"name": user}
    if host:
        context["host"] = {"hostname": host}
    if context:
        event["context"] = context
    indicators = [ind for ind in map(_hash_indicator, hashes) if ind]
    if indicators:
        event["data"]["indicators"] = [dict(t) for t in dict.fromkeys(tuple(i.items()) for i in indicators)]
    return event
