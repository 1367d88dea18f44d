"""Hypothesis strategies for WIA events, driven by the bundled schemas themselves.

    events()                 valid, realistic events of any type (IPs are IPs, hashes are hex, ...)
    events("alert")          of one type
    events(times="canonical") date-times only as builders write them (UTC, ms, "Z"); the default draws every
                             spelling the date-time format accepts (offsets, fractions, t/z, years 1 and 9999);
                             event_dicts() keeps its seeded corpora ("legacy") unless given times="any"
    events(wild=True)        valid per the schema but with arbitrary unicode strings everywhere a
                             plain string is allowed (pipes, quotes, newlines, RTL marks, ...)
    event_dicts(n, seed)     a deterministic list of n events without hypothesis (for benchmarks)
    mutations(event)         invalid variants of a valid event: wrong types, enum and pattern misses,
                             missing required fields, bad formats, out-of-range numbers

The generator walks the same Node graph the validator compiles, so every schema property can
appear; field-name hints only choose *realistic* values inside what the schema allows.
"""
from __future__ import annotations

import copy
import random
import string
import uuid
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable, Iterator

from hypothesis import strategies as st

from wia_security import schemas
from wia_security.attack import table
from wia_security.validation.nodes import Node, load_node

EVENT_TYPES = schemas.EVENT_TYPES

# --- choices: one generator, driven by Hypothesis or by random.Random ---------------------------
class HypothesisChooser:
    def __init__(self, draw: Any) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def choice(self, seq: Any) -> Any:
        return self.draw(st.sampled_from(seq))

    def floating(self, lo: float, hi: float) -> float:
        return self.draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))

    def text(self, alphabet: str | None, lo: int, hi: int) -> str:
        return self.draw(st.text(alphabet=alphabet, min_size=lo, max_size=hi) if alphabet
                         else st.text(min_size=lo, max_size=hi))


class RandomChooser:
    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd

    def integer(self, lo: int, hi: int) -> int:
        return self.rnd.randint(lo, hi)

    def choice(self, seq: Any) -> Any:
        return self.rnd.choice(list(seq))

    def floating(self, lo: float, hi: float) -> float:
        return self.rnd.uniform(lo, hi)

    def text(self, alphabet: str | None, lo: int, hi: int) -> str:
        n = self.rnd.randint(lo, hi)
        if alphabet:
            return "".join(self.rnd.choice(alphabet) for _ in range(n))
        return "".join(chr(self.rnd.choice([self.rnd.randint(32, 126), self.rnd.randint(0xA0, 0x2FFF),
                                            self.rnd.randint(0, 31), 0x1F600])) for _ in range(n))


Leaf = Callable[[Any], Any]
_LOWER = string.ascii_lowercase + string.digits


def _label(c: Any) -> str:
    return c.text(_LOWER, 1, 12)


def domain(c: Any) -> str:
    return f"{_label(c)}.{_label(c)}.{c.choice(['com', 'net', 'org', 'io', 'example'])}"


def ipv4(c: Any) -> str:
    return ".".join(str(c.integer(1, 254)) for _ in range(4))


def ipv6(c: Any) -> str:
    return "2001:db8:" + ":".join(f"{c.integer(0, 0xFFFF):x}" for _ in range(6))


def ip(c: Any) -> str:
    return ipv6(c) if c.integer(0, 2) == 0 else ipv4(c)


def url(c: Any) -> str:
    return f"https://{domain(c)}/{c.text(string.ascii_letters + string.digits + '-_/', 0, 20)}"


def email(c: Any) -> str:
    return f"{_label(c)}@{domain(c)}"


def mac(c: Any) -> str:
    return ":".join(f"{c.integer(0, 255):02x}" for _ in range(6))


def hexes(n: int) -> Leaf:
    return lambda c: c.text("0123456789abcdef", n, n)


md5, sha1, sha256 = hexes(32), hexes(40), hexes(64)
_EPOCH = datetime(2015, 1, 1, tzinfo=timezone.utc)
_FIRST = datetime(1, 1, 1, tzinfo=timezone.utc)
_LAST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
_DAY = 86400

