"""Checks that never fail an event but tell the sender something is off: $schema, ATT&CK ids and names, timestamps."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterator

from ..attack import table
from .result import ValidationIssue

# The upstream SDK validators accept only this timestamp spelling (UTC "Z", 0 or 3 fraction digits).
_SDK_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z", re.ASCII).fullmatch


_SCHEMA_MISSING = ValidationIssue("/$schema", "schema_missing",
                                  "no $schema: the standard recommends https://wia.live/security/v1/schema.json")
_MITRE_KEYS = ("tactic", "tactic_name", "technique", "technique_name", "sub_technique", "sub_technique_name")
_cache: dict[tuple[Any, ...], tuple[ValidationIssue, ...]] = {}


def semantic_warnings(event: dict[str, Any]) -> list[ValidationIssue]:
    out: list[ValidationIssue] = []
    if "$schema" not in event:
        out.append(_SCHEMA_MISSING)
    ts = event.get("timestamp")
    if type(ts) is str and _SDK_TIMESTAMP(ts) is None:
        out.append(ValidationIssue("/timestamp", "timestamp_not_canonical",
                                   f"{ts[:40]!r} is valid RFC 3339 but not UTC 'Z' with 0 or 3 fraction digits; "
                                   "upstream SDK validators reject it"))
    mitre = event.get("mitre")
    if type(mitre) is dict:
        out += cached_attack_warnings(mitre, "/mitre")
    if event.get("type") == "threat_intel":
        data = event.get("data")
        ttps = data.get("ttps") if type(data) is dict else None
        if type(ttps) is list:
            for i, ttp in enumerate(ttps):
                if type(ttp) is dict:
                    out += cached_attack_warnings(ttp, f"/data/ttps/{i}")
    return out


def cached_attack_warnings(mitre: dict[str, Any], base: str) -> tuple[ValidationIssue, ...]:
    """attack_warnings, memoized by the block's values: the same few ATT&CK blocks recur in a stream."""
    try:
        key = (base, *(mitre.get(k) for k in _MITRE_KEYS))
        found = _cache.get(key)
    except TypeError:                       # an unhashable value: just compute
        return tuple(attack_warnings(mitre, base))
    if found is None:
        if len(_cache) > 8192:
            _cache.clear()
        found = _cache[key] = tuple(attack_warnings(mitre, base))
    return found


def attack_warnings(mitre: dict[str, Any], base: str) -> Iterator[ValidationIssue]:
    """Unknown, revoked or deprecated ids; a technique outside its tactic; names that disagree with ATT&CK."""
    tactic_id = mitre.get("tactic")
    tactic = None
    if isinstance(tactic_id, str):
        tactic, issues = _tactic_issues(base, tactic_id, _str_or_none(mitre.get("tactic_name")))
        yield from issues
    tactic_key = tactic.id if tactic is not None else None
    for key, name_key in (("technique", "technique_name"), ("sub_technique", "sub_technique_name")):
        tid = mitre.get(key)
        if isinstance(tid, str):
            yield from _technique_issues(base, key, name_key, tid, _str_or_none(mitre.get(name_key)), tactic_key)
    sub, technique = mitre.get("sub_technique"), mitre.get("technique")
    if isinstance(sub, str) and isinstance(technique, str) and "." in sub \
            and _canonical_technique(technique).split(".")[0] != _canonical_technique(sub).split(".")[0]:
        yield ValidationIssue(f"{base}/sub_technique", "attack_parent_mismatch",
                              f"{sub} is not a sub-technique of {technique}")


def _canonical_technique(tid: str) -> str:
    tech = table().technique(tid)
    return tech.id if tech is not None else tid


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@lru_cache(maxsize=4096)
def _tactic_issues(base: str, tactic_id: str, name: str | None) -> tuple[Any, tuple[ValidationIssue, ...]]:
    t = table()
    tactic = t.tactic(tactic_id)
    if tactic is None or tactic.id != tactic_id:
        # a shortname, name or another spelling of a tactic: say which id it means
        hint = f"; write it as {tactic.id} ({tactic.name})" if tactic is not None else ""
        return None, (ValidationIssue(f"{base}/tactic", "attack_unknown_tactic",
                                      f"{tactic_id!r} is not an ATT&CK v{t.version} Enterprise tactic id{hint}"),)
    return tactic, tuple(_name_check({"tactic_name": name}, base, "tactic_name", tactic.name))


@lru_cache(maxsize=16384)
def _technique_issues(base: str, key: str, name_key: str, tid: str, name: str | None,
                      tactic_id: str | None) -> tuple[ValidationIssue, ...]:
    t = table()
    tech = t.technique(tid)
    if tech is None or tech.id != tid:
        # Only Enterprise is bundled: a Mobile or ICS id (T0817) is unknown here, and says so
        hint = f"; write it as {tech.id} ({tech.name})" if tech is not None else _named_hint(tid)
        return (ValidationIssue(f"{base}/{key}", "attack_unknown_technique",
                                f"{tid!r} is not an ATT&CK v{t.version} Enterprise technique{hint}"),)
    out: list[ValidationIssue] = []
    if tech.status == "revoked":
        repl = t.replacement(tid)
        hint = f"; use {repl.id} ({repl.name})" if repl else ""
        out.append(ValidationIssue(f"{base}/{key}", "attack_revoked",
                                   f"{tid} ({tech.name}) is revoked in ATT&CK v{t.version}{hint}"))
    elif tech.status == "deprecated":
        out.append(ValidationIssue(f"{base}/{key}", "attack_deprecated",
                                   f"{tid} ({tech.name}) is deprecated in ATT&CK v{t.version}, with no replacement"))
    parent = t.technique(tech.parent_id) if tech.parent_id else None
    # ATT&CK's site and Navigator write a sub-technique "Parent: Sub" (Valid Accounts: Cloud Accounts)
    also = (f"{parent.name}: {tech.name}",) if parent is not None else ()
    out += _name_check({name_key: name}, base, name_key, tech.name, also)
    if tactic_id is not None and tech.status == "active" and tactic_id not in tech.tactic_ids:
        tactic = t.tactic(tactic_id)
        order = {x.id: i for i, x in enumerate(t.tactics)}
        theirs = ", ".join(f"{x} ({t.tactic(x).name})"                  # type: ignore[union-attr]
                           for x in sorted(tech.tactic_ids, key=order.__getitem__))
        out.append(ValidationIssue(f"{base}/{key}", "attack_tactic_mismatch",
                                   f"{tid} ({tech.name}) is not in tactic {tactic.id} ({tactic.name}); "
                                   f"its tactics: {theirs or 'none'}"))
    return tuple(out)


def _named_hint(name: str) -> str:
    """For a technique given by its name (feeds often carry 'PowerShell' where the id goes): the id(s)."""
    named = [x for x in table().techniques_named(name) if x.status == "active"]
    if len(named) == 1:
        return f"; that is the name of {named[0].id}: write the id"
    if named:
        return f"; that is the name of {', '.join(x.id for x in named)}: write the id of the one meant"
    return ""


def _name_check(mitre: dict[str, Any], base: str, key: str, expected: str,
                also: tuple[str, ...] = ()) -> Iterator[ValidationIssue]:
    given = mitre.get(key)
    if isinstance(given, str) and given.casefold() not in {x.casefold() for x in (expected, *also)}:
        yield ValidationIssue(f"{base}/{key}", "attack_name_mismatch",
                              f"{given[:80]!r} disagrees with ATT&CK's name {expected!r}")
