"""The Lambda entry point: `wia_lambda.handler.handler(event, context)`.

Detects the trigger from the event's shape, runs its records through the relay (validate ->
deliver to the configured destinations -> dead-letter what cannot be delivered) and answers in the
trigger's own terms: a partial batch response for SQS and Kinesis, an exception for asynchronous
sources that must retry, an HTTP response for Function URL / API Gateway.

Importing this module loads only the standard library and the JSON logger: the core, the
connectors and boto3 are imported on the first invocation, and only the connectors the
configuration names (a cold start pays only for what is deployed).
"""
from __future__ import annotations

import os
import time
from contextvars import ContextVar
from typing import Any, Callable

from .logs import get_logger

log = get_logger()
_runtime: Any = None

#: Seconds kept free at the end of an invocation (`WIA_TIME_RESERVE`) for the delivery already under
#: way and the dead-letter writes. A record not started when less than this is left is reported back
#: for retry; otherwise a slow or hanging destination lets Lambda kill the function mid-batch, and
#: the platform then redelivers the whole batch, delivered records included, until it is moved to
#: the redrive queue. At most half of the invocation's time is reserved, so a batch always progresses.
ENV_TIME_RESERVE = "WIA_TIME_RESERVE"
DEFAULT_TIME_RESERVE = 90.0
#: the running invocation's seconds left before its time reserve (`time_left`); None without a Lambda context
_time_left: ContextVar[Callable[[], float] | None] = ContextVar("wia_time_left", default=None)
#: Seconds kept after the last AWS call of the failure path (a dead-letter write, the resume point): the handler
#: still logs and answers, and a fresh client is built for a call (`settings.Clients.fitted`).
WRITE_MARGIN = 1.0
#: the running invocation's seconds left before its end less WRITE_MARGIN (`time_to_deadline`)
_deadline_left: ContextVar[Callable[[], float] | None] = ContextVar("wia_deadline_left", default=None)


class _Runtime:
    """Per-container state: the relay (sinks + dead letter) and an S3 opener, rebuilt after the secrets TTL."""

    def __init__(self) -> None:
        from . import settings
        self.settings = settings.build_runtime(os.environ)
        self.relay = self.settings.relay

    def open_object(self, bucket: str, key: str) -> Any:
        from .payloads import stream_object

        def items() -> Any:
            # the client is chosen when the object is read: its timeouts fit the time left then
            yield from stream_object(self.settings.clients.s3_reader(time_left()), bucket, key)
        return items()


# A sink's permission-propagation windows (connectors/delivery/permission_window.py: Security Hub, SCC, Sentinel)
# are carried from a runtime to the one rebuilt after the secrets TTL. Each sink starts its windows anew, and the
# runtime is rebuilt every WIA_SECRETS_TTL (300 s): a Security Hub permission that never came was retried for ever
# (its window is 5 minutes), each batch spending its whole retry budget, never failing at once.


def runtime() -> _Runtime:
    global _runtime
    from .settings import secrets_ttl
    windows: dict[str, dict[str, float]] = {}
    if _runtime is not None and time.monotonic() - _runtime.settings.created > secrets_ttl():
        try:
            windows = _windows_of(_runtime.settings.sink)
            _runtime.settings.close()
        finally:
            _runtime = None
    if _runtime is None:
        _runtime = _Runtime()
        _carry_windows(_runtime.settings.sink, windows)
        log.info("configured", extra={"destinations": _runtime.settings.destinations,
                                      "dead_letter": type(_runtime.settings.dead_letter).__name__})
    return _runtime


def _sinks_of(sink: Any) -> list[Any]:
    """The destination sinks of the runtime's sink (a FanOut's, or the one)."""
    inner = getattr(sink, "sinks", None)
    return list(inner.values()) if isinstance(inner, dict) else [sink]


def _permission_windows(sink: Any) -> dict[str, Any]:
    """A destination sink's PermissionWindow attributes, by attribute name."""
    from wia_security.connectors.delivery.permission_window import PermissionWindow
    return {name: value for name, value in vars(sink).items() if isinstance(value, PermissionWindow)}


def _windows_of(sink: Any) -> dict[str, dict[str, float]]:
    """When each open propagation window of each destination sink opened, by the sink's own name (its product,
    Region, account: a destination changed by a new configuration is another name and starts its own)."""
    found = {}
    for each in _sinks_of(sink):
        opened = {name: w.since for name, w in _permission_windows(each).items() if w.since is not None}
        if opened and isinstance(getattr(each, "name", None), str):
            found[each.name] = opened
    return found


def _carry_windows(sink: Any, windows: dict[str, dict[str, float]]) -> None:
    for each in _sinks_of(sink):
        carried = windows.get(getattr(each, "name", None), {})
        for name, window in _permission_windows(each).items():
            if name in carried:
                window.since = carried[name]


