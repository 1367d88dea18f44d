"""Dashboard aggregator: one streaming pass over WIA event dicts -> the metrics a SOC dashboard shows.

Totals by type, severity band (`wia_security.severity`), source and status; top ATT&CK tactics and
techniques; MTTD, MTTR and time to first action from timestamps the schema defines (see
`docs/dashboard.md` for the exact definitions); and a time series by band. Standard library only.
Events outside the window are counted as such, never silently dropped from the input count.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Iterable

from ..attack import table as attack_table
from ..severity import BAND_NAMES, band
from ..timeutil import from_epoch_ms, now_iso, parse_iso

REPORT_FORMAT = "wia-security-dashboard"
REPORT_VERSION = 1
TOP_N = 10

#: Time-series bucket widths the aggregator may choose from, in seconds.
BUCKET_STEPS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
#: Aim for about this many buckets across the window.
TARGET_BUCKETS = 48

#: Event types whose `data.status` is a workflow state worth totalling.
STATUS_TYPES = ("alert", "incident", "threat_intel")


def _ms(value: Any) -> int | None:
    """Epoch milliseconds of an RFC 3339 string, or None when absent or unparsable."""
    if not isinstance(value, str):
        return None
    try:
        return int(parse_iso(value).timestamp() * 1000)
    except (ValueError, OverflowError):
        return None


@dataclass
class _Durations:
    """Collects non-negative durations (ms) for one metric; negative ones (clock skew) are counted apart."""

    values: list[int] = field(default_factory=list)
    negative: int = 0

    def add(self, start: int | None, end: int | None) -> None:
        if start is None or end is None:
            return
        if end < start:
            self.negative += 1
        else:
            self.values.append(end - start)

    def summary(self) -> dict[str, Any]:
        if not self.values:
            return {"samples": 0, "mean_seconds": None, "median_seconds": None, "skipped_negative": self.negative}
        return {"samples": len(self.values),
                "mean_seconds": round(sum(self.values) / len(self.values) / 1000, 3),
                "median_seconds": round(median(self.values) / 1000, 3),
                "skipped_negative": self.negative}


def detection_times(event: dict[str, Any]) -> tuple[int | None, int | None]:
    """(onset, detected) in epoch ms for an alert or incident; either may be None.

    alert:    onset = data.first_seen; detected = timestamp (when the alert was raised).
    incident: onset = earliest data.iocs[].first_seen;
              detected = earliest of data.created_at and data.timeline[].timestamp, else timestamp.
    """
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    if event.get("type") == "alert":
        return _ms(data.get("first_seen")), _ms(event.get("timestamp"))
    if event.get("type") == "incident":
        iocs = [_ms(i.get("first_seen")) for i in data.get("iocs") or [] if isinstance(i, dict)]
        onset = min((t for t in iocs if t is not None), default=None)
        marks = [_ms(data.get("created_at"))]
        marks += [_ms(t.get("timestamp")) for t in data.get("timeline") or [] if isinstance(t, dict)]
        detected = min((t for t in marks if t is not None), default=None)
        return onset, detected if detected is not None else _ms(event.get("timestamp"))
    return None, None


def first_action_time(event: dict[str, Any]) -> int | None:
    """Earliest data.response_actions[].timestamp of an incident (None when there is none)."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    times = [_ms(a.get("timestamp")) for a in data.get("response_actions") or [] if isinstance(a, dict)]
    return min((t for t in times if t is not None), default=None)


def event_techniques(event: dict[str, Any]) -> set[str]:
    """ATT&CK technique ids an event carries: mitre.sub_technique or mitre.technique, plus threat_intel ttps."""
    found: set[str] = set()
    mitre = event.get("mitre")
    if isinstance(mitre, dict):
        tech = mitre.get("sub_technique") or mitre.get("technique")
        if isinstance(tech, str) and tech:
            found.add(tech.upper())
    data = event.get("data")
    if event.get("type") == "threat_intel" and isinstance(data, dict):
        for ttp in data.get("ttps") or []:
            if isinstance(ttp, dict) and isinstance(ttp.get("technique"), str):
                found.add(ttp["technique"].upper())
    return found


