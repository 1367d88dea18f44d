"""The observables of any WIA event that a reputation service can look up: file hashes, URLs, domains, IPs.

Each is returned once per event as (kind, value) with kind in "file", "url", "domain", "ip". IP
addresses that are not globally routable (RFC 1918, loopback, link-local, documentation ranges...,
also when embedded in an IPv4-mapped, NAT64 or 6to4 IPv6 address) and names under a top-level domain
that is never delegated on the internet (INTERNAL_TLDS: .local, .internal, .home.arpa, .corp...) are
left out: no reputation service knows them, a lookup would spend quota for nothing, and it would hand
the organisation's internal names and addresses to a third party.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

KINDS = ("file", "url", "domain", "ip")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))+\.?$")

#: Top-level domains never delegated on the internet: special-use names (RFC 2606, 6761, 6762, 8375: test,
#: example, invalid, localhost, local, and arpa's reverse and home zones), ICANN's private-use .internal (2024)
#: and the names ICANN deferred for ever as too widely used internally (.corp, .home, .mail).
INTERNAL_TLDS = frozenset({"test", "example", "invalid", "localhost", "local", "arpa", "internal", "corp", "home",
                           "mail"})
#: IPv6 prefixes that carry an IPv4 address in their bits: NAT64 well-known prefix (RFC 6052), 6to4 (RFC 3056).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")

#: WIA indicator / ioc type -> lookup kind
INDICATOR_KINDS = {"ip": "ip", "domain": "domain", "url": "url", "hash": "file", "file_hash_md5": "file",
                   "file_hash_sha1": "file", "file_hash_sha256": "file"}


def normalize(kind: str, value: Any) -> str | None:
    """The canonical lookup value, or None when the value is not usable for that kind."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if kind == "file":
        return value.lower() if len(value) in (32, 40, 64) and _HEX.match(value) else None
    if kind == "ip":
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return None
        address = _embedded_ipv4(address) or address
        return str(address) if address.is_global else None
    if kind == "domain":
        value = value.rstrip(".").lower()
        try:
            ipaddress.ip_address(value)
            return None
        except ValueError:
            pass
        return value if _DOMAIN.match(value) else None
    if kind == "url":
        try:
            parts = urlsplit(value)
        except ValueError:      # a bracketed host that is not an IPv6 address ("http://[::1/x"): not a URL
            return None         # (it raised out of observables(): `enrich` died, forward's batch went unenriched)
        return value if parts.scheme in ("http", "https", "ftp") and parts.netloc else None
    return None


def _embedded_ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 or 6to4 IPv6 address carries (its reputation is that address's)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _candidates(event: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    etype = event.get("type")
    for key in ("indicators", "iocs"):
        items = data.get(key)
        # A list where the schema defines one; an event type whose schema does not (an alert's `iocs`, a network
        # event's `indicators`) may carry any value there: a number raised TypeError out of observables().
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("type"), str) and item["type"] in INDICATOR_KINDS:
                yield INDICATOR_KINDS[item["type"]], item.get("value")
    if etype == "network_event":
        for side in ("source", "destination"):
            yield "ip", _get(data, side, "ip")
            yield "domain", _get(data, side, "hostname")
        yield "url", data.get("url")
        yield "domain", _get(data, "dns", "query")
        yield "domain", _get(data, "tls", "sni")
    if etype == "endpoint_event":
        for part in ("process", "file", "dll"):
            for algo in ("sha256", "sha1", "md5"):
                yield "file", _get(data, part, "hash", algo)
        yield "ip", _get(data, "network_connection", "remote_ip")
    if etype == "auth_event":
        yield "ip", _get(data, "source", "ip")
    for side in ("source", "destination"):
        yield "ip", _get(event, "context", "network", side, "ip")
        yield "domain", _get(event, "context", "network", side, "hostname")


def lookup_value(kind: str, raw: Any) -> str | None:
    """The value to send out for lookup: `normalize`'s, and also
    - an internationalized domain name in its ASCII (punycode) form, as DNS and VirusTotal know it
      (`bücher.de` -> `xn--bcher-kva.de`; it was never looked up, and not listed as unchecked either);
    - an IPv6 address without its zone (`%eth0`: this machine's interface name, meaningless elsewhere; it
      went out in the request path and the lookup answered "not found");
    - a URL without its user info and fragment: credentials (`http://user:password@host/`) and tokens after
      `#` (an OAuth implicit grant's access_token) were handed to a third party, and are not part of the
      resource a reputation is about (a fragment never leaves the browser); scheme and host lowercased."""
    if kind == "domain" and isinstance(raw, str) and not raw.isascii():
        try:
            raw = raw.strip().rstrip(".").encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if kind == "ip" and isinstance(raw, str) and "%" in raw:
        raw = raw.split("%", 1)[0]
    value = normalize(kind, raw)
    if kind == "url" and value is not None:
        parts = urlsplit(value)
        host = parts.netloc.rpartition("@")[2].lower()
        value = urlunsplit((parts.scheme.lower(), host, parts.path, parts.query, ""))
    return value


def observables(event: dict[str, Any]) -> list[tuple[str, str]]:
    """Distinct (kind, value) pairs worth looking up, in the order they appear in the event."""
    seen: dict[tuple[str, str], None] = {}
    for kind, raw in _candidates(event):
        value = lookup_value(kind, raw)
        if value is not None and not _internal_name(kind, value):
            seen.setdefault((kind, value), None)
    return list(seen)


def _internal_name(kind: str, value: str) -> bool:
    """A domain or a URL's host that only means something inside the organisation: under a TLD that is never
    delegated, a single label (http://intranet/), or an address that is not global. (Threat-intel mappings,
    which share `normalize`, still take such names: this is about what is sent out for lookup.)"""
    if kind == "domain":
        host = value
    elif kind == "url":
        host = (urlsplit(value).hostname or "").rstrip(".").lower()
        if normalize("ip", host) is None and _is_address(host):
            return True
        if "." not in host:
            return True
    else:
        return False
    return host.rsplit(".", 1)[-1] in INTERNAL_TLDS


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
