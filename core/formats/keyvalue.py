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

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable, Iterator

from .. import schemas
from .._version import WIA_VERSION
from ..errors import ConversionError
from ..severity import BAND_PRIORITY, band
from ..timeutil import parse_iso, to_iso
from ..validation.nodes import Node, load_node

#: Prefix of the keys that carry WIA fields no predefined key holds.
CARRY_PREFIX = "wia."
#: Key holding top-level members the schema does not define (allowed: no additionalProperties).
EXTRA_KEY = "wia.extra"
_NAME = re.compile(r"^[A-Za-z0-9_$]+$")
_MISSING = object()
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

Path = tuple[str, ...]


def header_fields(text: str, start: int, count: int, *, format_name: str, escaped: str | None,
                  after: str = "") -> tuple[list[str], int]:
    """`count` pipe-terminated header fields from `start`, and the offset after them. A backslash
    escapes the next character when it is in `escaped` (any character when None)."""
    fields: list[str] = []
    current: list[str] = []
    i, n = start, len(text)
    while len(fields) < count:
        if i >= n:
            raise ConversionError(format_name, f"the {format_name.upper()} header needs {count} '|'-terminated "
                                               f"fields{after}, found {len(fields)}", path="header")
        ch = text[i]
        if ch == "\\" and i + 1 < n and (escaped is None or text[i + 1] in escaped):
            current.append(text[i + 1])
            i += 2
            continue
        if ch == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    return fields, i


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
    return str((moment - EPOCH) // timedelta(milliseconds=1))


def epoch_ms_value(text: str) -> Any:
    try:
        return to_iso(EPOCH + timedelta(milliseconds=int(text)))
    except (ValueError, OverflowError, OSError):
        return text


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


TEXT = Codec(lambda value: value if isinstance(value, str) else None, lambda text: text)
INT = Codec(_int_text, _int_value)
NUMBER = Codec(_number_text, _number_value)
EPOCH_MS = Codec(epoch_ms_text, epoch_ms_value)


@dataclass(frozen=True, slots=True)
class Field:
    """One row of a mapping table: the product key, the WIA path it holds, and how it is spelled."""

    key: str
    path: str
    codec: Codec = TEXT

    @property
    def parts(self) -> Path:
        return tuple(self.path.split("."))


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


def _properties(nodes: tuple[Node, ...]) -> set[str]:
    return {name for node in nodes for name in node.properties}


def _types(nodes: tuple[Node, ...]) -> tuple[str, ...]:
    return next((node.types for node in nodes if node.types), ())


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


def carry_text(event_type: str | None, path: Path, value: Any, format_name: str) -> str:
    """The spelling of one `wia.` value: raw text where the schema says string, JSON otherwise."""
    if "string" in schema_types(event_type, path):
        if not isinstance(value, str):
            raise ConversionError(format_name, f"expected a string, got {type(value).__name__}",
                                  path="/" + "/".join(path))
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def leaves(event: dict[str, Any], skip: set[Path], format_name: str) -> Iterator[tuple[str, str]]:
    """`(wia.<path>, text)` for every value of the event not in `skip` (already carried exactly).

    Objects whose members the schema names are walked member by member; arrays and free-form
    objects go whole as JSON. Top-level members the schema does not name go together under EXTRA_KEY.
    """
    event_type = event.get("type") if isinstance(event.get("type"), str) else None
    root = _root(event_type)
    known = _properties(root)
    extra = {k: v for k, v in event.items() if k not in known}
    for name, value in event.items():
        if name in known:
            yield from _walk(event_type, _child(root, name), (name,), value, skip, format_name)
    if extra:
        yield EXTRA_KEY, json.dumps(extra, ensure_ascii=False, separators=(",", ":"))


def _walk(event_type: str | None, nodes: tuple[Node, ...], path: Path, value: Any, skip: set[Path],
          format_name: str) -> Iterator[tuple[str, str]]:
    if path in skip or value is None:
        return                           # null = absent, as lenient validation reads it
    names = _properties(nodes)
    if isinstance(value, dict) and names and value and all(k in names and _NAME.match(k) for k in value):
        for name, sub in value.items():
            yield from _walk(event_type, _child(nodes, name), (*path, name), sub, skip, format_name)
        return
    yield CARRY_PREFIX + ".".join(path), carry_text(event_type, path, value, format_name)


# --- the mapping table, both ways -----------------------------------------------------------------
def encode_fields(event: dict[str, Any], fields: list[Field], format_name: str) -> tuple[list[tuple[str, str]], set[Path]]:
    """Product keys for the table's fields present in the event, and the paths they carry exactly."""
    pairs: list[tuple[str, str]] = []
    exact: set[Path] = set()
    for field in fields:
        value = get_path(event, field.parts)
        if value is _MISSING or value is None:
            continue
        text = field.codec.encode(value)
        if text is None:
            continue
        pairs.append((field.key, text))
        if _same(field.codec.decode(text), value):
            exact.add(field.parts)
    return pairs, exact


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def decode_fields(pairs: dict[str, str], fields: list[Field], event: dict[str, Any]) -> None:
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
                raise ConversionError(format_name, "expected a JSON object", path=key)
            event.update(extra)
        elif key.startswith(CARRY_PREFIX):
            path = tuple(key[len(CARRY_PREFIX):].split("."))
            if "string" in schema_types(event_type, path):
                set_path(event, path, text)
            else:
                set_path(event, path, _json(text, key, format_name))


def _json(text: str, key: str, format_name: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConversionError(format_name, f"value is not JSON: {exc}", path=key) from None


# --- lines from other products -----------------------------------------------------------------------
#: Namespace of the deterministic ids given to events parsed from other products' lines.
FOREIGN_NAMESPACE = uuid.UUID("6f1d7c52-5a39-4d5e-9a43-8f0c2f6b1e21")


def foreign_alert(format_name: str, *, vendor: str, product: str, product_version: str, event_id: str,
                  title: str, severity: str | None, timestamp: str, attributes: dict[str, str],
                  network: tuple[str | None, str | None, str | None, str | None, str | None],
                  user: str | None) -> dict[str, Any]:
    """A WIA `alert` from a line another product wrote: its header names the source, its own keys
    land in `meta.custom.<format>` verbatim, the common ones (addresses, ports, user) in `context`.
    The id is a UUIDv5 of the header and attributes, so parsing the same line twice gives one event."""
    try:
        score = max(0.0, min(10.0, float(severity if severity not in (None, "") else 5)))
    except ValueError:
        score = 5.0
    value: int | float = int(score) if score.is_integer() else score
    identity = "|".join((format_name, vendor, product, product_version, event_id, repr(sorted(attributes.items()))))
    event: dict[str, Any] = {
        "$schema": "https://wia.live/security/v1/schema.json",
        "version": WIA_VERSION,
        "id": str(uuid.uuid5(FOREIGN_NAMESPACE, identity)),
        "type": "alert",
        "timestamp": timestamp,
        "severity": value,
        "source": {"type": "siem", "name": product or "unknown", "vendor": vendor, "version": product_version},
        "data": {"alert_id": event_id or "unknown", "title": title or f"{format_name.upper()} event",
                 "category": "other", "status": "new", "priority": BAND_PRIORITY[band(value)]},
        "meta": {"custom": {format_name: dict(attributes)}},
    }
    src, spt, dst, dpt, proto = network
    net: dict[str, Any] = {}
    for side, ip, port in (("source", src, spt), ("destination", dst, dpt)):
        endpoint: dict[str, Any] = {}
        if ip:
            endpoint["ip"] = ip
        if port and port.isdigit() and int(port) <= 65535:
            endpoint["port"] = int(port)
        if endpoint:
            net[side] = endpoint
    if proto:
        net["protocol"] = proto
    context: dict[str, Any] = {}
    if net:
        context["network"] = net
    if user:
        context["user"] = {"name": user}
    if context:
        event["context"] = context
    return event
