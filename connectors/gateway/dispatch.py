"""The delivery thread: owns the store and the fan-out sinks; groups concurrent requests into one send; dead-letters failures.

Sinks are synchronous and not thread-safe, so exactly one thread talks to them. Requests queue
jobs; the thread takes every job waiting (up to `batch` events), stores them in one SQLite
transaction, fans them out, writes every failure to the dead letter (flushed), then completes
the jobs' futures on the event loop. An ingest request is answered only after this, so an
"accepted" event is in the store (or, if a destination refused it, in the dead letter).
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..base import Rejected

log = logging.getLogger("wia_security.gateway")


class Busy(Exception):
    """Too many events waiting for delivery: the client should retry later."""


class StoreUnavailable(Exception):
    """The embedded store raised: nothing of the request was accepted."""


@dataclass
class _Job:
    events: list[dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    rejected: list[Rejected]                 # refused at validation: only dead-lettered


@dataclass
class Outcome:
    """What became of one job's events: every failure (store or destination), the store's refusals by id(event), and
    the id(event)s the store already held as that version or a newer one (a re-send, an older version)."""

    failed: list[Rejected] = field(default_factory=list)
    not_stored: dict[int, Rejected] = field(default_factory=dict)
    held_already: set[int] = field(default_factory=set)


@dataclass
class DispatchStats:
    events: int = 0
    groups: int = 0
    stored: int = 0
    duplicates: int = 0
    delivered: int = 0
    handed_to_destinations: int = 0   # events given to the fan-out (each destination gets every one)
    dead_lettered: int = 0
    store_refused: int = 0
    store_errors: int = 0
    failures: int = 0                 # delivery rounds that raised as a whole (503)

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Dispatcher:
    def __init__(self, store: Any | None, fanout: Any | None, dead_letter: Any, *, max_pending: int,
                 batch: int) -> None:
        self.store = store
        self.fanout = fanout
        self.dead_letter = dead_letter
        self.max_pending = max_pending
        self.batch = batch
        self.stats = DispatchStats()
        # (stage, destination name or "") -> events dead-lettered; written by the delivery thread,
        # read by /metrics on the event loop, hence the lock (a new key resizes the dict).
        self._dead_letter_counts: dict[tuple[str, str], int] = {("ingest", ""): 0}
        if store is not None:
            self._dead_letter_counts[("store", "")] = 0
        for name in getattr(fanout, "sinks", ()):
            self._dead_letter_counts[("destination", name)] = 0
        self._counts_lock = threading.Lock()
        self._queue: "queue.Queue[_Job | None]" = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="wia-gateway-delivery", daemon=True)
        self._closed = False

    def start(self) -> None:
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, events: list[dict[str, Any]], rejected: list[Rejected] = ()) -> asyncio.Future:
        """A future resolved (on the running loop) with the Outcome of `events`.

        `rejected` (events refused at validation) are written to the dead letter by this thread,
        which owns it."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise Busy("the gateway is shutting down")
            if self._pending and self._pending + len(events) > self.max_pending:
                raise Busy(f"{self._pending} events waiting for delivery")
            self._pending += len(events)
        future = loop.create_future()
        self._queue.put(_Job(events, loop, future, list(rejected)))
        return future

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            size = len(job.events)
            stop = False
            while size < self.batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
                size += len(more.events)
            self._deliver(jobs)
            with self._lock:
                self._pending -= size
            if stop:
                return

    def _deliver(self, jobs: list[_Job]) -> None:
        try:
            self._deliver_group(jobs)
        except Exception as exc:  # noqa: BLE001 - a dead letter that cannot write, a destination that raised
            # This thread must live on: a dead delivery thread would leave every later request hanging.
            self.stats.failures += 1
            log.exception("delivery failed; %d request(s) answered with 503", len(jobs))
            for job in jobs:
                _resolve(job, exception=StoreUnavailable(f"delivery failed ({type(exc).__name__}; see the gateway log)"))

    def _deliver_group(self, jobs: list[_Job]) -> None:
        events = [e for job in jobs for e in job.events]
        self.stats.events += len(events)
        self.stats.groups += 1
        failed: dict[int, list[Rejected]] = {}
        not_stored: dict[int, Rejected] = {}
        held_already: set[int] = set()
        refused = [r for job in jobs for r in job.rejected]
        self._dead_letter(refused, {}, "ingest")
        if self.store is not None and events:
            try:
                report, stored = self.store.send_telling_stored(events)
            except Exception as exc:  # noqa: BLE001 - disk full, locked database, ...
                self.stats.store_errors += 1
                log.error("store failed; %d events refused with 503: %s", len(events), exc)
                for job in jobs:
                    _resolve(job, exception=StoreUnavailable(f"{type(exc).__name__}: {exc}"))
                return
            self.stats.stored += report.delivered
            self.stats.duplicates += report.duplicates
            self.stats.store_refused += len(report.failed)
            self._dead_letter(report.failed, failed, "store")
            # An event the store refused is answered `rejected`, so it goes nowhere else either.
            not_stored = {id(r.event): r for r in report.failed}
            kept = {id(e) for e in stored}
            held_already = {id(e) for e in events if id(e) not in kept and id(e) not in not_stored}
            # Destinations get what the store kept: a re-send or an older version handed on after a newer one would
            # be the last message of its id for a reader that keeps the latest (a compacted Kafka topic, an index
            # keyed by id): a closed incident open again. A re-send whose first delivery failed is in the dead letter.
            events = [e for e in events if id(e) in kept]
        if self.fanout is not None and events:
            self.stats.handed_to_destinations += len(events)
            report = self.fanout.send(events)     # FanOut reports a destination's exception per event
            self.stats.delivered += report.delivered
            self._dead_letter(report.failed, failed, "destination")
        if failed or refused:
            self.dead_letter.flush()
        for job in jobs:
            _resolve(job, result=Outcome([r for e in job.events for r in failed.get(id(e), ())],
                                         {id(e): not_stored[id(e)] for e in job.events if id(e) in not_stored},
                                         {id(e) for e in job.events if id(e) in held_already}))

    def _dead_letter(self, rejected: list[Rejected], failed: dict[int, list[Rejected]], stage: str) -> None:
        for r in rejected:
            self.dead_letter.put(r)
            self.stats.dead_lettered += 1
            key = (stage, (r.sink or "") if stage == "destination" else "")
            with self._counts_lock:
                self._dead_letter_counts[key] = self._dead_letter_counts.get(key, 0) + 1
            failed.setdefault(id(r.event), []).append(r)

    def dead_letter_counts(self) -> dict[tuple[str, str], int]:
        """A snapshot of events dead-lettered per (stage, destination name)."""
        with self._counts_lock:
            return dict(self._dead_letter_counts)

    def flush(self) -> None:
        """Flush buffering destinations and dead-letter what they report (called from this thread's owner at close)."""
        if self.fanout is not None:
            self._dead_letter(self.fanout.flush().failed, {}, "destination")
        self.dead_letter.flush()

    def close(self, timeout: float = 30.0) -> None:
        """Deliver everything queued, flush, close every sink and the dead letter."""
        with self._lock:
            self._closed = True
        self._queue.put(None)
        deadline = time.monotonic() + timeout
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.error("delivery thread still busy after %.0fs at shutdown", timeout)
        if self.fanout is not None:
            try:
                report = self.fanout.close()
                if report is not None:
                    self._dead_letter(getattr(report, "failed", []), {}, "destination")
            except Exception:  # noqa: BLE001
                log.exception("closing the destinations failed")
        if self.store is not None:
            self.store.close()
        self.dead_letter.close()


def _resolve(job: _Job, *, result: Any = None, exception: BaseException | None = None) -> None:
    def settle() -> None:
        if job.future.done():
            return
        if exception is not None:
            job.future.set_exception(exception)
        else:
            job.future.set_result(result)
    try:
        job.loop.call_soon_threadsafe(settle)
    except RuntimeError:
        pass  # the loop is gone (shutdown): nobody is waiting for this answer
