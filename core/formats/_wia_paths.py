"""Consume-and-remainder helpers for converters: what a mapping did not take is kept, never dropped silently.

A converter reads an event through `Remainder.pop(...)`; what is left afterwards (`leftover()`) is
exactly the part of the event the native format has no home for, which the converter stores in
its documented custom namespace (ECS `wia.*`, ASFF `ProductFields`, ...). `merge` puts such a
leftover back over a rebuilt event, lists element by element.
"""
from __future__ import annotations

import copy
import ipaddress
import json
import math
import re
from datetime import timezone
from typing import Any, Callable

from ..errors import ConversionError
from ..timeutil import parse_iso, to_iso
from ..validation.formats import fast_date_time

_MISSING = object()


class Remainder:
    """An event from which mapped values are popped (the event itself is never changed).

    Pops are recorded as paths; `leftover()` then rebuilds, in one walk, the part of the event
    no pop took: containers emptied by pops disappear, containers that were empty stay, and a list
    element taken whole leaves `{}` so the other elements keep their positions.
    """

    __slots__ = ("original", "popped")

    def __init__(self, event: dict[str, Any]) -> None:
        self.original = event
        self.popped: set[tuple[Any, ...]] = set()

    def get(self, *path: Any, default: Any = None) -> Any:
        node: Any = self.original
        for key in path:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                return default
        return node

    def pop(self, *path: Any, default: Any = None) -> Any:
        """The value at `path`, marked as taken (default when absent or already taken)."""
        if path in self.popped:
            return default
        value = self.get(*path, default=_MISSING)
        if value is _MISSING:
            return default
        self.popped.add(path)
        return value

    def leftover(self) -> dict[str, Any]:
        """What no pop took. Parts no pop touched are shared with the event, not copied: callers
        serialize the leftover (a deep copy was a third of ASFF's from_wia)."""
        if not self.popped:
            return self.original
        below: dict[tuple[Any, ...], set[Any]] = {}     # path -> its keys that were popped or lead to a pop
        for p in self.popped:
            for i in range(len(p)):
                below.setdefault(p[:i], set()).add(p[i])
        pruned = _rest(self.original, (), self.popped, below)
        return pruned if isinstance(pruned, dict) else {}


def _rest(value: Any, path: tuple[Any, ...], popped: set[tuple[Any, ...]], below: dict[tuple[Any, ...], set[Any]]) -> Any:
    """`value` at `path` (below which something was popped) without the popped parts: a dict is copied
    and only the keys `below` names are visited; emptied containers vanish (_MISSING)."""
    if isinstance(value, dict):
        if not value:
            return {}
        out = dict(value)
        for k in below[path]:
            q = path + (k,)
            r = _MISSING if q in popped else _rest(out[k], q, popped, below)
            if r is _MISSING:
                del out[k]
            else:
                out[k] = r
        return out if out else _MISSING
    if isinstance(value, list):
        if not value:
            return []
        items = []
        for i, v in enumerate(value):
            q = path + (i,)
            items.append(_MISSING if q in popped else _rest(v, q, popped, below) if q in below else v)
        if all(i is _MISSING for i in items):
            return _MISSING
        return [{} if i is _MISSING else i for i in items]   # {} = "nothing left at this position"
    return value


def merge(base: Any, extra: Any, take: Callable[[Any], Any] = copy.deepcopy) -> Any:
    """`extra` laid over `base`: dicts key by key, lists element by element; scalars from `extra` win.
    `base` is never changed; the parts of `extra` used go through `take` (a copy by default; a
    caller that owns `extra` may pass them through as they are)."""
    if isinstance(base, dict) and isinstance(extra, dict):
        out = dict(base)
        for k, v in extra.items():
            out[k] = merge(out[k], v, take) if k in out else take(v)
        return out
    if isinstance(base, list) and isinstance(extra, list):
        out_list = list(base)
        for i, v in enumerate(extra):
            if i < len(out_list):
                out_list[i] = merge(out_list[i], v, take)
            else:
                out_list.append(take(v))
        return out_list
    return take(extra)


def clean(value: Any) -> Any:
    """Without None values and empty containers (recursively)."""
    if isinstance(value, dict):
        out = {k: c for k, v in value.items() if (c := clean(v)) is not None}
        return out or None
    if isinstance(value, list):
        items = [c for v in value if (c := clean(v)) is not None]
        return items or None
    return value


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: exactly the strings ipaddress.IPv4Address accepts (four ASCII decimal octets <= 255, no leading zeros),
#: checked without building an address object: the converters test every IP field of every event
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


_HEX_COLONS = re.compile(r"[0-9a-fA-F:]+")
#: no IP address has other characters, except in an IPv6 scope id (after "%")
_IP_CHARACTERS = re.compile(r"[0-9a-fA-F:.]*")


def _is_plain_ipv6(text: str) -> bool:
    """An IPv6 address of hex groups and colons only (no IPv4 tail, no scope id), by the rules of
    ipaddress.IPv6Address: 8 groups of 1-4 hex digits, or at most 7 with one "::" for the rest."""
    if "::" not in text:
        groups = text.split(":")
        return len(groups) == 8 and "" not in groups and max(map(len, groups)) <= 4
    head, _, tail = text.partition("::")
    groups = (head.split(":") if head else []) + (tail.split(":") if tail else [])
    return len(groups) <= 7 and "" not in groups and (not groups or max(map(len, groups)) <= 4)


