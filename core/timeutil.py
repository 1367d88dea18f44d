"""Timestamps: the standard's UTC millisecond spelling, RFC 3339 parsing and epoch conversion."""
from __future__ import annotations

from datetime import datetime, timezone


def now_iso() -> str:
    """Current UTC time as the builders write it: 2025-12-14T04:30:00.000Z."""
    return to_iso(datetime.now(timezone.utc))


def to_iso(moment: datetime) -> str:
    """UTC, millisecond precision, "Z" suffix (the spelling every upstream SDK accepts)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    """An RFC 3339 date-time (any offset, any fraction length, t/z in either case) as an aware datetime."""
    text = value.strip().upper().replace("Z", "+00:00")
    if "." in text:
        # fromisoformat takes at most 6 fraction digits; RFC 3339 allows any number.
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def to_epoch_ms(value: str) -> int:
    return int(parse_iso(value).timestamp() * 1000)


def from_epoch_ms(ms: float) -> str:
    return to_iso(datetime.fromtimestamp(ms / 1000, tz=timezone.utc))
