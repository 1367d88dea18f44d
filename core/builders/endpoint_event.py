"""EndpointEventBuilder: endpoint events (endpoint-event.schema.json). Source type "edr" by default."""
from __future__ import annotations

from typing import Any, Self

from . import checks
from .base import EventBuilder


def _hashes(owner: type, path: str, md5: str | None, sha1: str | None, sha256: str | None) -> dict[str, str] | None:
    """The {md5, sha1, sha256} object; each given value must be a hex digest of its length."""
    hashes = {k: v for k, v in (("md5", md5), ("sha1", sha1), ("sha256", sha256)) if v}
    for algorithm, value in hashes.items():
        checks.hex_hash(owner, f"{path}.{algorithm}", value, algorithm)
    return hashes or None


class EndpointEventBuilder(EventBuilder):
    event_type = "endpoint_event"

    def __init__(self) -> None:
        super().__init__()
        self.source("edr", "wia-security")
        self._data(event_type="process_creation")

    def kind(self, value: str) -> Self:
        """process_creation, process_termination, file_create/modify/delete, registry_create/modify/delete,
        network_connection, dll_load, driver_load or service_install."""
        return self._data(event_type=value)

    def endpoint(self, hostname: str, ip: list[str] | None = None, mac: list[str] | None = None,
                 os_name: str | None = None, os_version: str | None = None, os_build: str | None = None,
                 domain: str | None = None, agent_id: str | None = None) -> Self:
        """data.host (required). os_name: Windows, Linux or macOS."""
        for address in ip or ():
            checks.ip_address(type(self), "data.host.ip", address)
        self._merge("data.host", {"hostname": hostname, "ip": ip, "mac": mac, "domain": domain, "agent_id": agent_id})
        if os_name or os_version or os_build:
            self._merge("data.host.os", {"name": os_name, "version": os_version, "build": os_build})
        return self

    def process(self, name: str | None = None, pid: int | None = None, ppid: int | None = None,
                path: str | None = None, command_line: str | None = None, user: str | None = None,
                integrity_level: str | None = None, start_time: str | None = None, md5: str | None = None,
                sha1: str | None = None, sha256: str | None = None, signature: dict[str, Any] | None = None,
                parent: dict[str, Any] | None = None) -> Self:
        """parent: {pid, name, path, command_line}; signature: {signed, valid, issuer, subject}."""
        return self._merge("data.process", {
            "pid": pid, "ppid": ppid, "name": name, "path": path, "command_line": command_line, "user": user,
            "integrity_level": integrity_level, "start_time": start_time, "hash": _hashes(type(self), "data.process.hash", md5, sha1, sha256),
            "signature": signature, "parent": parent})

    def file(self, path: str | None = None, name: str | None = None, extension: str | None = None,
             size: int | None = None, md5: str | None = None, sha1: str | None = None, sha256: str | None = None,
             owner: str | None = None, permissions: str | None = None, created: str | None = None,
             modified: str | None = None, accessed: str | None = None) -> Self:
        return self._merge("data.file", {
            "path": path, "name": name, "extension": extension, "size": size,
            "hash": _hashes(type(self), "data.file.hash", md5, sha1, sha256),
            "owner": owner, "permissions": permissions, "created": created, "modified": modified,
            "accessed": accessed})

    def registry(self, key: str, value_name: str | None = None, value_data: str | None = None,
                 value_type: str | None = None, previous_data: str | None = None) -> Self:
        return self._merge("data.registry", {"key": key, "value_name": value_name, "value_data": value_data,
                                             "value_type": value_type, "previous_data": previous_data})

    def connection(self, remote_ip: str | None = None, remote_port: int | None = None, local_ip: str | None = None,
                   local_port: int | None = None, protocol: str | None = None, direction: str | None = None,
                   state: str | None = None) -> Self:
        for side, address, number in (("remote", remote_ip, remote_port), ("local", local_ip, local_port)):
            checks.ip_address(type(self), f"data.network_connection.{side}_ip", address)
            checks.port(type(self), f"data.network_connection.{side}_port", number)
        return self._merge("data.network_connection", {
            "direction": direction, "protocol": protocol, "local_ip": local_ip, "local_port": local_port,
            "remote_ip": remote_ip, "remote_port": remote_port, "state": state})

    def dll(self, path: str | None = None, name: str | None = None, md5: str | None = None, sha1: str | None = None,
            sha256: str | None = None, signed: bool | None = None) -> Self:
        return self._merge("data.dll", {"path": path, "name": name, "hash": _hashes(type(self), "data.dll.hash", md5, sha1, sha256),
                                          "signed": signed})
