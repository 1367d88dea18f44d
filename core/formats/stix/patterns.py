"""STIX patterns for WIA indicators (STIX 2.1 section 9): one comparison per indicator, values escaped.

Out: each WIA indicator type has one object path (`ip` picks ipv4-addr or ipv6-addr with the
`ipaddress` module; a bare `hash` picks its algorithm by length). String literals escape `\\` and
`'` as section 9.2 requires. In: every `path = 'literal'` comparison on a path listed here becomes
one WIA indicator; patterns with none are refused by the caller.
"""
from __future__ import annotations

import ipaddress
import re

#: WIA hash indicator type -> STIX hash algorithm name (hash-algorithm-ov)
HASH_TYPES = {"file_hash_md5": "MD5", "file_hash_sha1": "SHA-1", "file_hash_sha256": "SHA-256"}
#: hex length -> algorithm, for the untyped `hash` indicator
HASH_BY_LENGTH = {32: "MD5", 40: "SHA-1", 64: "SHA-256", 128: "SHA-512"}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
#: a dotted-quad IPv4 address as the ipaddress module accepts it (ASCII digits, 0-255, no leading zeros)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")

#: Windows hive abbreviations; section 6.13 requires the full hive name in `key`.
HIVES = {"HKLM": "HKEY_LOCAL_MACHINE", "HKCU": "HKEY_CURRENT_USER", "HKCR": "HKEY_CLASSES_ROOT",
         "HKU": "HKEY_USERS", "HKCC": "HKEY_CURRENT_CONFIG"}

_SIMPLE_PATHS = {"domain": "domain-name:value", "url": "url:value", "email": "email-addr:value",
                 "file": "file:name", "mutex": "mutex:name"}


class PatternValueError(ValueError):
    """A WIA indicator value that no STIX pattern can carry (e.g. `ip` that is not an address)."""


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ip_kind(value: str) -> str:
    """"ipv4-addr" or "ipv6-addr" for an address or CIDR block; PatternValueError otherwise."""
    text = value.strip()
    # Plain addresses first (the usual case): ip_network reads each of them as the same version,
    # at 2-8x the cost.
    if _IPV4.fullmatch(text):
        return "ipv4-addr"
    if ":" in text and "/" not in text:
        try:
            ipaddress.IPv6Address(text)
            return "ipv6-addr"
        except ValueError:
            pass        # ip_network below refuses it too, with the error this function raises
    try:
        version = ipaddress.ip_network(text, strict=False).version
    except ValueError:
        raise PatternValueError(f"{value!r} is not an IP address or CIDR block") from None
    return "ipv4-addr" if version == 4 else "ipv6-addr"


def hash_algorithm(wia_type: str, value: str) -> str:
    algo = HASH_TYPES.get(wia_type) or HASH_BY_LENGTH.get(len(value))
    if algo is None or not _HEX.match(value) or HASH_BY_LENGTH.get(len(value)) != algo:
        raise PatternValueError(f"{value!r} is not a hex {algo or 'MD5/SHA-1/SHA-256/SHA-512'} digest")
    return algo


def expand_hive(key: str) -> str:
    head, sep, rest = key.partition("\\")
    full = HIVES.get(head.upper())
    return f"{full}{sep}{rest}" if full else key


def object_path(wia_type: str, value: str) -> str:
    """The STIX object path a WIA indicator type compares (PatternValueError when the value cannot fit)."""
    if wia_type == "ip":
        return f"{ip_kind(value)}:value"
    if wia_type == "hash" or wia_type in HASH_TYPES:
        algo = hash_algorithm(wia_type, value)
        return "file:hashes.MD5" if algo == "MD5" else f"file:hashes.'{algo}'"
    if wia_type == "registry":
        return "windows-registry-key:key"
    try:
        return _SIMPLE_PATHS[wia_type]
    except KeyError:
        raise PatternValueError(f"no STIX pattern for indicator type {wia_type!r}") from None


def pattern_for(wia_type: str, value: str) -> str:
    """`[path = 'value']` for one WIA indicator (section 9)."""
    path = object_path(wia_type, value)
    if wia_type == "registry":
        value = expand_hive(value)
    return f"[{path} = {quote(value)}]"


# -- parsing ------------------------------------------------------------------------------------

_COMPARISON = re.compile(
    r"([a-z0-9-]+:[A-Za-z0-9_.'\-]+)\s*=\s*'((?:[^'\\]|\\.)*)'")
_UNESCAPE = re.compile(r"\\(.)")

#: object path (quotes removed) -> WIA indicator type, most specific vocabulary
_PATH_TYPES = {
    "ipv4-addr:value": "ip", "ipv6-addr:value": "ip", "domain-name:value": "domain", "url:value": "url",
    "email-addr:value": "email", "file:name": "file", "mutex:name": "mutex",
    "windows-registry-key:key": "registry", "file:hashes.MD5": "file_hash_md5",
    "file:hashes.SHA-1": "file_hash_sha1", "file:hashes.SHA-256": "file_hash_sha256",
    "file:hashes.SHA-512": "hash",
}
_GENERIC = {"file_hash_md5": "hash", "file_hash_sha1": "hash", "file_hash_sha256": "hash"}


def comparisons(pattern: str, vocabulary: frozenset[str]) -> list[tuple[str, str]]:
    """(WIA type, value) for every equality comparison in `pattern` whose type fits `vocabulary`."""
    found = []
    for path, literal in _COMPARISON.findall(pattern):
        wia_type = _PATH_TYPES.get(path.replace("'", ""))
        if wia_type is None:
            continue
        if wia_type not in vocabulary:
            wia_type = _GENERIC.get(wia_type, "")    # e.g. incident iocs only know "hash"
            if wia_type not in vocabulary:
                continue
        found.append((wia_type, _UNESCAPE.sub(r"\1", literal)))
    return found
