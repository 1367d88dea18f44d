"""Where a new reader of a source starts: the "start time" setting, shared by the XSOAR pack (its First fetch time)
and the Splunk app's modular input (its start_time), so both take the same forms and say the same things.

A value is `<n> minutes/hours/days/weeks` before now (singular and a trailing `ago` too), an RFC 3339 instant with its
offset, or empty for everything the source holds. It is read only when the reader has no position of its own yet;
each product keeps the cutoff it computed (so it does not move on with the clock) and applies it to its sources:
what that means per source (an event's timestamp, TAXII's date_added, a Kafka message's timestamp) is the caller's.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from .timeutil import parse_iso_or_none

#: The accepted forms, said in every refusal (callers put their own name for the setting before it).
FORMS = ("a number of minutes, hours, days or weeks before now (3 days, 12 hours, 1 week), an RFC 3339 instant "
         "(2026-01-31T12:00:00Z), or empty to fetch everything the source holds")

_RELATIVE = re.compile(r"(\d{1,7})\s*(minute|hour|day|week)s?(?:\s+ago)?", re.IGNORECASE)
_INSTANT = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)


def start_cutoff(value: Any, now: datetime | None = None) -> datetime | None:
    """The setting as the instant a new reader starts at (None: empty, everything the source holds). ValueError says
    why not, without naming the setting (callers prefix their own name for it), and gives the forms: an unreadable
    value, an amount reaching back before the year 1, an instant in the future (the first read would skip everything
    until then)."""
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    now = now or datetime.now(timezone.utc)
    relative = _RELATIVE.fullmatch(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        try:
            return now - timedelta(**{f"{unit}s": amount})
        except OverflowError:
            raise ValueError(f"{text[:40]!r} reaches back before the year 1; use {FORMS}") from None
    moment = parse_iso_or_none(text) if _INSTANT.fullmatch(text) else None
    if moment is None:
        raise ValueError(f"must be {FORMS}; not {text[:40]!r}")
    if moment > now:
        raise ValueError(f"{text[:40]!r} is in the future: the first read would skip everything until then; "
                         f"use {FORMS}")
    return moment


def event_before(event: Any, cutoff: datetime) -> bool:
    """Whether a WIA event's `timestamp` is before `cutoff` (a feed without a time filter, e.g. the gateway's, is
    walked and these are skipped). An unreadable timestamp is not before: validation says what is wrong with it."""
    moment = parse_iso_or_none(event.get("timestamp")) if isinstance(event, dict) else None
    return moment is not None and moment < cutoff


def epoch_millis(moment: datetime) -> int:
    """`moment` as Kafka's ListOffsets-by-timestamp takes it: epoch milliseconds, floored, never negative (before
    1970 is the beginning: -1 and -2 are ListOffsets' latest and earliest)."""
    return max(0, (moment - _EPOCH) // _MILLISECOND)


def kafka_start_offsets(consumer: Any, partitions: list[Any], since: datetime) -> dict[str, int]:
    """partition -> the offset of its first message whose timestamp (CreateTime, or LogAppendTime as the topic sets
    it) is at or after `since` (Kafka ListOffsets by timestamp, brokers 0.10.1 and later), or its end offset when it
    holds none: where a new reader starts. `consumer` is a kafka-python consumer; what it raises is the caller's."""
    if not partitions:
        return {}
    found = consumer.offsets_for_times({tp: epoch_millis(since) for tp in partitions})
    # a broker answers "none at or after it" with offset -1 (kafka-python: None); tansu answers offset 0 with
    # timestamp -1, which read as an offset would start at the beginning
    missing = [tp for tp in partitions if found.get(tp) is None or found[tp].timestamp < 0]
    ends = consumer.end_offsets(missing) if missing else {}
    return {str(tp.partition): int(ends[tp] if tp in ends else found[tp].offset) for tp in partitions}
