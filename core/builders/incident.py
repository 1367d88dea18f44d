"""IncidentBuilder: incident events (incident.schema.json). Status "new"; priority from severity; created_at now."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from ..severity import BAND_PRIORITY, band
from ..timeutil import now_iso
from . import checks
from .base import EventBuilder


class IncidentBuilder(EventBuilder):
    event_type = "incident"

    def __init__(self) -> None:
        super().__init__()
        self._data(incident_id="INC-" + self._event["id"][:8].upper(), status="new", category="other")

    def incident_id(self, value: str) -> Self:
        return self._data(incident_id=value)

    def title(self, value: str) -> Self:
        return self._data(title=value)

    def description(self, value: str) -> Self:
        return self._data(description=value)

    def category(self, value: str) -> Self:
        """malware, phishing, ransomware, data_breach, ddos, unauthorized_access, insider_threat, apt or other."""
        return self._data(category=value)

    def status(self, value: str) -> Self:
        """new, triaging, investigating, containing, eradicating, recovering or closed."""
        return self._data(status=value)

    def priority(self, value: str) -> Self:
        """critical, high, medium or low."""
        return self._data(priority=value)

    def impact(self, availability: str | None = None, confidentiality: str | None = None,
               integrity: str | None = None, financial: str | None = None, reputation: str | None = None) -> Self:
        return self._merge("data.impact", {"availability": availability, "confidentiality": confidentiality,
                                           "integrity": integrity, "financial": financial, "reputation": reputation})

    def timeline(self, action: str, timestamp: str | datetime | None = None, actor: str | None = None,
                 details: str | None = None) -> Self:
        return self._append("data.timeline", {"timestamp": self._time("data.timeline.timestamp", timestamp) or now_iso(),
                                              "action": action, "actor": actor, "details": details})

    def affected_asset(self, type: str, id: str, name: str | None = None, ip: str | None = None,
                       criticality: str | None = None) -> Self:
        """type: host, server, network, application, database or user; ip an IPv4/IPv6 address."""
        checks.ip_address(self.__class__, "data.affected_assets.ip", ip)
        return self._append("data.affected_assets", {"type": type, "id": id, "name": name, "ip": ip,
                                                     "criticality": criticality})

    def ioc(self, type: str, value: str, description: str | None = None,
            first_seen: str | datetime | None = None) -> Self:
        """type: ip, domain, url, hash or email; an ip value must be an address or CIDR range."""
        checks.indicator_value(self.__class__, "data.iocs.value", type, value)
        return self._append("data.iocs", {"type": type, "value": value, "description": description,
                                          "first_seen": self._time("data.iocs.first_seen", first_seen)})

    def response_action(self, action: str, target: str, status: str = "pending",
                        timestamp: str | datetime | None = None, actor: str | None = None,
                        notes: str | None = None) -> Self:
        """action: isolate_host, block_ip, disable_user, quarantine_file or collect_forensics."""
        return self._append("data.response_actions", {
            "action": action, "target": target, "status": status,
            "timestamp": self._time("data.response_actions.timestamp", timestamp), "actor": actor, "notes": notes})

    def root_cause(self, value: str) -> Self:
        return self._data(root_cause=value)

    def lessons_learned(self, value: str) -> Self:
        return self._data(lessons_learned=value)

    def lead_analyst(self, value: str) -> Self:
        return self._data(lead_analyst=value)

    def team(self, *members: str) -> Self:
        return self._extend("data.team", members)

    def dates(self, created_at: str | datetime | None = None, updated_at: str | datetime | None = None,
              closed_at: str | datetime | None = None) -> Self:
        return self._data(created_at=self._time("data.created_at", created_at),
                          updated_at=self._time("data.updated_at", updated_at),
                          closed_at=self._time("data.closed_at", closed_at))

    def _finish(self, event: dict[str, Any]) -> dict[str, Any]:
        data = event.get("data")
        if isinstance(data, dict):
            severity: Any = event.get("severity")
            priority = BAND_PRIORITY.get(band(severity), "medium")
            data.setdefault("priority", "low" if priority == "info" else priority)
            if "timestamp" in event:
                data.setdefault("created_at", event["timestamp"])
        return event
