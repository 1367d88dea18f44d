"""threat-intel.schema.json `ThreatIntelData`. Required: threat_type, threat_name, status."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Record


@dataclass(kw_only=True)
class IndicatorContext(Record):
    """Unlike the envelope Indicator's string `context`, threat intel indicators carry an object."""
    description: str | None = None
    kill_chain_phase: str | None = None


@dataclass(kw_only=True)
class ThreatIndicator(Record):
    """Required: type, value. type: ip|domain|url|file_hash_md5|file_hash_sha1|file_hash_sha256|email|mutex|registry."""
    type: str | None = None
    value: str | None = None
    confidence: float | None = None   # 0..1
    first_seen: str | None = None
    last_seen: str | None = None
    context: IndicatorContext | None = None


@dataclass(kw_only=True)
class Ttp(Record):
    tactic: str | None = None
    tactic_name: str | None = None
    technique: str | None = None
    technique_name: str | None = None


@dataclass(kw_only=True)
class ThreatIntelData(Record):
    threat_type: str | None = None    # malware | apt | campaign | botnet | ransomware | phishing
    threat_name: str | None = None
    threat_family: str | None = None
    aliases: list[str] | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    status: str | None = None         # active | inactive | unknown
    indicators: list[ThreatIndicator] | None = None
    ttps: list[Ttp] | None = None
    target_sectors: list[str] | None = None
    target_countries: list[str] | None = None
    references: list[str] | None = None
    report_id: str | None = None