def ip_version(value: Any) -> int | None:
    """4 or 6 for a textual IP address, None for anything else (exactly as `ipaddress.ip_address`;
    the common forms are checked here without building an address object)."""
    if not isinstance(value, str):
        return None
    if _IPV4.fullmatch(value):
        return 4
    if _HEX_COLONS.fullmatch(value) and _is_plain_ipv6(value):
        return 6
    if "%" not in value and not _IP_CHARACTERS.fullmatch(value):
        return None
    try:
        return ipaddress.ip_address(value).version
    except ValueError:
        return None


_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$")


def is_mac(value: Any) -> bool:
    return isinstance(value, str) and bool(_MAC.match(value))


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def nonblank(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


#: json.dumps with non-default options builds a new encoder per call; converters encode many small values.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def compact_json(value: Any) -> str:
    """`json.dumps(value, ensure_ascii=False, separators=(",", ":"))`, the same text. Strings and plain
    numbers (most values) are written here as the encoder writes them, without its per-call setup."""
    kind = type(value)
    if kind is str:
        return json.encoder.encode_basestring(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    return _COMPACT.encode(value)        # containers, None, NaN/Infinity, subclasses


#: WIA members that hold an RFC 3339 date-time (every event type's schema).
TIME_KEYS = frozenset({"timestamp", "first_seen", "last_seen", "start_time", "created", "modified", "accessed",
                       "published", "created_at", "updated_at", "closed_at", "not_before", "not_after"})


_CANONICAL_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")


def canonical_times(node: Any) -> Any:
    """Every date-time string in a WIA event from another product, rewritten as WIA writes them (UTC,
    "Z", milliseconds: what the upstream SDK validators accept; RFC 3339 allows offsets and any
    fraction, as ASFF, ECS and STIX producers write). A string that is no RFC 3339 time is left to
    the validator. Changes the event in place and returns it."""
    if isinstance(node, dict):
        for key, value in node.items():
            # fullmatch: `$` would take "...Z\n" (valid, one trailing newline) as already canonical; a leap
            # second (:60, which Security Hub's syntax and RFC 3339 allow, WIA's schema not) is utc_ms's
            if key in TIME_KEYS and isinstance(value, str) and not (
                    _CANONICAL_TIME.fullmatch(value) and value[17:19] != "60"):
                try:
                    node[key] = utc_ms(value) or (
                        to_iso(parse_iso(value)) if re.match(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d", value) else value)
                except (ValueError, OverflowError):     # no time, or its UTC instant is outside years 1-9999
                    pass
            elif key != "custom":          # meta.custom keeps the product's own values verbatim
                canonical_times(value)
    elif isinstance(node, list):
        for item in node:
            canonical_times(item)
    return node


#: An RFC 3339 date-time; group 1 is the second (60 in a leap second).
_RFC3339_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:([0-9]{2})(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})")


def utc_ms(value: Any) -> str | None:
    """An RFC 3339 date-time spelled as WIA writes times and the other readers rewrite them (UTC,
    milliseconds, "Z": `timeutil.to_iso`); digits below the millisecond are dropped. A leap second
    (second 60, which RFC 3339 allows and `datetime` cannot hold) becomes the last millisecond before
    the next second (:59.999), which keeps the order of events. None for anything else."""
    if type(value) is not str:
        return None
    if len(value) == 24 and value[19] == "." and value[23] == "Z" and fast_date_time(value):
        return value                        # already the canonical spelling (every document we write)
    if value[-1:] == "\n":                  # the one trailing newline the date-time format takes
        value = value[:-1]
    m = _RFC3339_TIME.fullmatch(value)
    if m is None:
        return None
    leap = m[1] == "60"
    text = value[:m.start(1)] + "59" + value[m.end(1):] if leap else value
    try:
        moment = parse_iso(text)
        if leap:
            moment = moment.replace(microsecond=999000)
        return to_iso(moment)
    except (ValueError, OverflowError):     # no such day, hour 24, a year beyond 1-9999 in UTC
        return None


def time_out_of_range(event: Any) -> tuple[str, str] | None:
    """(JSON pointer, value) of the first date-time in a WIA event that is valid RFC 3339 but names an instant a
    UTC time cannot spell in four digits (9999-12-31T23:30:00-01:00 is in year 10000 in UTC, 0001-01-01T00:30:00+01:00
    in year 0): for a writer whose format holds times only in UTC to say which member it cannot write."""
    todo: list[tuple[str, Any]] = [("", event)]
    while todo:
        pointer, node = todo.pop(0)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            at = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key in TIME_KEYS and isinstance(value, str):
                try:
                    parse_iso(value).astimezone(timezone.utc)
                except OverflowError:
                    return at, value
                except ValueError:
                    pass
            elif isinstance(value, (dict, list)):
                todo.append((at, value))
    return None


def out_of_range_error(format_name: str, event: Any, holds: str) -> ConversionError | None:
    """The ConversionError for a writer that met a time outside years 1-9999 in UTC (OverflowError): it names
    the member and says what `holds` (the format's time fields) cannot spell; None if there is no such time."""
    found = time_out_of_range(event)
    if found is None:
        return None
    pointer, value = found
    return ConversionError(format_name, f"{value!r} is valid RFC 3339, but in UTC it falls outside the years "
                           f"0001-9999, which {holds} cannot spell", path=pointer)
