"""One parser for `product+https://host:port/path?option=value` sink URLs, so every HTTP sink reads options alike.

URL query keys and keyword options are the same names (giving one twice is an error), secrets come
only by reference (`token_env=VAR`, `token_file=/path`, resolved into `Secret`s; credentials inside
the URL are refused), delivery-policy keys (`max_events`, `max_wait`, ...) become a DeliveryPolicy,
and unknown options are refused naming the known ones.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

from wia_security.errors import ConfigError

from .policy import DeliveryPolicy

log = logging.getLogger("wia_security.connectors")

#: options every BatchingSink takes beside its own
MACHINERY_OPTIONS = frozenset({"dead_letter", "sleep", "clock"})


@dataclass
class SinkUrl:
    base: str                         # transport://host[:port]/path, without credentials or query
    where: str                        # scheme://host, safe for messages and logs
    options: dict[str, Any]           # the sink's own options, secrets resolved
    delivery: DeliveryPolicy | None


def parse_sink_url(url: str, options: Mapping[str, Any], *, product: str, known: Iterable[str],
                   required: Mapping[str, str] | None = None, booleans: Iterable[str] = ("tls_verify",),
                   numbers: Iterable[str] = (), integers: Iterable[str] = ()) -> SinkUrl:
    """Parse and check a sink URL and its options. `required` maps option -> what to say when it is missing."""
    from wia_security.connectors.config import resolve_options

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    prefix = scheme.split("+", 1)[0]
    transport = scheme.split("+", 1)[1] if "+" in scheme else "https"
    where = f"{scheme}://{parts.hostname}"
    if transport not in ("http", "https"):
        raise ConfigError(f"use {prefix}+https:// ({prefix}+http:// only for a local test server)", key="url",
                          source=where)
    if parts.username or parts.password:
        raise ConfigError("put credentials in token_env/token_file options, not in the URL", key="url", source=where)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    twice = set(query) & set(options)
    if twice:
        raise ConfigError(f"given in both the URL and the options: {', '.join(sorted(twice))}", key=sorted(twice)[0])
    raw = {**resolve_options(query, source=where), **options}
    delivery = raw.pop("delivery", None)
    delivery_keys = {k: raw.pop(k) for k in list(raw) if k in DeliveryPolicy.keys()}
    if delivery_keys:
        delivery = DeliveryPolicy.from_mapping(delivery_keys, base=delivery, source=where)
    known = tuple(known)
    unknown = set(raw) - set(known) - MACHINERY_OPTIONS
    if unknown:
        raise ConfigError(f"unknown {product} option(s) {', '.join(sorted(unknown))}; known: {', '.join(known)}",
                          key=sorted(unknown)[0], source=where)
    for key in booleans:
        if key in raw:
            raw[key] = boolean(raw[key], key, where)
    for key in numbers:
        if isinstance(raw.get(key), str):
            raw[key] = number(raw[key], key, where)
    for key in integers:
        if isinstance(raw.get(key), str):
            raw[key] = int(number(raw[key], key, where))
    for key, hint in (required or {}).items():
        if key not in raw:
            raise ConfigError(f"{hint}: {key}_env=VAR or {key}_file=/path", key=key, source=where)
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return SinkUrl(f"{transport}://{netloc}{parts.path}", where, raw, delivery)


def warn_tls_off(name: str, option: str) -> None:
    """The one warning every connector logs when a user turns certificate verification off (a WARNING
    reaches stderr even with no logging configured)."""
    log.warning("%s: TLS certificate verification is OFF (%s): anyone on the network path can read and "
                "change this traffic, the credential included", name, option)


def tls_verification(name: str, tls_verify: Any, ca_file: str | None) -> bool | str:
    """requests' `verify` for the `tls_verify` and `ca_file` options: the CA file, True, or False (warned).
    Both tls_verify=false and a ca_file is most likely a mistake (a tls_verify=false left from a trial with a
    self-signed certificate, or a CA file given to fix what turning verification off worked around): the
    safe reading wins, certificates are verified against the CA file, and a warning says the option is ignored."""
    if ca_file and not tls_verify:
        log.warning("%s: tls_verify=false is ignored because ca_file is given: certificates are verified against "
                    "%s (give only one of the two)", name, ca_file)
    elif not tls_verify:
        warn_tls_off(name, "tls_verify=false")
    return ca_file or bool(tls_verify)


def boolean(value: Any, key: str, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"must be true or false, got {value!r}", key=key, source=source)


def seconds(value: Any, key: str, source: str | None = None) -> float:
    """A timeout: a finite number of seconds > 0 (`nan`, `inf`, 0 and negatives would mean never or at once)."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"must be a number of seconds, got {value!r}", key=key, source=source) from None
    if not 0 < result < float("inf"):
        raise ConfigError(f"must be a number of seconds > 0, got {value!r}", key=key, source=source)
    return result


def number(value: str, key: str, source: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"must be a number, got {value!r}", key=key, source=source) from None
