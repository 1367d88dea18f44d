"""`FanOut`: one sink that delivers every event to several named destinations, in parallel.

Each destination gets each event exactly once from the fan-out (its own retries aside); a failure at
one destination comes back as a Rejected whose `sink` is that destination's name, so the dead letter
says where it failed, and the other destinations are not re-sent anything. `stats` keeps per-
destination totals for the summary. Sinks must not mutate the event dicts: they are shared.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..base import BaseSink, DeliveryReport, Rejected

log = logging.getLogger("wia_security.delivery")


@dataclass
class DestinationStats:
    delivered: int = 0
    duplicates: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "duplicates": self.duplicates, "failed": self.failed,
                "reasons": dict(self.reasons)}


class FanOut(BaseSink):
    """Delivers to every sink in `sinks` ({destination name: sink}). The merged report counts
    deliveries per (event, destination): 2 destinations x 10 events = 20 when all succeed."""

    def __init__(self, sinks: Mapping[str, Any]) -> None:
        if not sinks:
            raise ValueError("FanOut needs at least one destination")
        self.sinks = dict(sinks)
        self.name = "fanout(" + ", ".join(self.sinks) + ")"
        self.stats = {name: DestinationStats() for name in self.sinks}
        self._pool = ThreadPoolExecutor(max_workers=len(self.sinks), thread_name_prefix="fanout") \
            if len(self.sinks) > 1 else None

    def send(self, events: Sequence[dict[str, Any]]) -> DeliveryReport:
        return self._each(lambda sink: sink.send(events), events)

    def flush(self) -> DeliveryReport:
        return self._each(lambda sink: sink.flush(), ())

    def close(self) -> DeliveryReport:  # type: ignore[override]
        try:   # closing is the end: a destination that raises is logged, the others' failures still reported
            return self._run({name: (lambda sink: sink.close(), ()) for name in self.sinks}, raise_errors=False)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def __exit__(self, *exc: object) -> None:
        # A single BatchingSink left by a `with` logs the failures its close settled; through a fan-out they
        # came back in close()'s report, which BaseSink.__exit__ dropped without a word.
        report = self.close()
        if report.failed:
            log.error("%s: %d event(s) failed while closing and no caller collected them; first: %s: %s",
                      self.name, len(report.failed), report.failed[0].sink, report.failed[0].reason)

    def send_each(self, batches: Mapping[str, Sequence[dict[str, Any]]]) -> DeliveryReport:
        """Delivers each destination only its own events (`{destination name: events}`; one not named, or
        with none, gets nothing): a replay sends an event only to the destination that refused it."""
        return self._run({name: (lambda sink, b=batch: sink.send(b), batch) for name, batch in batches.items() if batch})

    def _each(self, call: Callable[[Any], Any], events: Sequence[dict[str, Any]]) -> DeliveryReport:
        return self._run({name: (call, events) for name in self.sinks})

    def _run(self, plan: Mapping[str, tuple[Callable[[Any], Any], Sequence[dict[str, Any]]]], *,
             raise_errors: bool = True) -> DeliveryReport:
        """Runs each destination's (call, events) of `plan`, in parallel when there are several, and
        accounts the reports per destination. A call without events (flush) that raised raises once all
        are done (`raise_errors`), else is logged."""
        names = list(plan)

        def one(name: str) -> DeliveryReport | BaseException | None:
            call, events = plan[name]
            if not events:                        # flush/close: no events of this call to fail, so it raises
                try:
                    return call(self.sinks[name])
                except Exception as exc:  # noqa: BLE001 - raised below, once every destination has had its turn
                    return exc
            return _guard(call, self.sinks[name], events)

        results = list(self._pool.map(one, names)) if self._pool is not None and len(names) > 1 else [one(n) for n in names]
        merged = DeliveryReport(self.name)
        raised: list[tuple[str, BaseException]] = []
        for name, report in zip(names, results):
            if isinstance(report, BaseException):
                raised.append((name, report))
                continue
            if report is None:                    # close() of a sink that returns nothing
                continue
            stats = self.stats[name]
            stats.delivered += report.delivered
            stats.duplicates += report.duplicates
            stats.failed += len(report.failed)
            for rejected in report.failed:
                rejected.sink = name
                key = rejected.reason.split(": ", 1)[0]
                stats.reasons[key] = stats.reasons.get(key, 0) + 1
            merged.merge(report)
        # A flush that raised (a file sink's fsync) has not made its destination's events durable: the run
        # must stop, as it does with that sink alone, rather than commit a source position past them.
        for name, exc in raised[1:] if raise_errors else raised:
            log.error("%s: destination %s failed: %s: %s", self.name, name, type(exc).__name__, exc)
        if raised and raise_errors:
            raise raised[0][1]
        return merged


def _guard(call: Callable[[Any], Any], sink: Any, events: Sequence[dict[str, Any]]) -> DeliveryReport | None:
    """A sink that raises instead of reporting fails the events of this call at that destination
    (they go to the dead letter; at-least-once may then duplicate what it had sent)."""
    try:
        return call(sink)
    except Exception as exc:  # noqa: BLE001 - contain one destination's failure
        reason = f"destination error: {type(exc).__name__}: {exc}"
        return DeliveryReport(getattr(sink, "name", "sink"),
                              failed=[Rejected(reason, event=e, sink=getattr(sink, "name", None)) for e in events])
