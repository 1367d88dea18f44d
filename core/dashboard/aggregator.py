"""Dashboard aggregator: one streaming pass over WIA event dicts -> the metrics a SOC dashboard shows.

Totals by type, severity band (`wia_security.severity`), source and status; top ATT&CK tactics and
techniques; MTTD, MTTR and time to first action from timestamps the schema defines (see
`docs/dashboard.md` for the exact definitions); and a time series by band. Standard library only.
Events outside the window are counted as such, never silently dropped from the input count.

Memory is bounded whatever the input: no per-event rows are kept (the time series is counted in
buckets that coarsen as they multiply), breakdowns keep at most `MAX_DISTINCT` keys of at most
`MAX_KEY_CHARS` characters, and only the response-time samples (8 bytes each, for exact medians) grow
with the number of alerts and incidents.
"""
from __future__ import annotations

import math
from array import array
from collections import Counter
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from statistics import median
from typing import Any, Iterable, Iterator

from ..attack import table as attack_table
from ..severity import BAND_NAMES, band
from ..timeutil import now_iso, parse_iso

REPORT_FORMAT = "wia-security-dashboard"
REPORT_VERSION = 1
TOP_N = 10
#: Breakdowns (source, type, status) list at most this many keys; the rest are summed in `not_listed`.
LIST_LIMIT = 20
#: Distinct keys a breakdown keeps exact counts for; past twice this, the least frequent are folded.
MAX_DISTINCT = 2000
#: Event-supplied names (source names, statuses, ...) are cut to this many characters before counting.
MAX_KEY_CHARS = 200

#: Time-series bucket widths the aggregator may choose from, in seconds; past the last one it doubles.
BUCKET_STEPS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
#: Aim for about this many buckets across the window.
TARGET_BUCKETS = 48
#: Occupied buckets kept while streaming before they are merged into the next wider step.
MAX_LIVE_BUCKETS = 2048

#: Event types whose `data.status` is a workflow state worth totalling.
STATUS_TYPES = ("alert", "incident", "threat_intel")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)
_ONE_US = timedelta(microseconds=1)
#: The instants RFC 3339 can spell (years 0001-9999); labels are clamped to them.
MIN_MS = (datetime(1, 1, 1, tzinfo=timezone.utc) - _EPOCH) // _ONE_MS
MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc) - _EPOCH) // _ONE_MS
_BAND_INDEX = {name: i for i, name in enumerate((*BAND_NAMES, "unknown"))}


def _ms(value: Any) -> int | None:
    """Epoch milliseconds (floor, exact integer arithmetic) of an RFC 3339 string; None when unusable."""
    us = _us(value)
    return None if us is None else us // 1000


def _us(value: Any) -> int | None:
    """Epoch microseconds (floor; parse_iso keeps 6 fraction digits) of an RFC 3339 string; None when unusable."""
    if not isinstance(value, str):
        return None
    try:
        return (parse_iso(value) - _EPOCH) // _ONE_US
    except (ValueError, OverflowError, TypeError):
        return None


def finite_number(value: Any) -> float | None:
    """A JSON number as a finite float; None for anything else: booleans, NaN, infinities, and integers
    beyond float range (JSON integers have no size limit; float() of 10**400 raises OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def iso_ms(ms: int) -> str:
    """UTC RFC 3339 with milliseconds and "Z" for epoch ms, clamped to years 0001-9999 (4-digit years)."""
    moment = _EPOCH + timedelta(milliseconds=min(max(ms, MIN_MS), MAX_MS))
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
            f"{moment.second:02d}.{moment.microsecond // 1000:03d}Z")


def _items(value: Any) -> list[Any]:
    """A JSON array field as a list; anything else (absent, null, wrong type) as empty."""
    return value if isinstance(value, list) else []


def _key(value: Any) -> str:
    """An event-supplied name as a bounded breakdown key."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_KEY_CHARS else text[: MAX_KEY_CHARS - 1] + "\u2026"


