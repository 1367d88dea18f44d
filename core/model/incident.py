"""incident.schema.json `IncidentData`. Required: incident_id, title, category, status, priority."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Record


@dataclass(kw_only=True)
class Impact(Record):
    availability: str | None = None       # none | low | medium | high | critical
    confidentiality: str | None = None
    integrity: str | None = None
    financial: str | None = None          # unknown | minimal | moderate | significant | severe
    reputation: str | None = None


@dataclass(kw_only=True)
class TimelineEntry(Record):
    """Required: timestamp, action."""
    timestamp: str | None = None
    action: str | None = None
    actor: str | None = None
    details: str | None = None


@dataclass(kw_only=True)
class AffectedAsset(Record):
    """Required: type (host|server|network|application|database|user), id."""
    type: str | None = None
    id: str | None = None
    name: str | None = None
    ip: str | None = None
    criticality: str | None = None        # critical | high | medium | low


@dataclass(kw_only=True)
class Ioc(Record):
    """Required: type (ip|domain|url|hash|email), value."""
    type: str | None = None
    value: str | None = None
    description: str | None = None
    first_seen: str | None = None


@dataclass(kw_only=True)
class ResponseAction(Record):
    """Required: action, target, status (pending|in_progress|completed|failed)."""
    action: str | None = None   # isolate_host | block_ip | disable_user | quarantine_file | collect_forensics
    target: str | None = None
    status: str | None = None
    timestamp: str | None = None
    actor: str | None = None
    notes: str | None = None


@dataclass(kw_only=True)
class IncidentData(Record):
    incident_id: str | None = None
    title: str | None = None
    description: str | None = None
    category: str | None = None   # malware|phishing|ransomware|data_breach|ddos|unauthorized_access|insider_threat|apt|other
    status: str | None = None     # new|triaging|investigating|containing|eradicating|recovering|closed
    priority: str | None = None   # critical | high | medium | low
    impact: Impact | None = None
    timeline: list[TimelineEntry] | None = None
    affected_assets: list[AffectedAsset] | None = None
    iocs: list[Ioc] | None = None
    response_actions: list[ResponseAction] | None = None
    root_cause: str | None = None
    lessons_learned: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    closed_at: str | None = None
    lead_analyst: str | None = None
    team: list[str] | None = None
