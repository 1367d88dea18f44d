"""STIX 2.1 identifiers and timestamps: deterministic ids (spec section 2.9) and the `Z`-only timestamp form.

SCOs get the spec's UUIDv5 over their ID Contributing Properties (namespace
00abedb4-aa42-466c-9c01-fed23315a9b7, canonical JSON per RFC 8785), so the same observable has the
same id in every producer's bundles. SDOs, SROs and bundles get a *derived* UUID: the SHA-1 name
hash of UUIDv5 (under this project's own namespace, never the SCO one, as section 2.9 requires)
with the version nibble set to 4. Section 2.9 says SDOs and SROs SHOULD use UUIDv4, and the OASIS
validator's strict mode turns that SHOULD into an error; a hash-derived v4 keeps both promises:
re-converting an event gives the same ids, and strict validation passes. Process objects MUST use
UUIDv4 (section 6.11), so they take the derived form too.
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from hashlib import sha1
from json.encoder import encode_basestring
from typing import Any

from ...timeutil import parse_iso, to_iso

#: STIX 2.1 section 2.9: the namespace for deterministic SCO ids.
SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
#: This project's namespace for ids derived from WIA event ids (distinct from SCO_NAMESPACE by rule).
WIA_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://wia.live/security/v1/stix")

#: ID Contributing Properties per SCO type (STIX 2.1 sections 6.1-6.18).
ID_CONTRIBUTING: dict[str, tuple[str, ...]] = {
    "artifact": ("hashes", "payload_bin"),
    "autonomous-system": ("number",),
    "directory": ("path",),
    "domain-name": ("value",),
    "email-addr": ("value",),
    "email-message": ("from_ref", "subject", "body"),
    "file": ("hashes", "name", "extensions", "parent_directory_ref"),
    "ipv4-addr": ("value",),
    "ipv6-addr": ("value",),
    "mac-addr": ("value",),
    "mutex": ("name",),
    "network-traffic": ("start", "end", "src_ref", "dst_ref", "src_port", "dst_port", "protocols", "extensions"),
    "software": ("name", "cpe", "swid", "vendor", "version"),
    "url": ("value",),
    "user-account": ("account_type", "user_id", "account_login"),
    "windows-registry-key": ("key", "values"),
    "x509-certificate": ("hashes", "serial_number"),
}

#: Section 2.9: when `hashes` contributes, only one hash is used, in this order of preference.
_HASH_PREFERENCE = ("MD5", "SHA-1", "SHA-256", "SHA-512")

_SCO_NAMESPACE_BYTES = SCO_NAMESPACE.bytes
_WIA_NAMESPACE_BYTES = WIA_NAMESPACE.bytes
#: hex digit of UUID byte 8 -> the same digit with the RFC 4122 variant bits (10xx) set
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}

_STIX_TIME = re.compile(r"^\d{4}-(0[1-9]|1[012])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?Z$")
#: What stix_time() keeps as it is: `Z` and at least milliseconds (section 3.2: `created` and `modified`
#: MUST be precise to the millisecond; "...:00Z" and "...:00.5Z" are written out as "...:00.000Z", "...:00.500Z"),
#: at most microseconds: the OASIS reference TAXII server (medallion) reads `modified` with strptime's %f, and one
#: object with more digits made every Get Objects of its collection fail (500), so they are cut to microseconds.
_STIX_TIME_MS = re.compile(r"^\d{4}-(0[1-9]|1[012])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)\.\d{3,6}Z$")


# One encoder for all calls: json.dumps with these options would build a new JSONEncoder every time.
_encode_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _canonical(contributing: dict[str, Any]) -> str:
    # RFC 8785 for the values SCOs hold here (strings, integers, lists, objects with ASCII keys).
    if len(contributing) == 1:
        (key, value), = contributing.items()
        if type(value) is str:      # most SCOs ({"value": ...}): the encoder's own output, 5x faster
            return f"{{{encode_basestring(key)}:{encode_basestring(value)}}}"
    return _encode_canonical(contributing)


def uuid5_str(namespace: bytes, name: str, version: str = "5") -> str:
    """`str(uuid.uuid5(UUID(bytes=namespace), name))`, without building UUID objects (the bulk of the
    cost of an id); `version="4"` gives the same UUID with its version digit set to 4."""
    digest = sha1(namespace + name.encode("utf-8")).hexdigest()
    return (f"{digest[:8]}-{digest[8:12]}-{version}{digest[13:16]}-"
            f"{_VARIANT[digest[16]]}{digest[17:20]}-{digest[20:32]}")


def _one_hash(hashes: dict[str, str]) -> dict[str, str]:
    for name in _HASH_PREFERENCE:
        if name in hashes:
            return {name: hashes[name]}
    first = next(iter(hashes))
    return {first: hashes[first]}


def sco_id(obj: dict[str, Any]) -> str:
    """The deterministic id of an SCO (set `type` and its properties first; refs must already be ids)."""
    return typed_sco_id(obj["type"], obj)


def typed_sco_id(sco_type: str, props: dict[str, Any]) -> str:
    """sco_id() of an SCO of type `sco_type` with properties `props` (which need not hold `type`)."""
    contributing = {}
    for key in ID_CONTRIBUTING.get(sco_type, ()):
        if key in props:
            contributing[key] = _one_hash(props[key]) if key == "hashes" else props[key]
    if not contributing:
        raise ValueError(f"{sco_type} has no ID Contributing Property; use derived_id()")
    return f"{sco_type}--{uuid5_str(_SCO_NAMESPACE_BYTES, _canonical(contributing))}"


def derived_uuid(*parts: str) -> str:
    """A UUIDv4-form id that is a pure function of `parts` (see the module docstring)."""
    return uuid5_str(_WIA_NAMESPACE_BYTES, "|".join(parts), version="4")


def derived_id(stix_type: str, *parts: str) -> str:
    # derived_uuid inlined: this runs for every SDO
    return f"{stix_type}--{uuid5_str(_WIA_NAMESPACE_BYTES, '|'.join((stix_type, *parts)), version='4')}"


def stix_time(value: str) -> str:
    """An RFC 3339 timestamp in the form STIX requires (UTC, `Z`, at least milliseconds, at most microseconds);
    kept as is when already in that form."""
    if _STIX_TIME_MS.fullmatch(value):     # not match: `$` would keep the one trailing newline RFC 3339 parsers
        return value                       # (and WIA's date-time format) take, which STIX's syntax does not
    moment = parse_iso(value).astimezone(timezone.utc)
    if moment.microsecond % 1000:      # keep every digit the source had down to the microsecond
        return f"{to_iso(moment)[:-1]}{moment.microsecond % 1000:03d}Z"     # not strftime: year 232 is "232"
    return to_iso(moment)


def later(a: str, b: str) -> bool:
    """True when timestamp `a` is strictly after `b` (both RFC 3339)."""
    if isinstance(a, str) and isinstance(b, str) and _STIX_TIME.match(a) and _STIX_TIME.match(b):
        # The `Z` form stix_time() writes: fromisoformat reads it as parse_iso would, 5x faster.
        try:
            return datetime.fromisoformat(a) > datetime.fromisoformat(b)
        except ValueError:
            pass        # parse_iso below raises its own error (or reads what fromisoformat refused)
    return parse_iso(a) > parse_iso(b)
