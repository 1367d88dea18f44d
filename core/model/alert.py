"""alert.schema.json `AlertData`. Required: alert_id, title, category, status, priority."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Record
from .common import Indicator


@dataclass(kw_only=True)
class DetectionRule(Record):
    id: str | None = None
    name: str | None = None
    version: str | None = None


@dataclass(kw_only=True)
class AlertData(Record):
    alert_id: str | None = None
    title: str | None = None
    description: str | None = None
    category: str | None = None      # malware | intrusion | policy | reconnaissance | other
    status: str | None = None        # new | investigating | resolved | false_positive | closed
    priority: str | None = None      # critical | high | medium | low | info
    assignee: str | None = None
    detection_rule: DetectionRule | None = None
    indicators: list[Indicator] | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    count: int | None = None         # >= 1