def _ranked(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Highest count first; ties by key (code point order), so equal counts always list the same way."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


class BoundedCounter:
    """Counts per key: exact while at most 2 x `limit` distinct keys have been seen, bounded after.

    Past that it is the Misra-Gries summary: when 2 x `limit` + 1 keys are held, the (limit+1)-th
    largest count c is taken off every count and the keys left at zero are dropped, so memory stays
    bounded against unbounded distinct values (200k host names, random strings). Every kept count is
    then low by at most `max_undercount` (the sum of those c, never more than additions / (limit+1)),
    and any key seen more often than that is kept. Which keys stay depends on counts only, never on
    how ties between keys happen to fall.
    """

    def __init__(self, limit: int = MAX_DISTINCT) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}
        self.added = 0
        self.max_undercount = 0

    def add(self, key: str) -> None:
        self.added += 1
        counts = self.counts
        if key in counts:
            counts[key] += 1
            return
        counts[key] = 1
        if len(counts) > 2 * self.limit:
            cut = sorted(counts.values(), reverse=True)[self.limit]
            self.max_undercount += cut
            self.counts = {k: n - cut for k, n in counts.items() if n > cut}

    @property
    def exact(self) -> bool:
        return self.max_undercount == 0

    @property
    def folded(self) -> int:
        """Additions not in any kept count."""
        return self.added - sum(self.counts.values())

    def total(self) -> int:
        return self.added

    def top(self, n: int) -> list[tuple[str, int]]:
        return _ranked(self.counts)[:n]

    def summary(self, n: int) -> tuple[dict[str, int], dict[str, Any] | None]:
        """(the top n as an ordered dict, what is not listed or None when everything is)."""
        ranked = _ranked(self.counts)
        listed, rest = ranked[:n], ranked[n:]
        if not rest and self.exact:
            return dict(listed), None
        return dict(listed), {"keys": len(rest) if self.exact else None,
                              "events": self.added - sum(c for _, c in listed),
                              "exact": self.exact, "max_undercount": self.max_undercount}


class _Durations:
    """Non-negative durations (ms) for one metric; negative ones (clock skew) are counted apart.

    The samples are kept as 8-byte integers because an exact median needs them all.
    """

    def __init__(self) -> None:
        self.values = array("q")
        self.total = 0
        self.negative = 0

    def add(self, start: int | None, end: int | None) -> None:
        if start is None or end is None:
            return
        if end < start:
            self.negative += 1
        else:
            self.values.append(end - start)
            self.total += end - start

    def summary(self) -> dict[str, Any]:
        if not self.values:
            return {"samples": 0, "mean_seconds": None, "median_seconds": None, "skipped_negative": self.negative}
        return {"samples": len(self.values),
                "mean_seconds": round(self.total / len(self.values) / 1000, 3),
                "median_seconds": round(median(self.values) / 1000, 3),
                "skipped_negative": self.negative}


class _ExactSum:
    """A float sum with no rounding error (Shewchuk partials, as math.fsum), kept while streaming."""

    def __init__(self) -> None:
        self.partials: list[float] = []

    def add(self, x: float) -> None:
        i = 0
        for y in self.partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                self.partials[i] = lo
                i += 1
            x = hi
        self.partials[i:] = [x]

    def value(self) -> Fraction:
        return sum((Fraction(p) for p in self.partials), Fraction(0))


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
        iocs = [_ms(i.get("first_seen")) for i in _items(data.get("iocs")) if isinstance(i, dict)]
        onset = min((t for t in iocs if t is not None), default=None)
        marks = [_ms(data.get("created_at"))]
        marks += [_ms(t.get("timestamp")) for t in _items(data.get("timeline")) if isinstance(t, dict)]
        detected = min((t for t in marks if t is not None), default=None)
        return onset, detected if detected is not None else _ms(event.get("timestamp"))
    return None, None


