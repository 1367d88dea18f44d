"""The TAXII settle window: which objects of a Get Objects walk a poll leaves for a later one.

A TAXII server may still be adding one request's objects, all stamped with one `date_added`, while a
poll lists them (medallion adds them one at a time): read as they stand, the visible part would become
partial events. So a poll holds back the objects added within the last `settle` seconds of the
server's clock and keeps its position before them; a later poll reads them once they are older than
the window, whole by then.

A `date_added` past the horizon (the server's clock, or ours if later, plus the window and a second) is no
honest stamp (a broken publisher's year 2999): such objects are read, but the position goes no further than
the cutoff, since taken as the position they would move added_after past every object added afterwards.

Pure logic, shared by the TAXII source (connectors/taxii.py), the Splunk app's and the XSOAR pack's
TAXII pulls (which carry their own standard-library HTTP): the cutoff and the horizon from the server's
`Date` header and the round trip (`measure`), whether a page reaches past them, which objects are settling
and which stamped ahead (`classify`), which objects of a page are held, and the position to keep.
`SettleWindow` walks one poll's pages; the caller does the HTTP (Get Manifest of what was added after the
cutoff, once a page reaches past it) and keeps the position it returns.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterable

from .timeutil import parse_iso, parse_iso_or_none

#: Seconds a date_added instant must lie behind the server's clock before a poll reads its objects
#: (a server may still be adding one request's objects); 0 reads everything listed at once.
DEFAULT_SETTLE_SECONDS = 60.0
#: The longest settle window taken (an Add lasts minutes at most; far longer windows overflow datetime).
MAX_SETTLE_SECONDS = 86_400.0

_MICROSECOND = timedelta(microseconds=1)
#: A `Date` header has whole seconds, truncated: the server's clock may be this much past it.
CLOCK_GRAIN = timedelta(seconds=1)


def settle_seconds(value: Any) -> float:
    """The settle window as seconds: a finite number from 0 to MAX_SETTLE_SECONDS. ValueError says why not
    (without naming the setting: callers prefix their own name for it)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number of seconds, got {str(value)[:40]!r}") from None
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"must be a number of seconds >= 0, got {str(value)[:40]!r}")
    if seconds > MAX_SETTLE_SECONDS:
        raise ValueError(f"must be at most {MAX_SETTLE_SECONDS:g} seconds (a day), got {str(value)[:40]!r}")
    return seconds


def iso_micro(moment: datetime) -> str:
    """UTC with microseconds and a Z, as TAXII dates are written (not strftime: glibc's %Y writes the year
    232 as "232")."""
    m = moment.astimezone(timezone.utc)
    return (f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
            f"{m.microsecond:06d}Z")


def just_before(timestamp: str) -> str | None:
    """One microsecond before `timestamp`, for TAXII's exclusive `added_after`; None where nothing is earlier
    (the first instant of the year 1 in UTC): ask without `added_after`, from the beginning. ValueError or
    TypeError when `timestamp` is not an RFC 3339 date-time."""
    try:
        return iso_micro(parse_iso(timestamp) - _MICROSECOND)
    except OverflowError:              # before the year 1, in UTC or in the timestamp's own offset
        return None


#: A date header's instant, or None when absent or not a timestamp.
instant = parse_iso_or_none


def server_clock(date_header: str | None, round_trip: timedelta = timedelta(0)) -> datetime | None:
    """The server's clock when a request reached it, at the latest: its answer's `Date` header (RFC 9110:
    whole seconds, made as the answer goes out) less the time from sending the request to reading that
    answer, since the server may have listed the objects long before it answered. None without a usable
    `Date`."""
    try:
        moment = parsedate_to_datetime(date_header) if date_header else None
        if moment is None or moment.tzinfo is None:
            return None
        return moment.astimezone(timezone.utc) - round_trip
    except (TypeError, ValueError, IndexError, OverflowError):   # Overflow: the end of year 9999 west of UTC
        return None


