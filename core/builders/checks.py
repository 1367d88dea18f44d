"""Checks builders make on values the schema types only as strings or integers, but whose meaning the
standard states: IP addresses ("IP 주소"), MD5/SHA-1/SHA-256 hashes, ports, CVSS vectors and ratings.

Each check returns the value unchanged or raises InvalidValueError naming the builder field. Values of
another JSON type are passed through: build() reports those at their JSON pointer.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any

from ..errors import InvalidValueError

HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64}
_HEX = re.compile(r"[0-9a-fA-F]+", re.ASCII).fullmatch


def ip_address(owner: type, field: str, value: Any) -> Any:
    """An IPv4 or IPv6 address (no leading zeros in IPv4, as Python's ipaddress reads them)."""
    if isinstance(value, str):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise InvalidValueError(owner, field, f"{value[:80]!r} is not an IPv4 or IPv6 address") from None
    return value


def ip_or_network(owner: type, field: str, value: Any) -> Any:
    """An address or a CIDR range (an indicator of type ip may name a range, as STIX ipv4-addr does)."""
    if isinstance(value, str):
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise InvalidValueError(owner, field, f"{value[:80]!r} is not an IP address or CIDR range") from None
    return value


def port(owner: type, field: str, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= 65535:
        raise InvalidValueError(owner, field, f"{value} is not a port (0 to 65535)")
    return value


def hex_hash(owner: type, field: str, value: Any, algorithm: str) -> Any:
    """A hex digest of the algorithm's length (either case)."""
    length = HASH_LENGTHS[algorithm]
    if isinstance(value, str) and (len(value) != length or not _HEX(value)):
        raise InvalidValueError(owner, field, f"{value[:80]!r} is not an {algorithm.upper()} hash "
                                              f"({length} hex digits, got {len(value)} characters)")
    return value


def indicator_value(owner: type, field: str, kind: Any, value: Any) -> Any:
    """The value of an indicator of type ip (address or range) or file_hash_md5/sha1/sha256; other
    types (domain, url, the generic hash, ...) are taken as given."""
    if kind == "ip":
        return ip_or_network(owner, field, value)
    if isinstance(kind, str) and kind.startswith("file_hash_") and kind[len("file_hash_"):] in HASH_LENGTHS:
        return hex_hash(owner, field, value, kind[len("file_hash_"):])
    return value


# CVSS base metrics (all required, once) and the other metrics each version defines, with their values.
# Sources: FIRST CVSS v2 guide section 2.4, v3.1 specification section 6, v4.0 specification section 7.
_V3_BASE = {"AV": "NALP", "AC": "LH", "PR": "NLH", "UI": "NR", "S": "UC", "C": "HLN", "I": "HLN", "A": "HLN"}
_V3_MORE = {"E": "XUPFH", "RL": "XOTWU", "RC": "XURC", "CR": "XLMH", "IR": "XLMH", "AR": "XLMH",
            "MAV": "XNALP", "MAC": "XLH", "MPR": "XNLH", "MUI": "XNR", "MS": "XUC", "MC": "XHLN", "MI": "XHLN",
            "MA": "XHLN"}
_V4_BASE = {"AV": "NALP", "AC": "LH", "AT": "NP", "PR": "NLH", "UI": "NPA", "VC": "HLN", "VI": "HLN", "VA": "HLN",
            "SC": "HLN", "SI": "HLN", "SA": "HLN"}
_V4_MORE = {"E": "XAPU", "CR": "XHML", "IR": "XHML", "AR": "XHML", "MAV": "XNALP", "MAC": "XLH", "MAT": "XNP",
            "MPR": "XNLH", "MUI": "XNPA", "MVC": "XHLN", "MVI": "XHLN", "MVA": "XHLN", "MSC": "XHLN", "MSI": "XSHLN",
            "MSA": "XSHLN", "S": "XNP", "AU": "XNY", "R": "XAUI", "V": "XDC", "RE": "XLMH",
            "U": ("X", "Clear", "Green", "Amber", "Red")}
_V2_BASE = {"AV": ("L", "A", "N"), "AC": ("H", "M", "L"), "Au": ("M", "S", "N"), "C": ("N", "P", "C"),
            "I": ("N", "P", "C"), "A": ("N", "P", "C")}
_V2_MORE = {"E": ("U", "POC", "F", "H", "ND"), "RL": ("OF", "TF", "W", "U", "ND"), "RC": ("UC", "UR", "C", "ND"),
            "CDP": ("N", "L", "LM", "MH", "H", "ND"), "TD": ("N", "L", "M", "H", "ND"), "CR": ("L", "M", "H", "ND"),
            "IR": ("L", "M", "H", "ND"), "AR": ("L", "M", "H", "ND")}
_GRAMMAR: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {"2.0": ("", _V2_BASE, _V2_MORE), "3.0": ("CVSS:3.0/", _V3_BASE, _V3_MORE),
            "3.1": ("CVSS:3.1/", _V3_BASE, _V3_MORE), "4.0": ("CVSS:4.0/", _V4_BASE, _V4_MORE)}


def cvss_vector(owner: type, version: Any, vector: Any) -> Any:
    """A vector of the stated CVSS version: its prefix, every base metric once, known metrics and values."""
    if not isinstance(vector, str) or version not in _GRAMMAR:
        return vector          # a version outside the schema's enum is reported by build() at its path
    prefix, base, more = _GRAMMAR[version]

    def refuse(why: str) -> InvalidValueError:
        return InvalidValueError(owner, "data.cvss.vector", f"{vector[:120]!r} is not a CVSS {version} vector: {why}")

    body = vector
    if version == "2.0" and body.startswith("(") and body.endswith(")"):
        body = body[1:-1]          # NVD writes v2 vectors in parentheses
    if prefix:
        if not body.startswith(prefix):
            raise refuse(f"it must start with {prefix!r}")
        body = body[len(prefix):]
    elif body.startswith("CVSS:"):
        raise refuse("a CVSS v2 vector has no CVSS: prefix")
    seen: dict[str, str] = {}
    for part in body.split("/"):
        key, sep, value = part.partition(":")
        allowed = base.get(key) or more.get(key)
        if not sep or allowed is None:
            raise refuse(f"{part!r} is not a metric of this version")
        if key in seen:
            raise refuse(f"metric {key} appears twice")
        if value not in (allowed if isinstance(allowed, tuple) else tuple(allowed)):
            raise refuse(f"{key}:{value} is not one of {key}:{'|'.join(allowed)}")
        seen[key] = value
    missing = [k for k in base if k not in seen]
    if missing:
        raise refuse(f"base metric{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing")
    return vector


def cvss_rating(score: float, version: str = "3.1") -> str:
    """The qualitative rating of a base score: v3.x/v4.0 none/low/medium/high/critical (FIRST);
    v2.0 low/medium/high (NVD's v2 ratings; v2 has neither none nor critical)."""
    if version == "2.0":
        return "low" if score < 4 else "medium" if score < 7 else "high"
    if score == 0:
        return "none"
    if score < 4:
        return "low"
    if score < 7:
        return "medium"
    if score < 9:
        return "high"
    return "critical"