#: How a generated event spells its date-times: "any" (every spelling the schemas' date-time format accepts,
#: below), "canonical" (UTC, milliseconds, "Z": what builders write) or "legacy" (the mix generated before
#: the widening: mostly canonical, some offsets; the same values from the same seed, for benchmarks that compare
#: numbers over time and for callers held back from "any" by a bug named where they ask for it).
TIME_SPELLINGS = ("any", "canonical", "legacy")


def timestamp(c: Any, canonical: bool = False, *, times: str = "any") -> str:
    """An RFC 3339 date-time that the schemas' `date-time` format accepts (docs/validation.md); canonical ones
    (or times="canonical") are UTC with milliseconds and "Z" (what builders write).

    "any" draws every valid spelling: "Z" with no fraction or 1-12 fraction digits, lower-case "t" and "z",
    "+00:00" and "-00:00", any offset from -23:59 to +23:59, years 0001 and 9999, times around New Year that an
    offset moves into the other year, and one trailing newline (the reference validator's `$` takes it). The
    instant is always one a datetime holds in UTC and at its offset (years 1-9999); a valid time whose instant
    leaves that range (9999-12-31T23:30:00-01:00) is for hand-written tests. Seconds 60 are not drawn: the
    validator refuses a leap second."""
    if times not in TIME_SPELLINGS:
        raise ValueError(f"times must be one of {TIME_SPELLINGS}, not {times!r}")
    if canonical or times == "canonical":
        moment = _EPOCH + timedelta(seconds=c.integer(0, 12 * 365 * 86400), milliseconds=c.integer(0, 999))
        return _canonical(moment)
    if times == "legacy":
        return _legacy_timestamp(c)
    moment = _any_moment(c)
    if c.integer(0, 2) == 0:            # the builders' spelling stays the most common one
        return _canonical(moment)
    zone = c.integer(0, 5)
    minutes = {0: 0, 1: 0, 2: 0}.get(zone, c.integer(-(23 * 60 + 59), 23 * 60 + 59))
    try:
        local = moment.astimezone(timezone(timedelta(minutes=minutes)))
    except OverflowError:               # year 1 or 9999 moved out of range by the offset: keep it in UTC
        local, minutes, zone = moment, 0, 0
    offset = ("Z", "z", c.choice(["+00:00", "-00:00"]))[zone] if zone < 3 else (
        f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}")
    digits = c.integer(0, 12)
    fraction = f"{local.microsecond:06d}" + "".join(str(c.integer(0, 9)) for _ in range(digits - 6))
    text = (f"{local.year:04d}-{local.month:02d}-{local.day:02d}{c.choice('Tt')}"
            f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
            + (f".{fraction[:digits]}" if digits else "") + offset)
    return text + "\n" if c.integer(0, 19) == 0 else text


def _canonical(moment: datetime) -> str:
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
            f"{moment.second:02d}.{moment.microsecond // 1000:03d}Z")


def _any_moment(c: Any) -> datetime:
    """An instant, mostly in recent years, sometimes in the first or last days of years 1 and 9999 or near a New
    Year (where an offset puts the written date in the other year); microseconds, for the fraction digits."""
    near = c.integer(0, 9)
    if near == 0:
        return _FIRST + timedelta(seconds=c.integer(0, 2 * _DAY), microseconds=c.integer(0, 999_999))
    if near == 1:
        return _LAST - timedelta(seconds=c.integer(0, 2 * _DAY), microseconds=c.integer(0, 999_999))
    if near == 2:
        new_year = datetime(c.integer(1970, 2099), 1, 1, tzinfo=timezone.utc)
        return new_year + timedelta(seconds=c.integer(-_DAY, _DAY), microseconds=c.integer(0, 999_999))
    return _EPOCH + timedelta(seconds=c.integer(0, 12 * 365 * _DAY), microseconds=c.integer(0, 999_999))