@dataclass(frozen=True)
class Clocks:
    """A walk's two instants, measured at its first answer (see measure)."""

    cutoff: datetime                   # objects added after it are still settling (held)
    #: objects added after it carry a date_added ahead of the server's clock (a publisher's or a clock's fault):
    #: read, but the position goes no further than the cutoff, so objects added later with true stamps are read
    horizon: datetime
    #: the server's `Date` less the round trip, when it sent one
    server_now: datetime | None = None
    #: the newest date_added listed, when it lies later than the `Date` header plus the window (see date_behind)
    stamped_past_date: datetime | None = None
    #: our clock at the answer (the server's clock where it sent no `Date`)
    our_now: datetime | None = None


def measure(settle: float, server_now: datetime | None, *, round_trip: timedelta = timedelta(0),
            latest: str | None = None, our_now: datetime | None = None) -> Clocks:
    """The cutoff and the horizon of a walk, at its first answer.

    Cutoff: `settle` seconds before the server's clock (`server_now`, see server_clock), or, without one, our
    clock at the answer less the round trip. The server stamped the page's `latest` date_added by its own clock,
    so its clock reads at least that (a `Date` set by a proxy whose clock lags), as long as that stamp is within
    the horizon. Measured once per walk: an Add still running while any page was listed began after that cutoff
    (if it takes less than `settle`).

    Horizon: `settle` seconds (and CLOCK_GRAIN, `Date` having whole seconds) past the later of the server's clock
    and ours at the answer. No honest stamp is later: an object added after it (a stamp in the year 2999, or
    hours ahead) would, taken as the position, move added_after past every object added afterwards with a true
    stamp, and those would never be read. Ours counts too, so a `Date` header stuck behind (a proxy's) does not
    make every fresh stamp look ahead; a stamp beyond both is."""
    ours = (our_now or datetime.now(timezone.utc))
    clock = server_now or ours - round_trip
    try:
        horizon = max(server_now + round_trip if server_now else ours, ours) + timedelta(seconds=settle) + CLOCK_GRAIN
    except OverflowError:              # a clock within a day of the year 9999: nothing is later
        horizon = datetime.max.replace(tzinfo=timezone.utc)
    stamped = instant(latest)
    past_date = None
    if stamped is not None and stamped <= horizon:
        clock = max(clock, stamped)
        behind = stamped - (server_now + round_trip) if server_now is not None else None
        if settle and behind is not None and behind > timedelta(seconds=settle) + CLOCK_GRAIN:
            past_date = stamped
    try:
        cut = clock - timedelta(seconds=settle)
    except OverflowError:              # a clock within a day of the year 1: nothing is that old
        cut = datetime.min.replace(tzinfo=timezone.utc)
    return Clocks(cut, horizon, server_now, past_date, ours)


def moved_on(clocks: Clocks, settle: float, server_now: datetime | None, *, round_trip: timedelta = timedelta(0),
             our_now: datetime | None = None) -> Clocks:
    """A walk's clocks at a later answer: the cutoff stays where the first answer put it (measure), the horizon moves
    on with the clocks. A walk may last longer than the window (many pages, a slow server): what the server stamped
    meanwhile by its own clock is honest, yet past the first answer's horizon it was taken as stamped ahead, read at
    once while still settling (partial events) with a warning blaming the publisher."""
    later = measure(settle, server_now, round_trip=round_trip, our_now=our_now).horizon
    return replace(clocks, horizon=max(clocks.horizon, later))


def date_behind(clocks: Clocks) -> str | None:
    """The warning of a walk whose server's `Date` header is behind the date_added it lists by more than the window
    (a proxy's clock, or a Date stuck in the past), None otherwise. The cutoff is then taken from the newest stamp
    (measure), so the objects of the newest Add are held until a later Add is stamped a window past them: in a
    quiet collection, perhaps long. Not worked around by our clock, which would shorten the window by however far
    ours runs ahead of the server's: said, once per walk, so the clock gets fixed."""
    if clocks.stamped_past_date is None or clocks.server_now is None:
        return None
    return (f"the TAXII server's Date header ({iso_micro(clocks.server_now)[:19]}Z, less the round trip) is behind the "
            f"date_added it lists ({iso_micro(clocks.stamped_past_date)}) by more than the settle window: the settle "
            "cutoff is taken from the newest date_added instead, so the newest objects are held until an object is "
            "added a window later (in a quiet collection, perhaps long); check the clock of the TAXII server or of a "
            "proxy in front of it, which sets the Date header")


