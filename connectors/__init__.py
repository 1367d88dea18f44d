"""Connectors: one module per product, each a sink (or source) registered by URL scheme.

`open_sink("splunk+https://hec.example:8088")` picks the class registered under the scheme's
first part (`splunk`). Adding a connector is one module and one line in SINKS; modules are
imported on first use, so a deployment only loads (and needs the client library of) what it uses.
"""
from __future__ import annotations

import importlib
import re
from typing import Any

from wia_security.errors import ConfigError, WiaError
from wia_security.extras import missing_package
from wia_security.redact import remember_proxy_credentials

from .base import BaseSink, DeliveryReport, Rejected, Sink

#: URL scheme (before any "+") -> "module:Class" in this package
SINKS: dict[str, str] = {
    "sqlite": "sqlite:SqliteSink",
    "file": "file:FileSink",
    "phantom": "soar.splunk_soar:SplunkSoarSink",
    "splunksoar": "soar.splunk_soar:SplunkSoarSink",
    "xsoar": "soar.xsoar:XsoarSink",
    "sentinel": "azure.sentinel:SentinelSink",
    "sentinel-incidents": "azure.sentinel:SentinelIncidents",
    "scc": "gcp.scc:SccSink",
    "misp": "intel.misp:MispSink",
    "securityhub": "aws.securityhub:SecurityHubSink",
    "kafka": "kafka:KafkaSink",
    "taxii": "taxii:TaxiiSink",
    "splunk": "splunk.hec:HecSink",
    "elasticsearch": "elastic:ElasticSink",
    "opensearch": "elastic:OpenSearchSink",
    "qradar": "qradar:SyslogSink",
    "syslog": "qradar:SyslogSink",
}

#: URL scheme -> the extra that installs its client libraries (schemes not listed need none)
EXTRAS: dict[str, str] = {
    "phantom": "soar", "splunksoar": "soar", "xsoar": "soar", "sentinel": "azure", "sentinel-incidents": "azure",
    "scc": "gcp", "misp": "misp", "securityhub": "aws", "kafka": "kafka", "taxii": "taxii", "splunk": "splunk",
    "elasticsearch": "elastic", "opensearch": "elastic",
}


def scheme_of(url: str) -> str:
    if url == "-":
        return "file"
    if "://" not in url:
        raise ConfigError("a destination is a URL such as sqlite:///wia-events.db or file:///tmp/out.ndjson",
                          key="url", source=_redact(url))
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def open_sink(url: str, **options: Any) -> Sink:
    """The sink for a destination URL; ConfigError (credentials redacted) for an unknown scheme."""
    remember_proxy_credentials()         # HTTPS_PROXY & co.: the sink's client library reads them
    scheme = scheme_of(url)
    try:
        module_name, class_name = SINKS[scheme].split(":")
    except KeyError:
        raise ConfigError(f"unknown destination scheme {scheme!r}; known: {', '.join(sorted(SINKS))}",
                          key="url", source=_redact(url)) from None
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
        return getattr(module, class_name).from_url(url, **options)
    except ModuleNotFoundError as exc:
        raise_missing_package(exc, scheme, key="url", source=_redact(url))
        raise
    except ValueError as exc:
        if isinstance(exc, WiaError) or "Port" not in str(exc):
            raise
        # urllib's "Port could not be cast to integer value as 'pa'": with a raw '?', '#' or '/' in a
        # password, what it quotes is the start of the password
        raise ConfigError("the port is not a number from 0 to 65535 (characters such as / ? # @ in a user "
                          "name or password must be percent-encoded)", key="url", source=_redact(url)) from None


def raise_missing_package(exc: ModuleNotFoundError, scheme: str, *, key: str, source: str) -> None:
    """ConfigError naming the extra to install, when `exc` is a client library this scheme needs."""
    reason = missing_package(exc, EXTRAS.get(scheme))
    if (exc.name or "").startswith(f"{__name__}."):
        # a build that ships a subset of the connectors (the Splunk app's bin/lib): not a broken install
        reason = f"not included in this build of wia-security ({exc.name} is not shipped)"
    if reason is not None:
        raise ConfigError(f"{scheme} destinations: {reason}", key=key, source=source) from None


def _redact(url: str) -> str:
    """A URL with any user:password part and query string removed, safe for errors and logs."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    # A query may follow the host directly (`splunk+https://h:8088?token=...`): it is never part of the
    # host. User info is cut at the last "@" before the query, even when a password holds a raw "/".
    before_query, *after = re.split(r"[?#]", rest, maxsplit=1)
    host = before_query.rsplit("@", 1)[-1].split("/", 1)[0]
    if _user_info_left(host, after[0] if after else ""):
        host = "***"
    shown = f"{scheme}://{host}"
    return shown if shown == url else f"{shown}/..."


def _user_info_left(host: str, after: str) -> bool:
    """Whether `host` may be user info that a raw '?' or '#' in a password cut short (`user:pa?ss@host`):
    a "port" that is not a number, or an '@' after the '?' before any '/'. A query holding an '@' is hidden
    with it: the host is not worth a secret."""
    if "@" in after.split("/", 1)[0]:
        return True
    for address in host.split(","):                  # kafka://b1:9092,b2:9092/topic
        _, colon, port = address.rsplit("]", 1)[-1].rpartition(":")
        if colon and not port.isdigit():
            return True
    return False


__all__ = ["EXTRAS", "SINKS", "open_sink", "scheme_of", "Sink", "BaseSink", "DeliveryReport", "Rejected"]