def reset() -> None:
    """Drop the cached runtime (closing its sinks), e.g. after the configuration changed."""
    global _runtime
    if _runtime is not None:
        _runtime.settings.close()
    _runtime = None


def handler(event: Any, context: Any = None) -> Any:
    token = _time_left.set(_left_before_reserve(context))
    deadline = _deadline_left.set(_left_before_end(context))
    try:
        return _handle(event, context)
    finally:
        _deadline_left.reset(deadline)
        _time_left.reset(token)


def _handle(event: Any, context: Any) -> Any:
    from .triggers import detect, load

    started = time.monotonic()
    request_id = getattr(context, "aws_request_id", None)
    try:
        name = detect(event)
    except ValueError as exc:
        log.error(str(exc), extra={"request_id": request_id})
        raise
    trigger = load(name)
    if name == "http":
        return _http(trigger, event, request_id, started, context)
    hold_back = getattr(trigger, "hold_back", None)   # which records the platform delivers again
    # one runtime for the whole invocation: one rebuilt between two of these calls (the secrets TTL passing) closed
    # the sinks the relay was about to use, and every event met "send() after close()", a permanent failure
    current = runtime()
    result = current.relay.process(in_time(trigger.records(event, current), context),
                                   hold_back=hold_back(event, current) if hold_back is not None else None)
    settle = getattr(trigger, "settle", None)        # the trigger's last delivery: dead-letter, not report
    given_up = settle(event, result, current) if settle is not None else 0
    if given_up:
        log.warning("gave up on records on their last delivery: dead-lettered with the reason",
                    extra={"trigger": name, "request_id": request_id, "records": given_up})
    _log_result(name, result, request_id, started)
    return trigger.respond(event, result)


def time_reserve(environ: Any = os.environ) -> float:
    try:
        reserve = float(environ.get(ENV_TIME_RESERVE, DEFAULT_TIME_RESERVE))
    except ValueError:
        return DEFAULT_TIME_RESERVE
    return reserve if reserve >= 0 else DEFAULT_TIME_RESERVE


def time_left() -> float | None:
    """Seconds the running invocation may still spend before its time reserve (as `in_time` keeps it:
    `WIA_TIME_RESERVE`, at most half the invocation), read from its Lambda context now; None without
    one (no limit). For work inside one record that can wait long (stream_recovery's throttled reads)."""
    left = _time_left.get()
    return None if left is None else left()


def time_to_deadline() -> float | None:
    """Seconds the running invocation may still spend on a call that must end before Lambda stops it (a dead-letter
    write, the resume point's SendMessage, which run inside the time reserve): its time left less WRITE_MARGIN;
    None without a Lambda context (no limit)."""
    left = _deadline_left.get()
    return None if left is None else left()


def _left_before_end(context: Any) -> Callable[[], float] | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return lambda: remaining() / 1000 - WRITE_MARGIN


def _left_before_reserve(context: Any) -> Callable[[], float] | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    reserve = min(time_reserve(), remaining() / 2000)
    return lambda: remaining() / 1000 - reserve


def in_time(records: Any, context: Any) -> Any:
    """`records` whose values stop (OutOfTime, so the relay reports the record for retry) once the
    invocation has less than the time reserve left; as they are without a Lambda context. A record with
    `keeps_time` checks `time_left()` itself (it knows where it may stop) and is passed as it is."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        yield from records
        return
    from wia_security.connectors.relay import SourceRecord, until
    left = remaining() / 1000
    stop_at = time.monotonic() + left - min(time_reserve(), left / 2)
    why = f"less than {time_reserve():g}s of the invocation was left ({ENV_TIME_RESERVE}); the record is retried"
    for record in records:
        # a record that stops itself between two values (stream_recovery.Part) is passed as it is
        yield record if getattr(record, "keeps_time", False) else SourceRecord(record.id, until(record.items, stop_at, why))


def _http(trigger: Any, event: Any, request_id: str | None, started: float, context: Any = None) -> Any:
    from wia_security.errors import ConfigError
    try:
        current = runtime()
        result = current.relay.process(in_time(trigger.records(event, current), context))
    except trigger.HttpError as exc:
        return trigger.response(exc.status, {"error": str(exc)})
    except ConfigError as exc:
        log.error("configuration error", extra={"request_id": request_id, "error": str(exc)})
        return trigger.response(500, {"error": "the forwarder is misconfigured; see its logs"})
    _log_result("http", result, request_id, started)
    return trigger.respond(event, result)


def _log_result(trigger: str, result: Any, request_id: str | None, started: float) -> None:
    fields = {"trigger": trigger, "request_id": request_id, **result.summary(),
              "retry_ids": result.retry[:20], "ms": round((time.monotonic() - started) * 1000, 1)}
    (log.warning if result.retry else log.info)("batch processed", extra=fields)
