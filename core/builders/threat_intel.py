"""ThreatIntelBuilder: threat intelligence events (threat-intel.schema.json). Status defaults to "active"."""
from __future__ import annotations

from datetime import datetime
from typing import Self

from . import checks
from .base import EventBuilder, attack_block


class ThreatIntelBuilder(EventBuilder):
    event_type = "threat_intel"

    def __init__(self) -> None:
        super().__init__()
        self._data(status="active")

    def threat(self, name: str, type: str, family: str | None = None) -> Self:
        """type: malware, apt, campaign, botnet, ransomware or phishing."""
        return self._data(threat_name=name, threat_type=type, threat_family=family)

    def status(self, value: str) -> Self:
        """active, inactive or unknown."""
        return self._data(status=value)

    def aliases(self, *names: str) -> Self:
        return self._extend("data.aliases", names)

    def seen(self, first: str | datetime, last: str | datetime | None = None) -> Self:
        return self._data(first_seen=self._time("data.first_seen", first), last_seen=self._time("data.last_seen", last))

    def indicator(self, type: str, value: str, confidence: float | None = None, description: str | None = None,
                  kill_chain_phase: str | None = None, first_seen: str | datetime | None = None,
                  last_seen: str | datetime | None = None) -> Self:
        """type: ip, domain, url, file_hash_md5, file_hash_sha1, file_hash_sha256, email, mutex or registry. The
        value of an ip indicator must be an address or CIDR range, of a file_hash_* one a hex digest of its length."""
        checks.indicator_value(self.__class__, "data.indicators.value", type, value)
        context = {k: v for k, v in (("description", description), ("kill_chain_phase", kill_chain_phase)) if v}
        return self._append("data.indicators", {
            "type": type, "value": value, "confidence": confidence, "context": context or None,
            "first_seen": self._time("data.indicators.first_seen", first_seen),
            "last_seen": self._time("data.indicators.last_seen", last_seen)})

    def ttp(self, technique: str, tactic: str | None = None) -> Self:
        """An ATT&CK technique the threat uses; sub-techniques are recorded by their own id."""
        block = attack_block(type(self), technique, tactic, field="data.ttps")
        tech_id = block.get("sub_technique", block["technique"])
        tech_name = block.get("sub_technique_name", block.get("technique_name"))
        return self._append("data.ttps", {"tactic": block.get("tactic"), "tactic_name": block.get("tactic_name"),
                                          "technique": tech_id, "technique_name": tech_name})

    def targets(self, sectors: list[str] | None = None, countries: list[str] | None = None) -> Self:
        return self._data(target_sectors=sectors, target_countries=countries)

    def reference(self, url: str) -> Self:
        return self._append("data.references", url)

    def report_id(self, value: str) -> Self:
        return self._data(report_id=value)