def stored_past_horizon(position: Any, clocks: Clocks) -> bool:
    """Whether a stored position (a checkpoint's or last_run's added_after) lies past the horizon. No walk of this
    version keeps one there (the position goes no further than the cutoff); an earlier one took a date_added stamped
    ahead of the clock as the position (a broken publisher's year 2999; released 0.1.0 did), or the server's clock
    was set back since. Every walk from it asks only for objects added after it: none added with a true stamp is
    read."""
    at = instant(position)
    return at is not None and at > clocks.horizon


def stored_past_warning(position: str, clocks: Clocks) -> str:
    """The warning of a walk from a position stored past the horizon (stored_past_horizon), without how to reset it
    (each product says how its position is reset). The position is not moved back: where it stood before the stamp
    ahead is not known, and moving it to the cutoff would skip, unsaid, every object added since that walk."""
    clock = clocks.server_now or clocks.our_now or clocks.horizon
    whose = "the TAXII server's clock" if clocks.server_now else "our clock (the TAXII server sent no Date header)"
    return (f"the stored position (added_after {str(position)[:40]}) is later than {whose} ({iso_micro(clock)[:19]}Z) "
            "plus the settle window: an earlier version took it from an object stamped ahead of the clock (a broken "
            "publisher's date_added, e.g. the year 2999), or the server's clock was set back since; as every run asks "
            "only for objects added after it, "
            "nothing added since has been read; it is not moved back by itself, since where it stood before that "
            "stamp is not known and the server's clock would skip everything added in between")


def cutoff(settle: float, server_now: datetime | None, *, round_trip: timedelta = timedelta(0),
           latest: str | None = None, our_now: datetime | None = None) -> datetime:
    """The cutoff of measure(): `settle` seconds before the server's clock at a walk's first answer."""
    return measure(settle, server_now, round_trip=round_trip, latest=latest, our_now=our_now).cutoff


def classify(recent: Callable[[datetime], Iterable[Any] | None], clocks: Clocks,
             settle: float) -> tuple[set[str], set[str]] | None:
    """(ids still settling, ids stamped ahead of the horizon) of what was added after the cutoff; None when the
    server cannot list them all. `recent(instant)` lists what was added after `instant`: Get Manifest entries,
    which carry their date_added, or Get Objects objects, which do not (then what was added after the horizon is
    asked for as well). With `settle` 0 nothing settles: only the horizon is asked for. An id with a version
    settling counts as settling."""
    if not settle:
        ahead = recent(clocks.horizon)
        return None if ahead is None else (set(), recent_ids(ahead, clocks.horizon))
    entries = recent(clocks.cutoff)
    if entries is None:
        return None
    settling: set[str] = set()
    ahead_ids: set[str] = set()
    undated: set[str] = set()
    for entry in entries:
        oid = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(oid, str):
            continue
        added = instant(entry.get("date_added"))
        if added is None:
            undated.add(oid)
        elif added > clocks.horizon:
            ahead_ids.add(oid)
        elif added > clocks.cutoff:    # at or before it: a server ignoring added_after
            settling.add(oid)
    if undated:
        later = recent(clocks.horizon)
        if later is None:
            return None
        beyond = recent_ids(later, clocks.horizon)
        ahead_ids |= undated & beyond
        settling |= undated - beyond
    return settling, ahead_ids - settling


def page_bounds(first: str | None, last: str | None, count: int) -> tuple[str | None, str | None]:
    """(earliest, latest) date_added of a page as far as its X-TAXII-Date-Added-First/-Last headers tell:
    a one-object page may carry only -First (medallion's last `next` page does so)."""
    return first or last, last or (first if count <= 1 else None)


