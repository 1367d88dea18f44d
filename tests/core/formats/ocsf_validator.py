"""A validator for OCSF 1.8.0 events built from the pinned compiled schema (tests/reference/ocsf, vendored with its license).

Checks, with a JSON-pointer path per finding: the class exists and is not deprecated; every
required attribute is present (attributes a profile adds only when that profile is listed in
`metadata.profiles`, which must name profiles the class supports); no attribute the class or
object does not define, and none from a profile that is not applied; each value has its
attribute's type (primitive types by their base, ranges, max lengths and regexes; objects
recursively; arrays when `is_array`); enum values (`*_id` integers and enum strings) are
defined; `at_least_one` / `just_one` constraints; `type_uid == class_uid * 100 + activity_id`,
`category_uid` is the class's category, and the captions `class_name`, `category_name`,
`type_name` ("Class: Activity"), `activity_name` and `severity` match their ids when present.
"""
from __future__ import annotations

import gzip
import json
import re
from functools import lru_cache
from pathlib import Path

from refdata import OCSF_SCHEMA
from typing import Any

SCHEMA_PATH = OCSF_SCHEMA


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(gzip.decompress(SCHEMA_PATH.read_bytes()))


@lru_cache(maxsize=None)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _check_primitive(type_name: str, value: Any, path: str, out: list[str]) -> None:
    types = schema()["types"]
    spec = types.get(type_name) or {}
    base = type_name
    while types.get(base, {}).get("base"):
        base = types[base]["base"]
    ok = {
        "boolean_t": isinstance(value, bool),
        "integer_t": isinstance(value, int) and not isinstance(value, bool),
        "long_t": isinstance(value, int) and not isinstance(value, bool),
        "timestamp_t": isinstance(value, int) and not isinstance(value, bool),
        "float_t": isinstance(value, (int, float)) and not isinstance(value, bool),
        "json_t": True,
    }.get(base, isinstance(value, str))
    if type_name == "port_t":
        ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok:
        out.append(f"{path}: {value!r} is not a {type_name}")
        return
    rng = spec.get("range")
    if rng and not rng[0] <= value <= rng[1]:
        out.append(f"{path}: {value!r} is outside {rng}")
    if spec.get("max_len") and isinstance(value, str) and len(value) > spec["max_len"]:
        out.append(f"{path}: longer than {spec['max_len']}")
    if spec.get("regex") and isinstance(value, str) and not _regex(spec["regex"]).search(value):
        out.append(f"{path}: {value!r} does not match the {type_name} pattern")


def _check_object(obj: Any, attrs: dict[str, Any], constraints: dict[str, Any] | None, profiles: set[str],
                  path: str, out: list[str]) -> None:
    if not isinstance(obj, dict):
        out.append(f"{path or '/'}: expected an object")
        return
    for name, attr in attrs.items():
        applies = attr.get("profile") is None or attr["profile"] in profiles
        if attr["requirement"] == "required" and applies and name not in obj:
            out.append(f"{path}/{name}: required attribute missing")
    for name, value in obj.items():
        attr = attrs.get(name)
        where = f"{path}/{name}"
        if attr is None:
            out.append(f"{where}: not an attribute of this class/object")
            continue
        if attr.get("profile") is not None and attr["profile"] not in profiles:
            out.append(f"{where}: belongs to profile {attr['profile']!r}, not listed in metadata.profiles")
        if attr.get("is_array"):
            if not isinstance(value, list):
                out.append(f"{where}: expected an array")
                continue
            for i, item in enumerate(value):
                _check_value(attr, item, f"{where}/{i}", profiles, out)
        else:
            _check_value(attr, value, where, profiles, out)
    for kind, names in (constraints or {}).items():
        present = [n for n in names if n in obj]
        if kind == "at_least_one" and not present:
            out.append(f"{path or '/'}: needs at least one of {names}")
        if kind == "just_one" and len(present) != 1:
            out.append(f"{path or '/'}: needs exactly one of {names}, has {present}")


def _check_value(attr: dict[str, Any], value: Any, path: str, profiles: set[str], out: list[str]) -> None:
    type_name = attr["type"]
    objects = schema()["objects"]
    if type_name in objects:
        if type_name == "object":        # free-form (e.g. `unmapped`)
            if not isinstance(value, dict):
                out.append(f"{path}: expected an object")
            return
        obj = objects[type_name]
        _check_object(value, obj["attributes"], obj.get("constraints"), profiles, path, out)
        return
    _check_primitive(type_name, value, path, out)
    enum = attr.get("enum")
    if enum and not isinstance(value, (dict, list)) and str(value) not in enum:
        out.append(f"{path}: {value!r} is not one of the enum values {sorted(enum)}")


def validate(event: Any) -> list[str]:
    """Every way `event` breaks OCSF 1.8.0 (empty when it is valid)."""
    if not isinstance(event, dict):
        return ["/: an OCSF event is a JSON object"]
    s = schema()
    classes = {c["uid"]: c for c in s["classes"].values()}
    cls = classes.get(event.get("class_uid"))
    if cls is None:
        return [f"/class_uid: {event.get('class_uid')!r} is not an OCSF 1.8.0 class"]
    out: list[str] = []
    if cls.get("@deprecated"):
        out.append(f"/class_uid: {cls['caption']} is deprecated")
    metadata = event.get("metadata") if isinstance(event.get("metadata"), dict) else {}
    profiles = set(metadata.get("profiles") or ())
    for p in sorted(profiles - set(cls.get("profiles") or ())):
        out.append(f"/metadata/profiles: {p!r} is not a profile of {cls['caption']}")
    if metadata.get("version") != "1.8.0":
        out.append(f"/metadata/version: {metadata.get('version')!r} is not 1.8.0")
    _check_object(event, cls["attributes"], cls.get("constraints"), profiles, "", out)
    activity = event.get("activity_id")
    if isinstance(activity, int) and event.get("type_uid") != cls["uid"] * 100 + activity:
        out.append(f"/type_uid: {event.get('type_uid')!r} != class_uid * 100 + activity_id ({cls['uid'] * 100 + activity})")
    category = next(c for c in s["categories"].values() if c["name"] == cls["category"].split("/")[-1]
                    or c["name"] == cls["category"])
    if event.get("category_uid") != category["uid"]:
        out.append(f"/category_uid: {event.get('category_uid')!r} != {category['uid']} ({category['caption']})")
    attrs = cls["attributes"]
    captions = {"class_name": cls["caption"], "category_name": category["caption"]}
    act = (attrs.get("activity_id", {}).get("enum") or {}).get(str(activity))
    if act:
        captions["activity_name"] = act["caption"]
    type_caption = (attrs.get("type_uid", {}).get("enum") or {}).get(str(event.get("type_uid")))
    if type_caption:
        captions["type_name"] = type_caption["caption"]
    sev = (attrs.get("severity_id", {}).get("enum") or {}).get(str(event.get("severity_id")))
    if sev and event.get("severity_id") != 99:
        captions["severity"] = sev["caption"]
    for key, caption in captions.items():
        if key in event and event[key] != caption and not (key == "activity_name" and activity == 99):
            out.append(f"/{key}: {event[key]!r} != {caption!r}")
    return out
