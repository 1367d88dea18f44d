"""One parser for `product+https://host:port/path?option=value` sink URLs, so every HTTP sink reads options alike.

URL query keys and keyword options are the same names (giving one twice is an error), secrets come
only by reference (`token_env=VAR`, `token_file=/path`, resolved into `Secret`s; credentials inside
the URL are refused), delivery-policy keys (`max_events`, `max_wait`, ...) become a DeliveryPolicy,
and unknown options are refused naming the known ones.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import re
import threading
from collections import Counter
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
    where: str                        # scheme://host[:port], safe for messages and logs
    options: dict[str, Any]           # the sink's own options, secrets resolved
    delivery: DeliveryPolicy | None


def parse_sink_url(url: str, options: Mapping[str, Any], *, product: str, known: Iterable[str],
                   required: Mapping[str, str] | None = None, booleans: Iterable[str] = ("tls_verify",),
                   numbers: Iterable[str] = (), integers: Iterable[str] = ()) -> SinkUrl:
    """Parse and check a sink URL and its options. `required` maps option -> what to say when it is missing."""
    from wia_security.connectors.config import is_secret_key, resolve_options

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    prefix = scheme.split("+", 1)[0]
    transport = scheme.split("+", 1)[1] if "+" in scheme else "https"
    where = f"{scheme}://{url_netloc(parts)}"
    if not parts.hostname:
        raise ConfigError(f"no host: expected {prefix}+https://HOST[:PORT]", key="url", source=where)
    try:
        parts.port
    except ValueError:
        raise ConfigError(f"the port is not a number from 1 to 65535: expected {prefix}+https://HOST[:PORT]",
                          key="url", source=f"{scheme}://{parts.hostname}") from None
    if transport not in ("http", "https"):
        raise ConfigError(f"use {prefix}+https:// ({prefix}+http:// only for a local test server)", key="url",
                          source=where)
    if parts.username or parts.password:
        raise ConfigError("put credentials in token_env/token_file options, not in the URL", key="url", source=where)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = dict(pairs)
    refuse_repeated_keys(parts.query, where)
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
        # a secret is given only by reference: name the spellings that are accepted
        shown = [f"{k}_env / {k}_file" if is_secret_key(k) else k for k in known]
        raise ConfigError(f"unknown {product} option(s) {', '.join(sorted(unknown))}; known: {', '.join(shown)}",
                          key=sorted(unknown)[0], source=where)
    for key in booleans:
        if key in raw:
            raw[key] = boolean(raw[key], key, where)
    for key in numbers:
        if isinstance(raw.get(key), str):
            raw[key] = number(raw[key], key, where)
    for key in integers:
        if isinstance(raw.get(key), str):
            raw[key] = integer(raw[key], key, where)
    for key, hint in (required or {}).items():
        if key not in raw:
            raise ConfigError(f"{hint}: {key}_env=VAR or {key}_file=/path", key=key, source=where)
    return SinkUrl(f"{transport}://{url_netloc(parts)}{parts.path}", where, raw, delivery)


def refuse_repeated_keys(query: str, source: str | None, *, repeatable: Iterable[str] = ()) -> None:
    """A URL query key given twice (`index=main&index=security`) is a ConfigError naming it: parsed into a dict,
    the last one won without a word. `repeatable`: keys a connector reads as a list (MISP's `tag`)."""
    counts = Counter(key for key, _ in parse_qsl(query, keep_blank_values=True))
    repeated = sorted(key for key, n in counts.items() if n > 1 and key not in set(repeatable))
    if repeated:
        raise ConfigError(f"given more than once in the URL: {', '.join(repeated)}", key=repeated[0], source=source)


def warn_tls_off(name: str, option: str) -> None:
    """The one warning every connector logs when a user turns certificate verification off (a WARNING
    reaches stderr even with no logging configured)."""
    log.warning("%s: TLS certificate verification is OFF (%s): anyone on the network path can read and "
                "change this traffic, the credential included", name, option)


def is_loopback_host(host: str | None) -> bool:
    """This machine: 127.0.0.0/8, ::1 or the name localhost (which resolves there); any other name may
    resolve anywhere."""
    if not host:
        return False
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


_plain_http_warned: set[str] = set()
_plain_http_lock = threading.Lock()


def warn_plain_http_secret(name: str, url: str, secret: str) -> bool:
    """The one warning every connector logs when `secret` (e.g. "HEC token") would cross the network
    unencrypted: `url` is http:// to a host that is not this machine. Once per destination (scheme, host
    and port) per process; True when this call warned. Plain http:// is for a test server on 127.0.0.1."""
    parts = urlsplit(url)
    if parts.scheme.lower().rsplit("+", 1)[-1] != "http" or not parts.hostname or is_loopback_host(parts.hostname):
        return False            # no host: nothing is sent anywhere (the connector refuses the URL)
    destination = f"http://{url_netloc(parts)}"
    with _plain_http_lock:
        if destination in _plain_http_warned:
            return False
        _plain_http_warned.add(destination)
    log.warning("%s: the %s is sent over plain HTTP to %s, which is not this machine: anyone on the network "
                "path can read it and use it. Use https:// (plain http:// is meant for a test server on "
                "127.0.0.1 or localhost)", name, secret, destination)
    return True


def url_netloc(parts: Any) -> str:
    """host[:port] of a urlsplit() result, without credentials; an IPv6 address in brackets; '' for none."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:              # a port that is not a number: refused by whoever opens the URL
        port = None
    return host + (f":{port}" if port else "")


def checked_ca_file(ca_file: str) -> str:
    """`ca_file` once it is known to hold CA certificates. requests and azure-core read it only at the first
    request, so a wrong path was a retryable I/O error of every batch, each retried to its last attempt and
    dead-lettered, never a configuration error naming the option."""
    import ssl
    try:
        ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"{ca_file!r} holds no CA certificate that can be read ({type(exc).__name__}: {exc})",
                          key="ca_file") from None
    return ca_file


def tls_verification(name: str, tls_verify: Any, ca_file: str | None) -> bool | str:
    """requests' `verify` for the `tls_verify` and `ca_file` options: the CA file (checked now), True, or False (warned).
    Both tls_verify=false and a ca_file is most likely a mistake (a tls_verify=false left from a trial with a
    self-signed certificate, or a CA file given to fix what turning verification off worked around): the
    safe reading wins, certificates are verified against the CA file, and a warning says the option is ignored."""
    if ca_file:
        checked_ca_file(ca_file)
    if ca_file and not tls_verify:
        log.warning("%s: tls_verify=false is ignored because ca_file is given: certificates are verified against "
                    "%s (give only one of the two)", name, ca_file)
    elif not tls_verify:
        warn_tls_off(name, "tls_verify=false")
    return ca_file or bool(tls_verify)


#: Every spelling of the two TLS options -> the option it spells. `tls_verify` and `ca_file` are the names; the
#: others are the client libraries' names that some connectors took before, still read: elasticsearch-py's
#: `verify` / `ca_certs` (Elasticsearch, OpenSearch, QRadar), taxii2-client's and requests' `verify` (TAXII,
#: a MISP URL) and `verify_tls` (MISP, OTX, VirusTotal), either of which may hold a CA bundle's path.
TLS_SPELLINGS = {"tls_verify": "tls_verify", "ca_file": "ca_file", "verify": "tls_verify", "verify_tls": "tls_verify",
                 "ca_certs": "ca_file"}
_BOOLEAN_WORDS = ("1", "true", "yes", "on", "0", "false", "no", "off")


def tls_options(given: Mapping[str, Any], *, source: str | None = None) -> tuple[bool, str | None]:
    """(tls_verify, ca_file) from options under any of their spellings (TLS_SPELLINGS; None = not given), for
    `tls_verification`. An older `verify` / `verify_tls` holding a path, as requests and taxii2-client read it,
    is the CA file. Two spellings of one option are refused naming both: which one was meant is a guess."""
    found: dict[str, tuple[str, Any]] = {}          # option -> (the spelling used, value)
    for spelling in sorted(given, key=lambda k: (k not in ("tls_verify", "ca_file"), k)):
        value = given[spelling]
        if value is None:
            continue
        option = TLS_SPELLINGS[spelling]
        if (spelling != option and option == "tls_verify" and isinstance(value, str)
                and value.strip().lower() not in _BOOLEAN_WORDS):
            if not os.path.exists(value):           # verify=maybe: not read as a path
                raise ConfigError(f"must be true or false, or the path of a CA bundle that exists, got {value!r}",
                                  key=spelling, source=source)
            option = "ca_file"                      # verify=/etc/ssl/corp-ca.pem
        if option in found:
            raise ConfigError(f"{found[option][0]} and {spelling} are two spellings of one option ({option}): "
                              f"give only {option}", key=spelling, source=source)
        found[option] = (spelling, value)
    tls_verify = boolean(found["tls_verify"][1], found["tls_verify"][0], source) if "tls_verify" in found else True
    spelling, ca_file = found.get("ca_file", ("ca_file", None))
    if ca_file is not None and not isinstance(ca_file, str):
        raise ConfigError(f"must be the path of a PEM file of CA certificates, got {ca_file!r}", key=spelling,
                          source=source)
    if ca_file and spelling != "ca_file":
        try:                # checked here too, so that the error names the key that was written
            checked_ca_file(ca_file)
        except ConfigError as exc:
            raise ConfigError(exc.reason, key=spelling, source=source) from None
    return tls_verify, ca_file or None


# A control character anywhere (a line break above all), a blank at either end, or a character Latin-1 lacks (a
# byte-order mark): http.client and requests refuse such a header value on every request, or cannot encode it.
_NOT_A_HEADER_VALUE = re.compile(r"[\x00-\x1f\x7f]|^\s|\s$|[^\x00-\xff]")


def check_header_secret(value: str, *, key: str, product: str) -> None:
    """Refuse a secret that cannot be an HTTP header value when the connector is made, naming the option and
    why, never the value: otherwise every request fails, each time as a network or 'unexpected' error."""
    if _NOT_A_HEADER_VALUE.search(value):
        raise ConfigError(f"the {product} {key} has a line break, a control character, a blank at one end or a "
                          "character outside Latin-1 such as a byte-order mark (a token file or environment variable "
                          "with a stray newline?); an HTTP header cannot carry it", key=key)


def boolean(value: Any, key: str, source: str | None) -> bool:
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


def integer(value: str, key: str, source: str) -> int:
    """A whole number from a URL query (`1.9` was read as 1, `nan` raised a bare ValueError)."""
    try:
        return int(value.strip())
    except ValueError:
        raise ConfigError(f"must be an integer, got {value!r}", key=key, source=source) from None


def number(value: str, key: str, source: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"must be a number, got {value!r}", key=key, source=source) from None
