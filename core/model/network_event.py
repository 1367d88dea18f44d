"""network-event.schema.json `NetworkEventData`. Required: event_type, protocol, source, destination."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Record
from .common import GeoLocation


@dataclass(kw_only=True)
class NetworkHost(Record):
    """definitions/NetworkHost. Required: ip. `mac` is one string here (an array in context.host)."""
    ip: str | None = None
    port: int | None = None          # 0..65535
    hostname: str | None = None
    mac: str | None = None
    geo: GeoLocation | None = None


@dataclass(kw_only=True)
class Http(Record):
    method: str | None = None        # GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS|CONNECT|TRACE
    status_code: int | None = None   # 100..599
    user_agent: str | None = None
    referer: str | None = None
    content_type: str | None = None


@dataclass(kw_only=True)
class Dns(Record):
    query: str | None = None
    query_type: str | None = None    # A|AAAA|CNAME|MX|NS|PTR|SOA|SRV|TXT
    response: list[str] | None = None
    response_code: str | None = None  # NOERROR|NXDOMAIN|SERVFAIL|REFUSED|FORMERR


@dataclass(kw_only=True)
class Certificate(Record):
    issuer: str | None = None
    subject: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    fingerprint_sha256: str | None = None


@dataclass(kw_only=True)
class Tls(Record):
    version: str | None = None       # "TLS 1.0" .. "TLS 1.3"
    cipher: str | None = None
    sni: str | None = None
    certificate: Certificate | None = None


@dataclass(kw_only=True)
class NetworkEventData(Record):
    event_type: str | None = None    # connection|dns|http|tls|smtp|ftp|ssh|rdp|custom
    protocol: str | None = None      # TCP|UDP|ICMP|GRE|ESP
    direction: str | None = None     # inbound|outbound|internal
    action: str | None = None        # allowed|blocked|dropped|reset
    source: NetworkHost | None = None
    destination: NetworkHost | None = None
    bytes_sent: int | None = None
    bytes_received: int | None = None
    packets_sent: int | None = None
    packets_received: int | None = None
    duration_ms: int | None = None
    rule_matched: str | None = None
    application: str | None = None
    url: str | None = None
    http: Http | None = None
    dns: Dns | None = None
    tls: Tls | None = None
