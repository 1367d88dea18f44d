"""OCSF 1.8.0 tables, loaded once at import: class headers, enum captions and value patterns.

The data file is generated from the pinned compiled schema by scripts/build_ocsf_tables.py (OCSF
schema, Apache-2.0: LICENSE.ocsf-schema.txt beside it). Captions are never typed by hand: the
converter picks the enum *id* (that is the mapping) and looks the caption up here.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_DATA = json.loads(Path(__file__).with_name("ocsf-1.8.0-tables.json").read_text(encoding="utf-8"))

OCSF_VERSION: str = _DATA["ocsf_version"]
#: class uid -> {"name", "category_uid", "category_name", "activities": {id: caption}, "status": {id: caption}, "profiles"}
CLASSES: dict[int, dict[str, Any]] = {
    int(uid): {**c, "activities": {int(k): v for k, v in c["activities"].items()},
               "status": {int(k): v for k, v in c["status"].items()}}
    for uid, c in _DATA["classes"].items()
}
#: value type name -> {"regex", "max_len", "range"} (ip_t, mac_t, email_t, datetime_t)
TYPES: dict[str, dict[str, Any]] = _DATA["types"]
#: enum key (see the build script) -> {id: caption}
ENUMS: dict[str, dict[int, str]] = {k: {int(i): c for i, c in e.items()} for k, e in _DATA["enums"].items()}


def _pattern(type_name: str) -> tuple[Any, int | None]:
    spec = TYPES[type_name]
    return re.compile(spec["regex"]).search, spec.get("max_len")


_IP, _IP_MAX = _pattern("ip_t")
_MAC, _MAC_MAX = _pattern("mac_t")
_EMAIL, _ = _pattern("email_t")


_IP_SEEN: dict[str, bool] = {}         # addresses repeat in real streams; bounded below


#: the octets the pattern's IPv4 branch takes ("0".."255", no leading zeros)
_OCTETS = frozenset(str(i) for i in range(256))


def is_ip(value: Any) -> bool:
    """An ip_t value (the schema's own pattern and length limit)."""
    if type(value) is not str:
        return False
    # Fast accept: a plain dotted quad is what the pattern's first branch matches (the pattern costs ~1 us).
    parts = value.split(".")
    if len(parts) == 4 and _OCTETS.issuperset(parts):
        return True
    known = _IP_SEEN.get(value)
    if known is not None:
        return known
    ok = len(value) <= (_IP_MAX or 40) and _IP(value) is not None
    if len(_IP_SEEN) >= 4096:
        _IP_SEEN.clear()
    _IP_SEEN[value] = ok
    return ok


def is_mac(value: Any) -> bool:
    return type(value) is str and len(value) <= (_MAC_MAX or 32) and _MAC(value) is not None


def is_email(value: Any) -> bool:
    return type(value) is str and _EMAIL(value) is not None


def is_port(value: Any) -> bool:
    return type(value) is int and 0 <= value <= 65535


def caption(enum: str, ident: int) -> str:
    return ENUMS[enum][ident]


#: (class_uid, activity_id) -> the class/category/activity/type attributes, prebuilt (copied per event)
HEADERS: dict[tuple[int, int], dict[str, Any]] = {
    (uid, act): {"class_uid": uid, "class_name": c["name"], "category_uid": c["category_uid"],
                 "category_name": c["category_name"], "activity_id": act, "activity_name": name,
                 "type_uid": uid * 100 + act, "type_name": f"{c['name']}: {name}"}
    for uid, c in CLASSES.items() for act, name in c["activities"].items()
}


def header(class_uid: int, activity_id: int, activity_name: str | None = None) -> dict[str, Any]:
    """A new event dict holding the class header; `activity_name` overrides the caption (only for 99 Other)."""
    doc = dict(HEADERS[(class_uid, activity_id)])
    if activity_name is not None:
        doc["activity_name"] = activity_name
    return doc