def first_action_time(event: dict[str, Any]) -> int | None:
    """Earliest data.response_actions[].timestamp of an incident (None when there is none)."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    times = [_ms(a.get("timestamp")) for a in _items(data.get("response_actions")) if isinstance(a, dict)]
    return min((t for t in times if t is not None), default=None)


def attack_id(value: Any) -> str | None:
    """An ATT&CK id as an event writes it, as the table spells it: blanks around it dropped, upper case; None
    for anything else or nothing. The schemas' patterns end in `$`, which (as the reference validator reads
    them) also takes one trailing newline: "T1110\n" is valid and is T1110, not a technique of its own."""
    if not isinstance(value, str):
        return None
    return value.strip().upper() or None


def event_techniques(event: dict[str, Any]) -> set[str]:
    """ATT&CK technique ids an event carries: mitre.sub_technique or mitre.technique, plus threat_intel ttps."""
    found: set[str] = set()
    mitre = event.get("mitre")
    if isinstance(mitre, dict):
        tech = attack_id(mitre.get("sub_technique")) or attack_id(mitre.get("technique"))
        if tech:
            found.add(tech)
    data = event.get("data")
    if event.get("type") == "threat_intel" and isinstance(data, dict):
        for ttp in _items(data.get("ttps")):
            tech = attack_id(ttp.get("technique")) if isinstance(ttp, dict) else None
            if tech:
                found.add(tech)
    return found


def named_tactics(event: dict[str, Any]) -> set[str]:
    """ATT&CK tactic ids the event names itself: mitre.tactic and threat_intel data.ttps[].tactic."""
    found: set[str] = set()
    mitre = event.get("mitre")
    tactic = attack_id(mitre.get("tactic")) if isinstance(mitre, dict) else None
    if tactic:
        found.add(tactic)
    data = event.get("data")
    if event.get("type") == "threat_intel" and isinstance(data, dict):
        for ttp in _items(data.get("ttps")):
            tactic = attack_id(ttp.get("tactic")) if isinstance(ttp, dict) else None
            if tactic:
                found.add(tactic)
    return found


def event_tactics(event: dict[str, Any]) -> set[str]:
    """ATT&CK tactic ids: mitre.tactic and ttps[].tactic; when absent, the tactic of a single-tactic technique."""
    found = named_tactics(event)
    if not found:
        attack = attack_table()
        for tech_id in event_techniques(event):
            tech = attack.technique(tech_id)
            if tech is not None and len(tech.tactic_ids) == 1:
                found.add(tech.tactic_ids[0])
    return found


def bucket_steps() -> Iterator[int]:
    """BUCKET_STEPS, then doubling the last one for ever (spans of centuries stay at ~48 buckets)."""
    yield from BUCKET_STEPS
    step = BUCKET_STEPS[-1]
    while True:
        step *= 2
        yield step


def choose_bucket(span_ms: int) -> int:
    """The smallest step (seconds) that covers the span in at most TARGET_BUCKETS buckets."""
    for step in bucket_steps():
        if span_ms <= step * 1000 * TARGET_BUCKETS:
            return step
    raise AssertionError("unreachable")  # pragma: no cover - bucket_steps() never ends


class _Series:
    """Event counts per (bucket start, band) at the narrowest step that keeps <= MAX_LIVE_BUCKETS buckets.

    Every step divides the next and buckets start at whole multiples of the step since the epoch, so a
    narrow bucket lies inside exactly one wide one and merging loses nothing. A merge happens only when
    more than MAX_LIVE_BUCKETS buckets are occupied, which means the span is far wider than
    TARGET_BUCKETS wide steps; so the step finally chosen is never narrower than the live one.
    """

    def __init__(self) -> None:
        self.steps = bucket_steps()
        self.step_ms = next(self.steps) * 1000
        self.buckets: dict[int, list[int]] = {}
        self.min_ts: int | None = None
        self.max_ts: int | None = None

    def add(self, ts: int, band_index: int) -> None:
        if self.min_ts is None or ts < self.min_ts:
            self.min_ts = ts
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts
        start = ts - ts % self.step_ms
        row = self.buckets.get(start)
        if row is None:
            row = self.buckets[start] = [0] * len(_BAND_INDEX)
            if len(self.buckets) > MAX_LIVE_BUCKETS:
                while len(self.buckets) > MAX_LIVE_BUCKETS:
                    self.step_ms = next(self.steps) * 1000
                    self.buckets = self.regroup(self.step_ms)
                row = self.buckets[ts - ts % self.step_ms]
        row[band_index] += 1

    def regroup(self, step_ms: int) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for start, row in self.buckets.items():
            merged = out.setdefault(start - start % step_ms, [0] * len(_BAND_INDEX))
            for i, n in enumerate(row):
                merged[i] += n
        return out


class DashboardAggregator:
    """Feed events with `add`/`add_all`, then `report()` returns the JSON-ready dashboard dict.

    `since`/`until` (RFC 3339, `until` exclusive) bound the window; without them the window is the
    span of the events seen. Memory is bounded (see the module docstring), not proportional to the
    number of events; events are not de-duplicated by id (each one given is counted: the CLI passes each id once,
    as its newest version, through `wia_security.cli.report.newest_versions` or the store).
    """

    def __init__(self, since: str | None = None, until: str | None = None, top_n: int = TOP_N) -> None:
        # The bounds are compared to the microsecond: floored to the millisecond, `since` ...00.0005 took in an
        # event at ...00.0001 and `until` ...01.0005 left out one at ...01.0003.
        self.since_us = _us(since) if since else None
        self.until_us = _us(until) if until else None
        if since and self.since_us is None:
            raise ValueError(f"since: {since!r} is not an RFC 3339 date-time")
        if until and self.until_us is None:
            raise ValueError(f"until: {until!r} is not an RFC 3339 date-time")
        # The window in whole milliseconds that holds it (for the chart and the store query).
        self.since_ms = None if self.since_us is None else self.since_us // 1000
        self.until_ms = None if self.until_us is None else -(-self.until_us // 1000)
        if self.since_us is not None and self.until_us is not None and self.since_us >= self.until_us:
            raise ValueError(f"since {since!r} is not before until {until!r}: the window is empty")
        self.top_n = top_n
        self.seen = 0
        self.outside_window = 0
        self.without_timestamp = 0
        self.by_type = BoundedCounter()
        self.by_band: Counter[str] = Counter()
        self.by_source = BoundedCounter()
        self.by_status: dict[str, BoundedCounter] = {t: BoundedCounter() for t in STATUS_TYPES}
        self.tactics = BoundedCounter()
        self.techniques = BoundedCounter()
        self.mttd = _Durations()
        self.mttr = _Durations()
        self.first_action = _Durations()
        self.series = _Series()
        self._severity_count = 0
        self._severity_sum = _ExactSum()

    def add(self, event: dict[str, Any]) -> bool:
        """Count one event; False when it lies outside the window or has no usable timestamp."""
        self.seen += 1
        ts_us = _us(event.get("timestamp")) if isinstance(event, dict) else None
        if ts_us is None:
            self.without_timestamp += 1
            return False
        if (self.since_us is not None and ts_us < self.since_us) or (self.until_us is not None and ts_us >= self.until_us):
            self.outside_window += 1
            return False
        ts = ts_us // 1000
        raw_type = event.get("type")
        etype = _key(raw_type) if isinstance(raw_type, str) else "unknown"
        severity = event.get("severity")
        sev_band = band(severity)
        self.by_type.add(etype)
        self.by_band[sev_band] += 1
        number = finite_number(severity)
        if number is not None:
            self._severity_count += 1
            self._severity_sum.add(number)
        source = event.get("source")
        name = source.get("name") if isinstance(source, dict) else None
        self.by_source.add(_key(name) if isinstance(name, str) else "unknown")
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        if etype in self.by_status and isinstance(data.get("status"), str):
            self.by_status[etype].add(_key(data["status"]))
        for tactic in event_tactics(event):
            self.tactics.add(_key(tactic))
        for tech in event_techniques(event):
            self.techniques.add(_key(tech))
        onset, detected = detection_times(event)
        self.mttd.add(onset, detected)
        if etype == "incident":
            self.mttr.add(detected, _ms(data.get("closed_at")))
            self.first_action.add(detected, first_action_time(event))
        self.series.add(ts, _BAND_INDEX[sev_band])
        return True

    def add_all(self, events: Iterable[dict[str, Any]]) -> "DashboardAggregator":
        for event in events:
            self.add(event)
        return self

    # -- result ---------------------------------------------------------------------------------------
    def _window(self) -> tuple[int, int]:
        lo, hi = self.series.min_ts, self.series.max_ts
        start = self.since_ms if self.since_ms is not None else (lo if lo is not None else 0)
        end = self.until_ms if self.until_ms is not None else ((hi + 1) if hi is not None else start + 1)
        return start, max(end, start + 1)

    def time_series(self) -> dict[str, Any]:
        start, end = self._window()
        step_ms = max(choose_bucket(end - start) * 1000, self.series.step_ms)
        counts = self.series.regroup(step_ms)
        origin = start - start % step_ms            # buckets start on whole steps since the epoch (UTC)
        count = max(1, math.ceil((end - origin) / step_ms))
        names = list(_BAND_INDEX)
        buckets = []
        for i in range(count):
            row = counts.get(origin + i * step_ms, [0] * len(names))
            by_band = {name: row[j] for j, name in enumerate(names) if j < len(BAND_NAMES) or row[j]}
            buckets.append({"start": iso_ms(origin + i * step_ms), "total": sum(row), "by_band": by_band})
        return {"bucket_seconds": step_ms // 1000, "buckets": buckets}

    def _top_tactics(self) -> list[dict[str, Any]]:
        attack = attack_table()
        out = []
        for tactic_id, n in self.tactics.top(self.top_n):
            tactic = attack.tactic(tactic_id)
            out.append({"id": tactic_id, "name": tactic.name if tactic else None, "count": n})
        return out

    def _top_techniques(self) -> list[dict[str, Any]]:
        attack = attack_table()
        out = []
        for tech_id, n in self.techniques.top(self.top_n):
            tech = attack.technique(tech_id)
            out.append({"id": tech_id, "name": tech.name if tech else None,
                        "tactics": list(tech.tactic_ids) if tech else [], "count": n})
        return out

    def report(self, generated_at: str | None = None) -> dict[str, Any]:
        """The dashboard as a JSON-ready dict (the `--json` twin of the HTML report)."""
        start, end = self._window()
        total = self.by_type.total()
        seen_any = self.series.min_ts is not None
        not_listed: dict[str, Any] = {}
        by_type, not_listed["by_type"] = self.by_type.summary(LIST_LIMIT)
        by_source, not_listed["by_source"] = self.by_source.summary(LIST_LIMIT)
        by_status = {}
        for etype, counter in self.by_status.items():
            if counter.total():
                by_status[etype], not_listed[f"by_status.{etype}"] = counter.summary(LIST_LIMIT)
        mean = (self._severity_sum.value() / self._severity_count) if self._severity_count else None
        return {
            "format": REPORT_FORMAT,
            "format_version": REPORT_VERSION,
            "generated_at": generated_at or now_iso(),
            "window": {"since": iso_ms(start) if seen_any or self.since_ms is not None else None,
                       "until": iso_ms(end) if seen_any or self.until_ms is not None else None,
                       "bounded": self.since_ms is not None or self.until_ms is not None},
            "inputs": {"events_read": self.seen, "in_window": total, "outside_window": self.outside_window,
                       "without_timestamp": self.without_timestamp},
            "totals": {
                "events": total,
                "mean_severity": round(float(mean), 2) if mean is not None else None,
                "by_type": by_type,
                "by_band": {name: self.by_band.get(name, 0) for name in BAND_NAMES}
                | ({"unknown": self.by_band["unknown"]} if self.by_band.get("unknown") else {}),
                "by_source": by_source,
                "by_status": by_status,
                "not_listed": {k: v for k, v in not_listed.items() if v is not None},
            },
            "attack": {"version": attack_table().version, "top_tactics": self._top_tactics(),
                       "top_techniques": self._top_techniques(),
                       "distinct_techniques": len(self.techniques.counts),
                       "distinct_techniques_exact": self.techniques.exact},
            "response": {"mttd": self.mttd.summary(), "mttr": self.mttr.summary(),
                         "time_to_first_action": self.first_action.summary()},
            "time_series": self.time_series(),
        }


def aggregate(events: Iterable[dict[str, Any]], since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """Convenience: the dashboard report of an iterable of event dicts."""
    return DashboardAggregator(since, until).add_all(events).report()
