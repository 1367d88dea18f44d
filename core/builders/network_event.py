"""NetworkEventBuilder: network events (network-event.schema.json). event_type "connection", protocol "TCP" by default."""
from __future__ import annotations

from typing import Any, Self

from . import checks
from .base import EventBuilder


def _host(ip: str, port: int | None, hostname: str | None, mac: str | None, geo: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in {"ip": ip, "port": port, "hostname": hostname, "mac": mac, "geo": geo}.items()
            if v is not None}


class NetworkEventBuilder(EventBuilder):
    event_type = "network_event"

    def __init__(self) -> None:
        super().__init__()
        self.source("firewall", "wia-security")
        self._data(event_type="connection", protocol="TCP")

    def kind(self, value: str) -> Self:
        """data.event_type: connection, dns, http, tls, smtp, ftp, ssh, rdp or custom."""
        return self._data(event_type=value)

    def protocol(self, value: str) -> Self:
        """TCP, UDP, ICMP, GRE or ESP."""
        return self._data(protocol=value)

    def direction(self, value: str) -> Self:
        return self._data(direction=value)

    def action(self, value: str) -> Self:
        """allowed, blocked, dropped or reset."""
        return self._data(action=value)

    def src(self, ip: str, port: int | None = None, hostname: str | None = None, mac: str | None = None,
            geo: dict[str, Any] | None = None) -> Self:
        """data.source: an IPv4/IPv6 address and a port from 0 to 65535 (both checked)."""
        checks.ip_address(type(self), "data.source.ip", ip)
        checks.port(type(self), "data.source.port", port)
        return self._data(source=_host(ip, port, hostname, mac, geo))

    def dst(self, ip: str, port: int | None = None, hostname: str | None = None, mac: str | None = None,
            geo: dict[str, Any] | None = None) -> Self:
        """data.destination: an IPv4/IPv6 address and a port from 0 to 65535 (both checked)."""
        checks.ip_address(type(self), "data.destination.ip", ip)
        checks.port(type(self), "data.destination.port", port)
        return self._data(destination=_host(ip, port, hostname, mac, geo))

    def traffic(self, bytes_sent: int | None = None, bytes_received: int | None = None,
                packets_sent: int | None = None, packets_received: int | None = None,
                duration_ms: int | None = None) -> Self:
        return self._data(bytes_sent=bytes_sent, bytes_received=bytes_received, packets_sent=packets_sent,
                          packets_received=packets_received, duration_ms=duration_ms)

    def rule(self, name: str) -> Self:
        return self._data(rule_matched=name)

    def application(self, name: str) -> Self:
        return self._data(application=name)

    def url(self, value: str) -> Self:
        return self._data(url=value)

    def http(self, method: str | None = None, status_code: int | None = None, user_agent: str | None = None,
             referer: str | None = None, content_type: str | None = None) -> Self:
        return self._merge("data.http", {"method": method, "status_code": status_code, "user_agent": user_agent,
                                         "referer": referer, "content_type": content_type})

    def dns(self, query: str | None = None, query_type: str | None = None, response: list[str] | None = None,
            response_code: str | None = None) -> Self:
        return self._merge("data.dns", {"query": query, "query_type": query_type, "response": response,
                                        "response_code": response_code})

    def tls(self, version: str | None = None, cipher: str | None = None, sni: str | None = None,
            certificate: dict[str, str] | None = None) -> Self:
        """version: "TLS 1.0" .. "TLS 1.3"; certificate: issuer, subject, not_before, not_after, fingerprint_sha256."""
        return self._merge("data.tls", {"version": version, "cipher": cipher, "sni": sni, "certificate": certificate})
