"""Objects the envelope schema defines (wia-security-v1.schema.json `definitions`), shared by all event types."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import Record


@dataclass(kw_only=True)
class Source(Record):
    """definitions/Source: the product that produced the event. Required: type, name."""
    type: str | None = None          # siem | edr | ids | firewall | scanner | custom
    name: str | None = None
    vendor: str | None = None
    version: str | None = None


@dataclass(kw_only=True)
class OperatingSystem(Record):
    """definitions/Host/os."""
    name: str | None = None
    version: str | None = None
    build: str | None = None


@dataclass(kw_only=True)
class Host(Record):
    """definitions/Host."""
    hostname: str | None = None
    ip: list[str] | None = None
    mac: list[str] | None = None
    os: OperatingSystem | None = None


@dataclass(kw_only=True)
class NetworkEndpoint(Record):
    """definitions/NetworkEndpoint."""
    ip: str | None = None
    port: int | None = None
    hostname: str | None = None


@dataclass(kw_only=True)
class NetworkContext(Record):
    """definitions/NetworkContext."""
    source: NetworkEndpoint | None = None
    destination: NetworkEndpoint | None = None
    protocol: str | None = None
    direction: str | None = None     # inbound | outbound | internal


@dataclass(kw_only=True)
class User(Record):
    """definitions/User."""
    name: str | None = None
    domain: str | None = None
    email: str | None = None
    employee_id: str | None = None


@dataclass(kw_only=True)
class Cloud(Record):
    """definitions/Cloud."""
    provider: str | None = None      # aws | azure | gcp
    account_id: str | None = None
    region: str | None = None


@dataclass(kw_only=True)
class Context(Record):
    """definitions/Context."""
    host: Host | None = None
    network: NetworkContext | None = None
    user: User | None = None
    cloud: Cloud | None = None


@dataclass(kw_only=True)
class Mitre(Record):
    """definitions/Mitre: one ATT&CK tactic/technique/sub-technique triple."""
    tactic: str | None = None                # ^TA\d{4}$
    tactic_name: str | None = None
    technique: str | None = None             # ^T\d{4}(\.\d{3})?$
    technique_name: str | None = None
    sub_technique: str | None = None         # ^T\d{4}\.\d{3}$
    sub_technique_name: str | None = None


@dataclass(kw_only=True)
class Meta(Record):
    """definitions/Meta."""
    confidence: float | None = None          # 0..1
    tags: list[str] | None = None
    labels: dict[str, str] | None = None
    raw: str | None = None
    correlation_id: str | None = None
    custom: dict[str, Any] | None = None


@dataclass(kw_only=True)
class Indicator(Record):
    """definitions/Indicator: an IOC as alerts carry it. Required: type, value."""
    type: str | None = None   # ip|domain|url|hash|email|file|file_hash_md5|file_hash_sha1|file_hash_sha256|mutex|registry
    value: str | None = None
    context: str | None = None
    confidence: float | None = None
    first_seen: str | None = None
    last_seen: str | None = None


@dataclass(kw_only=True)
class GeoLocation(Record):
    """definitions/GeoLocation (network_event and auth_event inline the same shape)."""
    country: str | None = None
    country_name: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    asn: int | None = None
    org: str | None = None


@dataclass(kw_only=True)
class Hashes(Record):
    """The {md5, sha1, sha256} object endpoint events use for processes, files and DLLs."""
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
