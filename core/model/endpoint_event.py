"""endpoint-event.schema.json `EndpointEventData`. Required: event_type, host (with hostname)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Record
from .common import Hashes


@dataclass(kw_only=True)
class EndpointOs(Record):
    name: str | None = None          # Windows | Linux | macOS
    version: str | None = None
    build: str | None = None


@dataclass(kw_only=True)
class EndpointHost(Record):
    hostname: str | None = None
    ip: list[str] | None = None
    mac: list[str] | None = None
    os: EndpointOs | None = None
    domain: str | None = None
    agent_id: str | None = None


@dataclass(kw_only=True)
class Signature(Record):
    signed: bool | None = None
    valid: bool | None = None
    issuer: str | None = None
    subject: str | None = None


@dataclass(kw_only=True)
class ParentProcess(Record):
    pid: int | None = None
    name: str | None = None
    path: str | None = None
    command_line: str | None = None


@dataclass(kw_only=True)
class Process(Record):
    pid: int | None = None
    ppid: int | None = None
    name: str | None = None
    path: str | None = None
    command_line: str | None = None
    user: str | None = None
    integrity_level: str | None = None   # system | high | medium | low
    start_time: str | None = None
    hash: Hashes | None = None
    signature: Signature | None = None
    parent: ParentProcess | None = None


@dataclass(kw_only=True)
class File(Record):
    path: str | None = None
    name: str | None = None
    extension: str | None = None
    size: int | None = None
    hash: Hashes | None = None
    created: str | None = None
    modified: str | None = None
    accessed: str | None = None
    owner: str | None = None
    permissions: str | None = None


@dataclass(kw_only=True)
class Registry(Record):
    key: str | None = None
    value_name: str | None = None
    value_data: str | None = None
    value_type: str | None = None   # REG_SZ|REG_DWORD|REG_QWORD|REG_BINARY|REG_MULTI_SZ|REG_EXPAND_SZ
    previous_data: str | None = None


@dataclass(kw_only=True)
class NetworkConnection(Record):
    direction: str | None = None    # inbound | outbound
    protocol: str | None = None     # TCP | UDP
    local_ip: str | None = None
    local_port: int | None = None
    remote_ip: str | None = None
    remote_port: int | None = None
    state: str | None = None


@dataclass(kw_only=True)
class Dll(Record):
    path: str | None = None
    name: str | None = None
    hash: Hashes | None = None
    signed: bool | None = None


@dataclass(kw_only=True)
class EndpointEventData(Record):
    event_type: str | None = None   # process_creation|process_termination|file_create|file_modify|file_delete|
    #                                 registry_create|registry_modify|registry_delete|network_connection|
    #                                 dll_load|driver_load|service_install
    host: EndpointHost | None = None
    process: Process | None = None
    file: File | None = None
    registry: Registry | None = None
    network_connection: NetworkConnection | None = None
    dll: Dll | None = None