def _legacy_timestamp(c: Any) -> str:
    moment = _EPOCH + timedelta(seconds=c.integer(0, 12 * 365 * 86400), milliseconds=c.integer(0, 999))
    if c.integer(0, 3):
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    offset = c.choice([0, 60, -300, 330, 540, -720])
    local = moment.astimezone(timezone(timedelta(minutes=offset)))
    frac = c.choice(["", ".5", ".123", ".123456"])
    sign = "+" if offset >= 0 else "-"
    return local.strftime("%Y-%m-%dT%H:%M:%S") + frac + f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


def words(c: Any) -> str:
    return c.text(string.ascii_letters + string.digits + " .,:;-_()'/", 1, 40)


def wild(c: Any) -> str:
    """Any unicode (control characters, pipes, quotes, backslashes, emoji, ...), no surrogates."""
    return c.text(None, 0, 40)


_active = [t for t in table() if t.status == "active"]
_tactics = list(table().tactics)

#: property name -> realistic value (applies wherever the schema allows a plain string/number)
HINTS: dict[str, Leaf] = {
    "ip": ip, "local_ip": ip, "remote_ip": ip,
    "port": lambda c: c.integer(0, 65535), "local_port": lambda c: c.integer(0, 65535),
    "remote_port": lambda c: c.integer(0, 65535),
    "hostname": domain, "sni": domain, "query": domain, "domain": domain,
    "mac": mac, "md5": md5, "sha1": sha1, "sha256": sha256, "fingerprint_sha256": sha256,
    "url": url, "vendor_url": url, "referer": url, "email": email,
    "country": lambda c: c.choice(["US", "KR", "DE", "CN", "BR", "GB"]),
    "latitude": lambda c: round(c.floating(-90, 90), 4), "longitude": lambda c: round(c.floating(-180, 180), 4),
    "asn": lambda c: c.integer(1, 4_200_000_000), "pid": lambda c: c.integer(0, 4_194_304),
    "ppid": lambda c: c.integer(0, 4_194_304), "status_code": lambda c: c.integer(100, 599),
    "cpe": lambda c: "cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*",
    "version": lambda c: c.choice(["1.0.0", "2.4.1", "10.2"]),
}

_INDICATOR_VALUES: dict[str, Leaf] = {
    "ip": ip, "domain": domain, "url": url, "email": email,
    "hash": lambda c: c.choice([md5, sha1, sha256])(c), "file_hash_md5": md5, "file_hash_sha1": sha1,
    "file_hash_sha256": sha256, "mutex": lambda c: f"Global\\{_label(c)}",
    "registry": lambda c: f"HKEY_LOCAL_MACHINE\\SOFTWARE\\{_label(c)}",
    "file": lambda c: f"C:\\Windows\\Temp\\{_label(c)}.exe",
}

_PATTERNS: dict[str, Leaf] = {
    r"^\d+\.\d+\.\d+$": lambda c: c.choice(["1.0.0", "1.0.1", "1.2.0"]),
    r"^TA\d{4}$": lambda c: c.choice(_tactics).id,
    r"^T\d{4}(\.\d{3})?$": lambda c: c.choice(_active).id,
    r"^T\d{4}\.\d{3}$": lambda c: c.choice([t for t in _active if t.is_subtechnique]).id,
    r"^CVE-\d{4}-\d{4,}$": lambda c: f"CVE-{c.integer(1999, 2026)}-{c.integer(1, 99999):04d}",
    r"^CWE-\d+$": lambda c: f"CWE-{c.integer(1, 1400)}",
}


def mitre_block(c: Any) -> dict[str, str]:
    tech = c.choice(_active)
    tactic = table().tactic(c.choice(tech.tactic_ids))
    block = {"tactic": tactic.id, "tactic_name": tactic.name}
    if tech.is_subtechnique:
        parent = table().technique(tech.parent_id)
        block.update(technique=parent.id, technique_name=parent.name, sub_technique=tech.id,
                     sub_technique_name=tech.name)
    else:
        block.update(technique=tech.id, technique_name=tech.name)
    return {k: v for k, v in block.items() if k in ("tactic", "technique") or c.integer(0, 3)}


def ttp(c: Any) -> dict[str, str]:
    tech = c.choice(_active)
    tactic = table().tactic(c.choice(tech.tactic_ids))
    return {"tactic": tactic.id, "tactic_name": tactic.name, "technique": tech.id, "technique_name": tech.name}