def reaches_past(first: str | None, last: str | None, count: int, cut: datetime) -> bool:
    """Whether a page may hold objects added after `cut`. A page without date headers cannot be placed and
    is read as it stands."""
    earliest, latest = (instant(b) for b in page_bounds(first, last, count))
    if latest is not None:
        return latest > cut
    return earliest is not None        # its end unknown: it may reach past


def straddles(first: str | None, last: str | None, count: int, cut: datetime) -> bool:
    """Whether a page that reaches past `cut` starts at or before it: only part of it is held."""
    earliest = instant(page_bounds(first, last, count)[0])
    return earliest is not None and earliest <= cut


def dated_by(entry: Any, cut: datetime) -> bool:
    """Whether a manifest entry says it was added at or before `cut` (unreadable: not)."""
    added = instant(entry.get("date_added")) if isinstance(entry, dict) else None
    return added is not None and added <= cut


def recent_ids(entries: Iterable[Any], cut: datetime) -> set[str]:
    """Ids of the objects added after `cut`, from Get Manifest entries (or Get Objects objects, which have no
    date_added) asked for with `added_after` = cut. An entry dated at or before the cutoff (a server ignoring
    `added_after`) does not count."""
    return {e["id"] for e in entries
            if isinstance(e, dict) and isinstance(e.get("id"), str) and not dated_by(e, cut)}


@dataclass
class Settled:
    """What to do with one page of a walk."""

    objects: list[Any]                 # to read now
    held: list[Any] = field(default_factory=list)   # left for a later poll
    #: the date_added to keep as the position once `objects` are read: the page's last (all read), its
    #: first instant (split: every held object is later), the cutoff (`capped`), or None (all held: keep the
    #: position as it was)
    position: str | None = None
    done: bool = False                 # the walk ends here: every later page is past the cutoff too
    #: how many objects the walk holds in all, on this page and on the later pages it does not read (Get Manifest
    #: of what was added after the cutoff lists them); None when they could not all be listed (`held` at least)
    held_in_all: int | None = 0
    #: objects stamped ahead of the server's clock were read (`ahead`): the position is the cutoff, not the page's
    #: last date_added, and later pages (all stamped ahead too) are read with the same position
    capped: bool = False
    ahead: int = 0                     # how many of `objects` are stamped ahead of the horizon