def event_tactics(event: dict[str, Any]) -> set[str]:
    """ATT&CK tactic ids: mitre.tactic and ttps[].tactic; when absent, the tactic of a single-tactic technique."""
    found: set[str] = set()
    mitre = event.get("mitre")
    if isinstance(mitre, dict) and isinstance(mitre.get("tactic"), str):
        found.add(mitre["tactic"].upper())
    data = event.get("data")
    if event.get("type") == "threat_intel" and isinstance(data, dict):
        for ttp in data.get("ttps") or []:
            if isinstance(ttp, dict) and isinstance(ttp.get("tactic"), str):
                found.add(ttp["tactic"].upper())
    if not found:
        attack = attack_table()
        for tech_id in event_techniques(event):
            tech = attack.technique(tech_id)
            if tech is not None and len(tech.tactic_ids) == 1:
                found.add(tech.tactic_ids[0])
    return found


def choose_bucket(span_ms: int) -> int:
    """The smallest step (seconds) that covers the span in at most TARGET_BUCKETS buckets."""
    for step in BUCKET_STEPS:
        if span_ms <= step * 1000 * TARGET_BUCKETS:
            return step
    return BUCKET_STEPS[-1]


class DashboardAggregator:
    """Feed events with `add`/`add_all`, then `report()` returns the JSON-ready dashboard dict.

    `since`/`until` (RFC 3339, `until` exclusive) bound the window; without them the window is the
    span of the events seen. Events are kept only as light rows (time, band), so memory grows with
    the event count, not the event size.
    """

    def __init__(self, since: str | None = None, until: str | None = None, top_n: int = TOP_N) -> None:
        self.since_ms = _ms(since) if since else None
        self.until_ms = _ms(until) if until else None
        if since and self.since_ms is None:
            raise ValueError(f"since: {since!r} is not an RFC 3339 date-time")
        if until and self.until_ms is None:
            raise ValueError(f"until: {until!r} is not an RFC 3339 date-time")
        self.top_n = top_n
        self.seen = 0
        self.outside_window = 0
        self.unusable: list[str] = []           # ids (or positions) of events without a usable timestamp
        self.by_type: Counter[str] = Counter()
        self.by_band: Counter[str] = Counter()
        self.by_source: Counter[str] = Counter()
        self.by_status: dict[str, Counter[str]] = {t: Counter() for t in STATUS_TYPES}
        self.tactics: Counter[str] = Counter()
        self.techniques: Counter[str] = Counter()
        self.mttd = _Durations()
        self.mttr = _Durations()
        self.first_action = _Durations()
        self._points: list[tuple[int, str]] = []  # (epoch ms, band)
        self.severity_sum = 0.0

    def add(self, event: dict[str, Any]) -> bool:
        """Count one event; False when it lies outside the window or has no usable timestamp."""
        self.seen += 1
        ts = _ms(event.get("timestamp")) if isinstance(event, dict) else None
        if ts is None:
            self.unusable.append(str(event.get("id")) if isinstance(event, dict) else f"#{self.seen}")
            return False
        if (self.since_ms is not None and ts < self.since_ms) or (self.until_ms is not None and ts >= self.until_ms):
            self.outside_window += 1
            return False
        etype = str(event.get("type"))
        severity = event.get("severity")
        sev_band = band(severity)
        self.by_type[etype] += 1
        self.by_band[sev_band] += 1
        if isinstance(severity, (int, float)) and not isinstance(severity, bool):
            self.severity_sum += severity
        source = event.get("source")
        self.by_source[str(source.get("name")) if isinstance(source, dict) else "unknown"] += 1
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        if etype in self.by_status and isinstance(data.get("status"), str):
            self.by_status[etype][data["status"]] += 1
        for tactic in event_tactics(event):
            self.tactics[tactic] += 1
        for tech in event_techniques(event):
            self.techniques[tech] += 1
        onset, detected = detection_times(event)
        self.mttd.add(onset, detected)
        if etype == "incident":
            self.mttr.add(detected, _ms(data.get("closed_at")))
            self.first_action.add(detected, first_action_time(event))
        self._points.append((ts, sev_band))
        return True

    def add_all(self, events: Iterable[dict[str, Any]]) -> "DashboardAggregator":
        for event in events:
            self.add(event)
        return self

    # -- result ---------------------------------------------------------------------------------------
    def _window(self) -> tuple[int, int]:
        times = [t for t, _ in self._points]
        start = self.since_ms if self.since_ms is not None else (min(times) if times else 0)
        end = self.until_ms if self.until_ms is not None else ((max(times) + 1) if times else start + 1)
        return start, max(end, start + 1)

    def time_series(self) -> dict[str, Any]:
        start, end = self._window()
        step = choose_bucket(end - start)
        step_ms = step * 1000
        origin = (start // step_ms) * step_ms       # align buckets to whole steps (UTC)
        count = max(1, math.ceil((end - origin) / step_ms))
        buckets = [{"start": from_epoch_ms(origin + i * step_ms), "total": 0,
                    "by_band": {name: 0 for name in BAND_NAMES}} for i in range(count)]
        for ts, sev_band in self._points:
            bucket = buckets[min(count - 1, (ts - origin) // step_ms)]
            bucket["total"] += 1
            bucket["by_band"][sev_band] = bucket["by_band"].get(sev_band, 0) + 1
        return {"bucket_seconds": step, "buckets": buckets}

    def _top_tactics(self) -> list[dict[str, Any]]:
        attack = attack_table()
        out = []
        for tactic_id, n in sorted(self.tactics.items(), key=lambda kv: (-kv[1], kv[0]))[: self.top_n]:
            tactic = attack.tactic(tactic_id)
            out.append({"id": tactic_id, "name": tactic.name if tactic else None, "count": n})
        return out

    def _top_techniques(self) -> list[dict[str, Any]]:
        attack = attack_table()
        out = []
        for tech_id, n in sorted(self.techniques.items(), key=lambda kv: (-kv[1], kv[0]))[: self.top_n]:
            tech = attack.technique(tech_id)
            out.append({"id": tech_id, "name": tech.name if tech else None,
                        "tactics": list(tech.tactic_ids) if tech else [], "count": n})
        return out

    def report(self, generated_at: str | None = None) -> dict[str, Any]:
        """The dashboard as a JSON-ready dict (the `--json` twin of the HTML report)."""
        start, end = self._window()
        total = sum(self.by_type.values())
        return {
            "format": REPORT_FORMAT,
            "format_version": REPORT_VERSION,
            "generated_at": generated_at or now_iso(),
            "window": {"since": from_epoch_ms(start) if self._points or self.since_ms is not None else None,
                       "until": from_epoch_ms(end) if self._points or self.until_ms is not None else None,
                       "bounded": self.since_ms is not None or self.until_ms is not None},
            "inputs": {"events_read": self.seen, "in_window": total, "outside_window": self.outside_window,
                       "without_timestamp": len(self.unusable)},
            "totals": {
                "events": total,
                "mean_severity": round(self.severity_sum / total, 2) if total else None,
                "by_type": dict(sorted(self.by_type.items(), key=lambda kv: (-kv[1], kv[0]))),
                "by_band": {name: self.by_band.get(name, 0) for name in BAND_NAMES}
                | ({"unknown": self.by_band["unknown"]} if self.by_band.get("unknown") else {}),
                "by_source": dict(sorted(self.by_source.items(), key=lambda kv: (-kv[1], kv[0]))),
                "by_status": {t: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
                              for t, c in self.by_status.items() if c},
            },
            "attack": {"version": attack_table().version, "top_tactics": self._top_tactics(),
                       "top_techniques": self._top_techniques(),
                       "distinct_techniques": len(self.techniques)},
            "response": {"mttd": self.mttd.summary(), "mttr": self.mttr.summary(),
                         "time_to_first_action": self.first_action.summary()},
            "time_series": self.time_series(),
        }


def aggregate(events: Iterable[dict[str, Any]], since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """Convenience: the dashboard report of an iterable of event dicts."""
    return DashboardAggregator(since, until).add_all(events).report()
