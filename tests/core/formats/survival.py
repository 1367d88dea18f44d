"""Which WIA fields survive a WIA -> format -> WIA round trip, as dotted patterns (`data.indicators[].type`).

A leaf survives when the parsed event has the same value at the same path; lists of scalars are
one leaf, empty lists and objects carry nothing and are skipped, and two date-times survive when
they name the same instant to the millisecond (WIA's precision: formats normalise offsets to UTC, and
readers of documents from other products write UTC milliseconds). `surviving(pairs)` gives, per event
type, the patterns that survived in *every* event that had them, so the documented list can be
asserted exactly.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from wia_security.timeutil import parse_iso

_INDEX = re.compile(r"\[\d+\]")


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(leaves(v, f"{path}.{k}" if path else k))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(leaves(v, f"{path}[{i}]"))
        return out
    if value == [] or value == {}:
        return {}
    return {path: value}


def same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if isinstance(a, str) and isinstance(b, str) and len(a) >= 19 and a[4:5] == "-" and a[10:11] in "Tt":
        try:
            x, y = parse_iso(a), parse_iso(b)
        except ValueError:
            return False
        return x.replace(microsecond=x.microsecond // 1000 * 1000) == \
            y.replace(microsecond=y.microsecond // 1000 * 1000)
    return False


def survivors(original: dict[str, Any], back: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(patterns present in `original`, patterns whose every instance came back equal)."""
    a, b = leaves(original), leaves(back)
    present: set[str] = set()
    lost: set[str] = set()
    for path, value in a.items():
        pattern = _INDEX.sub("[]", path)
        present.add(pattern)
        if path not in b or not same(value, b[path]):
            lost.add(pattern)
    return present, present - lost


def surviving(pairs: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, set[str]]:
    present: dict[str, set[str]] = {}
    lost: dict[str, set[str]] = {}
    for original, back in pairs:
        p, s = survivors(original, back)
        present.setdefault(original["type"], set()).update(p)
        lost.setdefault(original["type"], set()).update(p - s)
    return {t: present[t] - lost[t] for t in present}