class SettleWindow:
    """One walk's settle decisions, page by page, in the order the server lists them (date_added order).

    `page()` takes each page's objects and headers; `recent(instant)` is asked only once a page reaches past the
    cutoff (with settle 0: past the horizon) and returns Get Manifest entries (or Get Objects objects) added after
    the instant, or None when it cannot list them all (the page then waits): they split a straddling page, tell
    the objects stamped ahead of the server's clock (Clocks.horizon) from those settling, and count what the walk
    holds. The cutoff is measured at the first page, the horizon at each page until then (moved_on). A page
    holding settling objects ends the walk; objects stamped ahead come last in date_added order and are read when
    met, the position then kept at the cutoff."""

    def __init__(self, settle: float = DEFAULT_SETTLE_SECONDS) -> None:
        self.settle = settle_seconds(settle)
        self.clocks: Clocks | None = None
        self.ahead = 0                 # objects read stamped ahead of the horizon, in this walk
        self.ahead_latest: str | None = None       # the latest X-TAXII-Date-Added-Last among their pages
        self._classified: tuple[set[str], set[str]] | None = None
        self._asked = False

    def page(self, objects: list[Any], first: str | None, last: str | None, *,
             recent: Callable[[datetime], Iterable[Any] | None], date_header: str | None = None,
             round_trip: timedelta = timedelta(0), our_now: datetime | None = None) -> Settled:
        objects = list(objects)
        earliest, latest = page_bounds(first, last, len(objects))
        if self.clocks is None:
            self.clocks = measure(self.settle, server_clock(date_header, round_trip), round_trip=round_trip,
                                  latest=latest, our_now=our_now)
        elif not self._asked:          # the horizon of the latest answer, until the objects are told apart
            self.clocks = moved_on(self.clocks, self.settle, server_clock(date_header, round_trip),
                                   round_trip=round_trip, our_now=our_now)
        clocks = self.clocks
        if not objects or not reaches_past(first, last, len(objects), clocks.cutoff if self.settle else clocks.horizon):
            return Settled(objects, position=last or first)
        # Asked also for a page wholly past the cutoff: the walk ends at this page, and what later pages hold is
        # counted only by this list (a run saying it held one page's objects of a bigger Add misled).
        if not self._asked:
            self._classified, self._asked = classify(recent, clocks, self.settle), True
        if self._classified is None:
            if self.settle:            # cannot be told apart: the whole page waits
                return Settled([], objects, None, done=True, held_in_all=None)
            settling, ahead_ids = set(), {o.get("id") for o in objects if isinstance(o, dict)}
        else:
            settling, ahead_ids = self._classified
        straddling = straddles(first, last, len(objects), clocks.cutoff)
        read: list[Any] = []
        held: list[Any] = []
        ahead: list[Any] = []
        for obj in objects:
            oid = obj.get("id") if isinstance(obj, dict) else None
            if isinstance(oid, str) and oid in ahead_ids:
                ahead.append(obj)
            elif self.settle and (not straddling or not isinstance(oid, str) or oid in settling):
                held.append(obj)       # no id to look up: it waits for its page
            else:
                read.append(obj)
        if ahead:
            self.ahead += len(ahead)
            self.ahead_latest = latest or earliest or self.ahead_latest
        if held or settling:
            # The walk ends here (every later page is past the cutoff). The page's first instant is at or before the
            # cutoff, so before every held object; what was read comes again from there, and callers skip it by the
            # event ids they remember. What is stamped ahead is read (it is data, and the walk may not come back to
            # it before its ids are forgotten), and the position is then the cutoff, whose ids they keep.
            position = iso_micro(clocks.cutoff) if ahead else earliest if read and straddling else None
            return Settled(read + ahead, held, position, done=True, held_in_all=_in_all(objects, held, settling),
                           capped=bool(ahead), ahead=len(ahead))
        # Nothing settles: everything is read, what is stamped ahead too (it is data), but the position goes no
        # further than the cutoff, before every object a server adds from now on.
        return Settled(read + ahead, [], iso_micro(clocks.cutoff), capped=True, ahead=len(ahead))

    def stored_past(self, position: Any) -> str | None:
        """The warning of a walk from a position stored past the horizon (stored_past_warning), None otherwise or
        before the first page measured the clocks."""
        if self.clocks is None or not stored_past_horizon(position, self.clocks):
            return None
        return stored_past_warning(str(position), self.clocks)

    def date_warning(self) -> str | None:
        """What to log once when the server's Date header is behind its stamps (date_behind), else None."""
        return date_behind(self.clocks) if self.clocks else None

    def ahead_warning(self) -> str | None:
        """What to log once a walk read objects stamped ahead of the server's clock (None if it read none)."""
        return ahead_warning(self.ahead, self.ahead_latest, self.clocks) if self.ahead and self.clocks else None


def ahead_warning(count: int, latest: str | None, clocks: Clocks) -> str:
    """The warning of a walk that read `count` objects stamped ahead of the horizon, up to `latest`."""
    return (f"{count} TAXII object(s) carry a date_added later than the server's clock plus the settle window "
            f"(up to {str(latest)[:40]}; the horizon was {iso_micro(clocks.horizon)}): read now, but the position "
            f"stays at {iso_micro(clocks.cutoff)} so that objects added later with true stamps are still read (these "
            "are listed again and skipped by their ids); a publisher or server stamping ahead of its clock, or a "
            "Date header behind it")


def _in_all(objects: list[Any], held: list[Any], recent: set[str] | None) -> int | None:
    """How many objects a walk holds: those `held` of its last page `objects`, and those listed as added after the
    cutoff that are not on that page (on later pages). None when the recent ones could not all be listed."""
    if recent is None:
        return None
    on_page = {o.get("id") for o in objects if isinstance(o, dict)}
    return len(held) + len(recent - on_page)