def _parts(node: Node) -> list[Node]:
    out = [node]
    for sub in node.all_of:
        out += _parts(sub)
    return out


class _Gen:
    def __init__(self, c: Any, wild: bool, optional_rate: float, times: str = "any") -> None:
        self.c, self.wild, self.rate, self.times = c, wild, optional_rate, times

    def value(self, parts: list[Node], name: str, path: tuple[str, ...]) -> Any:
        c = self.c
        types = next((p.types for p in parts if p.types), None)
        enum = next((p.enum for p in parts if p.enum is not None), None)
        const = next((p.const for p in parts if p.has_const), None)
        if const is not None:
            return const
        if enum is not None:
            return c.choice(enum)
        t = types[0] if types else "string"
        if t == "object":
            return self.obj(parts, (*path, name))
        if t == "array":
            items = next((p.items for p in parts if p.items is not None), None)
            if name == "ttps":
                return [ttp(c) for _ in range(c.integer(0, 3))]
            return [self.value(_parts(items), name, path) for _ in range(c.integer(0, 3))] if items else []
        if t == "boolean":
            return bool(c.integer(0, 1))
        if t in ("integer", "number"):
            lo = next((p.minimum for p in parts if p.minimum is not None), None)
            hi = next((p.maximum for p in parts if p.maximum is not None), None)
            if name in HINTS and lo is None:
                return HINTS[name](c)
            lo = 0 if lo is None else lo
            if t == "integer":
                return c.integer(int(lo), int(hi) if hi is not None else int(lo) + 100_000)
            if c.integer(0, 2) == 0:
                return c.integer(int(lo), int(hi) if hi is not None else int(lo) + 1000)
            value = round(c.floating(lo, hi if hi is not None else lo + 1e6), 2)
            return min(max(value, lo), hi) if hi is not None else value
        fmt = next((p.format for p in parts if p.format), None)
        pattern = next((p.pattern for p in parts if p.pattern), None)
        if fmt == "date-time":
            return timestamp(c, times=self.times)
        if fmt == "uuid":
            return str(uuid.UUID(int=c.integer(0, 2**128 - 1), version=4))
        if fmt == "email":
            return email(c)
        if fmt == "uri":
            return url(c)
        if pattern is not None:
            return _PATTERNS[pattern](c)
        if name in HINTS and not self.wild:
            return HINTS[name](c)
        return wild(c) if self.wild else words(c)

    def obj(self, parts: list[Node], path: tuple[str, ...]) -> dict[str, Any]:
        c = self.c
        props: dict[str, list[Node]] = {}
        required: set[str] = set()
        for p in parts:
            required.update(p.required)
            for k, v in p.properties.items():
                props.setdefault(k, []).extend(_parts(v))
        out: dict[str, Any] = {}
        for key, nodes in props.items():
            if key not in required and c.integer(0, 99) >= self.rate * 100:
                continue
            out[key] = mitre_block(c) if key == "mitre" and not path else self.value(nodes, key, path)
        if path and path[-1] in ("indicators", "iocs") and isinstance(out.get("type"), str) and "value" in out:
            out["value"] = _INDICATOR_VALUES.get(out["type"], words)(c)
        return out


@lru_cache(maxsize=None)
def _root_parts(event_type: str) -> tuple[Node, ...]:
    """The compiled schema of `event_type`, once per process: compiling it anew for each event was half the cost
    of event_dicts() (the nodes are only read here, so every event comes out the same)."""
    return tuple(_parts(load_node(schemas.schema_uri(event_type))))


def _event(c: Any, event_type: str | None, wild: bool, optional_rate: float, times: str = "any") -> dict[str, Any]:
    if times not in TIME_SPELLINGS:
        raise ValueError(f"times must be one of {TIME_SPELLINGS}, not {times!r}")
    etype = event_type or c.choice(EVENT_TYPES)
    event = _Gen(c, wild, optional_rate, times).obj(list(_root_parts(etype)), ())
    event["type"] = etype
    event["$schema"] = "https://wia.live/security/v1/schema.json"
    return event


