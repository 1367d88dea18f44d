"""The sink protocol every destination follows, and the report a delivery returns.

A sink takes validated WIA event dicts: `send(events) -> DeliveryReport`, `flush()`, `close()`,
and is a context manager (closing flushes). A sink that stores events as JSON text may also offer
`send_with_bodies(events, bodies)`, where `bodies[i]` is the JSON text `events[i]` arrived as (or
None): the forward pipeline then passes the input lines of unchanged events, saving a re-serialization. Nothing is ever dropped: an event a sink cannot
deliver comes back in `report.failed` with the reason, for the dead-letter output.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from wia_security.errors import ConversionError
from wia_security.redact import redact, redact_value

log = logging.getLogger("wia_security.delivery")


@dataclass(slots=True)
class Rejected:
    """An event that was not delivered, and why. `event` is the parsed value when there is one;
    `raw` the original bytes when the input did not even parse."""

    reason: str
    event: Any = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    where: str | None = None          # "file:line" of the input
    raw: bytes | None = None
    sink: str | None = None
    retryable: bool = False

    def __post_init__(self) -> None:
        # Reasons may quote a server's answer, which may echo a credential (see wia_security.redact).
        self.reason = redact(self.reason)
        self.errors = redact_value(self.errors)


@dataclass(slots=True)
class DeliveryReport:
    """What a send or flush achieved. `delivered + duplicates + len(failed)` = events handed over
    (for buffering sinks, counted when the buffer is written)."""

    sink: str = ""
    delivered: int = 0
    duplicates: int = 0               # already present at an idempotent destination
    failed: list[Rejected] = field(default_factory=list)

    def merge(self, other: "DeliveryReport") -> "DeliveryReport":
        self.delivered += other.delivered
        self.duplicates += other.duplicates
        self.failed.extend(other.failed)
        return self

    @property
    def ok(self) -> bool:
        return not self.failed


@runtime_checkable
class Sink(Protocol):
    """A destination for WIA events."""

    name: str

    def send(self, events: Sequence[dict[str, Any]]) -> DeliveryReport: ...

    def flush(self) -> DeliveryReport: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Sink": ...

    def __exit__(self, *exc: object) -> None: ...


class BaseSink:
    """Context-manager plumbing and a no-op flush for sinks that write synchronously."""

    name: str = "sink"

    def send(self, events: Sequence[dict[str, Any]]) -> DeliveryReport:  # pragma: no cover - abstract
        raise NotImplementedError

    def flush(self) -> DeliveryReport:
        return DeliveryReport(self.name)

    def close(self) -> None:
        pass

    def __enter__(self) -> "BaseSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        # Never include credentials: subclasses keep secrets out of `name`.
        return f"<{type(self).__name__} {self.name}>"


_validator: Any = None


def unencodable(sink: str, event: Any, exc: Exception, what: str = "cannot encode event") -> Rejected:
    """The rejection of an event a sink could not encode. Converters raise ConversionError or
    ValueError with a reason; anything else means the event is not what the schemas allow (sinks take
    validated events, but library callers may pass any dict), so the reason names the first schema
    error and its JSON path. A valid event that still fails is a bug here: logged with its traceback."""
    if isinstance(exc, (ConversionError, ValueError)):
        return Rejected(f"{what} for {sink}: {exc}", event=event, sink=sink)
    global _validator
    if _validator is None:
        from wia_security.validation import Validator
        _validator = Validator(warnings=False)
    result = _validator.validate(event)
    if not result.valid:
        first = result.errors[0]
        return Rejected(f"{what} for {sink}: invalid WIA event: {first.path or '/'}: {first.message}", event=event,
                        errors=[e.to_dict() for e in result.errors], sink=sink)
    log.error("%s: %s: %s", sink, what, type(exc).__name__, exc_info=exc)
    return Rejected(f"{what} for {sink}: {type(exc).__name__}: {exc}", event=event, sink=sink)
