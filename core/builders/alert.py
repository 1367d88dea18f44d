"""AlertBuilder: alert events (alert.schema.json). Status defaults to "new", priority to the severity band's."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from ..severity import BAND_PRIORITY, band
from . import checks
from .base import EventBuilder


class AlertBuilder(EventBuilder):
    event_type = "alert"

    def __init__(self) -> None:
        super().__init__()
        self._data(alert_id="ALERT-" + self._event["id"][:8].upper(), status="new", category="other")

    def alert_id(self, value: str) -> Self:
        return self._data(alert_id=value)

    def title(self, value: str) -> Self:
        return self._data(title=value)

    def description(self, value: str) -> Self:
        return self._data(description=value)

    def category(self, value: str) -> Self:
        """malware, intrusion, policy, reconnaissance or other."""
        return self._data(category=value)

    def status(self, value: str) -> Self:
        """new, investigating, resolved, false_positive or closed."""
        return self._data(status=value)

    def priority(self, value: str) -> Self:
        """critical, high, medium, low or info."""
        return self._data(priority=value)

    def assignee(self, value: str) -> Self:
        return self._data(assignee=value)

    def detection_rule(self, id: str | None = None, name: str | None = None, version: str | None = None) -> Self:
        return self._merge("data.detection_rule", {"id": id, "name": name, "version": version})

    def indicator(self, type: str, value: str, context: str | None = None, confidence: float | None = None,
                  first_seen: str | datetime | None = None, last_seen: str | datetime | None = None) -> Self:
        """type: ip, domain, url, hash, email, file, file_hash_md5/sha1/sha256, mutex or registry. The value
        of an ip indicator must be an address or CIDR range, of a file_hash_* one a hex digest of its length."""
        checks.indicator_value(self.__class__, "data.indicators.value", type, value)
        return self._append("data.indicators", {
            "type": type, "value": value, "context": context, "confidence": confidence,
            "first_seen": self._time("data.indicators.first_seen", first_seen),
            "last_seen": self._time("data.indicators.last_seen", last_seen)})

    def seen(self, first: str | datetime, last: str | datetime | None = None, count: int | None = None) -> Self:
        return self._data(first_seen=self._time("data.first_seen", first), last_seen=self._time("data.last_seen", last),
                          count=count)

    def _finish(self, event: dict[str, Any]) -> dict[str, Any]:
        if isinstance(event.get("data"), dict):
            severity: Any = event.get("severity")
            event["data"].setdefault("priority", BAND_PRIORITY.get(band(severity), "medium"))
        return event