@st.composite
def events(draw: Any, event_type: str | None = None, *, wild: bool = False, optional_rate: float = 0.5,
           times: str = "any") -> dict[str, Any]:
    """A valid WIA event dict (of `event_type`, or any type); `times` as TIME_SPELLINGS says."""
    return _event(HypothesisChooser(draw), event_type, wild, optional_rate, times)


def event_dicts(n: int, seed: int = 0, *, event_type: str | None = None, wild: bool = False,
                optional_rate: float = 0.5, times: str = "any") -> list[dict[str, Any]]:
    """n valid events, reproducible from `seed`, without Hypothesis (benchmarks, parity corpora); `times` as
    TIME_SPELLINGS says, every valid spelling by default, like events(). "legacy" gives the events this gave before
    every spelling was drawn, value for value: the benchmarks (numbers compared across sessions) and the few tests
    whose seeds were picked for the shapes they give (an indicator among them, seven STIX objects per event) ask for
    it by name."""
    c = RandomChooser(random.Random(seed))
    return [_event(c, event_type, wild, optional_rate, times) for _ in range(n)]


# --- mutation ---------------------------------------------------------------------------------
_SENTINELS: list[Any] = [None, True, 0, -1, 1.5, 11, "", "x", [], {}, "not-a-uuid", "2025-13-01T00:00:00Z"]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        doc = doc[p]
    doc[path[-1]] = value


def _delete(doc: Any, path: tuple[Any, ...]) -> None:
    for p in path[:-1]:
        doc = doc[p]
    del doc[path[-1]]


def mutations(event: dict[str, Any], rnd: random.Random, count: int = 5) -> list[dict[str, Any]]:
    """`count` variants of `event`, each with one random corruption (most of them invalid)."""
    paths = [p for p in _paths(event) if p]
    out = []
    kinds: list[Callable[[dict[str, Any], tuple[Any, ...]], None]] = [
        lambda d, p: _set(d, p, rnd.choice(_SENTINELS)),                     # wrong type / enum / format miss
        lambda d, p: _delete(d, p),                                          # missing (maybe required) field
        lambda d, p: _set(d, p, _nudge(_get(d, p), rnd)),                    # near-miss of the same type
        lambda d, p: _set(d, p, {"nested": _get(d, p)}),                     # object where a scalar is due
    ]
    for _ in range(count):
        doc = copy.deepcopy(event)
        path = rnd.choice(paths)
        rnd.choice(kinds)(doc, path)
        out.append(doc)
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _nudge(value: Any, rnd: random.Random) -> Any:
    """A value close to `value` that may break a pattern, enum, format or bound."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return rnd.choice([value + 1, -value - 1, value * 1000, float(value), float(value) + 0.5])
    if isinstance(value, float):
        return rnd.choice([value + 10, -value - 0.1, int(value)])
    if isinstance(value, str):
        choices = [value.upper(), value.lower(), value + " ", " " + value, value[:-1], value + "\n",
                   value.replace("-", ""), value.replace("T", "t"), value.replace("Z", "+00:00"),
                   value.replace(":", ""), value + "0", value[::-1], str(uuid.UUID(int=rnd.getrandbits(128))).upper(),
                   "urn:uuid:" + value, "{" + value + "}"]
        return rnd.choice(choices)
    return value


def replace_values(doc: Any, rnd: random.Random, hostile: list[Any]) -> Any:
    """A copy of any JSON document with 1-3 values anywhere replaced by one of `hostile` (or, in an
    object, 15% of the time deleted): for readers of other products' documents."""
    doc = copy.deepcopy(doc)
    for _ in range(rnd.randint(1, 3)):
        paths, todo = [], [((), doc)]
        while todo:
            path, node = todo.pop()
            children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for k, v in children:
                paths.append(path + (k,))
                todo.append((path + (k,), v))
        if not paths:
            break
        path = rnd.choice(paths)
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        if isinstance(parent, dict) and rnd.random() < 0.15:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rnd.choice(hostile))
    return doc
