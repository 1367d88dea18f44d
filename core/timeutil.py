"""Timestamps: the standard's UTC millisecond spelling, RFC 3339 parsing and epoch conversion."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def now_iso() -> str:
    """Current UTC time as the builders write it: 2025-12-14T04:30:00.000Z."""
    return to_iso(datetime.now(timezone.utc))


def to_iso(moment: datetime) -> str:
    """UTC, millisecond precision, "Z" suffix (the spelling every upstream SDK accepts)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    m = moment.astimezone(timezone.utc)
    # Not strftime: glibc's %Y writes the year 232 as "232", which is no RFC 3339 date.
    return (f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
            f"{m.microsecond // 1000:03d}Z")


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


def at_own_offset(value: str) -> str:
    """An RFC 3339 date-time as written, in the strict spelling most products read (upper-case T and Z, at most nine
    fraction digits, no trailing newline): for a time whose instant in UTC leaves the years 1-9999, which `to_iso`
    cannot write (9999-12-31t23:30:00-01:00)."""
    head, dot, rest = value.rstrip("\n").upper().partition(".")
    digits = len(rest) - len(rest.lstrip("0123456789"))
    return f"{head}.{rest[:min(digits, 9)]}{rest[digits:]}" if dot else head


def parse_iso_or_none(value: object) -> datetime | None:
    """parse_iso's instant, or None when `value` is absent, not a string, or no timestamp (a header, a stored
    position, an event's field read without failing on it)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_iso(value)
    except (ValueError, OverflowError):
        return None


def to_epoch_ms(value: str) -> int:
    """Epoch milliseconds, floored, in exact integer arithmetic (`timestamp() * 1000` is a float product
    that lands one below for about a fifth of instants before 1970 or with microseconds)."""
    return (parse_iso(value) - _EPOCH) // _MS


def from_epoch_ms(ms: float) -> str:
    """The instant `ms` milliseconds after the epoch, as `to_iso` spells it (any year 0001-9999)."""
    return to_iso(_EPOCH + timedelta(milliseconds=ms))


_RELATIVE = re.compile(r"^(\d{1,18})([smhdw])$")     # more digits: no int parse of a huge string
_OFFSET = re.compile(r"(?:[zZ]|[+-]\d{2}:\d{2})$")
_BASIC_OFFSET = re.compile(r"[+-]\d{4}$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def time_or_relative(value: str, now: datetime | None = None) -> str:
    """A query bound: an RFC 3339 time as given, or a relative one (30m, 24h, 7d: that long before now)
    spelled as `to_iso` does. ValueError says which spellings are accepted."""
    m = _RELATIVE.match(value)
    if m:
        try:
            return to_iso((now or datetime.now(timezone.utc)) - timedelta(**{_UNITS[m[2]]: int(m[1])}))
        except OverflowError:
            raise ValueError(f"{value[:60]!r} reaches back before the year 1") from None
    try:
        parse_iso(value)
    except ValueError:
        raise ValueError(f"{value[:60]!r} is neither an RFC 3339 time (2025-12-14T09:30:00Z) "
                         "nor relative (30m, 24h, 7d)") from None
    if not _OFFSET.search(value.strip()):
        basic = _BASIC_OFFSET.search(value.strip())
        if basic:       # +0100: ISO 8601's basic spelling, which RFC 3339 does not take; say so, not "no offset"
            raise ValueError(f"{value[:60]!r}: write its UTC offset {basic[0]} as {basic[0][:3]}:{basic[0][3:]} "
                             "(RFC 3339)")
        # RFC 3339 requires the offset; taking a bare 09:30 as UTC puts the bound hours off in most places
        raise ValueError(f"{value[:60]!r} has no UTC offset: add Z for UTC or the offset (+09:00)")
    return value
