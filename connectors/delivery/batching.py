"""`BatchingSink`: buffer -> size/time-bounded batches -> `post()` with retries -> per-event outcomes.

A connector subclasses it, declares its product limits as class attributes and writes two methods:
`encode(event) -> bytes` (one event's wire form) and `post(batch) -> outcomes` (one request). The
machinery does the rest: batching by count, bytes and time, full-jitter backoff that honours
`Retry-After`, per-item retries, and reports in which every event handed over is delivered, a
duplicate, or failed with a reason (for the dead letter). It never drops an event.

Pipelining: `send` hands each full batch to one worker thread and goes on encoding the next while
it is in flight (at most one request in flight, so batches still go out in order). What settles
after `send` returns is in the report of a later `send`, or of `flush`/`close`, which wait for it.

Thread-safety: one re-entrant lock guards the buffer, so `send`, `flush`, `close` and the max-wait
timer thread never post concurrently (a new batch waits for the one in flight). A report produced by
the timer is kept and returned by the next `send`/`flush`/`close` call. Reports are per sink, not per
caller: with several threads sending, one thread's call may return another's outcomes (nothing is lost;
docs/connectors/delivery.md says why tagging items by thread would not do).
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar, Sequence

from wia_security.errors import DeliveryError
from wia_security.redact import redact, redact_value

from ..base import BaseSink, DeliveryReport, Rejected, unencodable
from .policy import DeliveryPolicy

log = logging.getLogger("wia_security.delivery")

DELIVERED = "delivered"
DUPLICATE = "duplicate"
RETRY = "retry"
FAILED = "failed"

#: While a batch is in flight, the encoding loop lets the worker have the interpreter lock every this
#: many events. Without it the worker waits up to `sys.getswitchinterval()` (5 ms) each time its socket
#: call returns, several times a request: at 20 ms per request the bulk sink reached 0.72 of its floor
#: instead of 0.84 (benchmarks/bench_bulk.py --latency-ms 20).
YIELD_EVERY = 16


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one event of a posted batch. Build with the helpers below."""

    status: str                          # delivered | duplicate | retry | failed
    reason: str = ""
    retry_after: float | None = None     # seconds the server asked to wait (retry only)
    details: Any = None                  # product's error document, kept in the dead-letter record

    @staticmethod
    def delivered() -> "Outcome":
        return _DELIVERED

    @staticmethod
    def duplicate() -> "Outcome":
        return _DUPLICATE

    @staticmethod
    def retry(reason: str, retry_after: float | None = None, details: Any = None) -> "Outcome":
        return Outcome(RETRY, redact(reason), retry_after, redact_value(details))

    @staticmethod
    def failed(reason: str, details: Any = None) -> "Outcome":
        return Outcome(FAILED, redact(reason), None, redact_value(details))

    @staticmethod
    def from_error(error: DeliveryError) -> "Outcome":
        if error.retryable:
            return Outcome(RETRY, error.reason, error.retry_after, error.details)
        return Outcome(FAILED, error.reason, None, error.details)


_DELIVERED = Outcome(DELIVERED)
_DUPLICATE = Outcome(DUPLICATE)


@dataclass(slots=True)
class BatchItem:
    """One buffered event and its encoded bytes."""

    event: dict[str, Any]
    payload: bytes
    attempts: int = 0


@dataclass(slots=True)
class Batch:
    """The events of one request. `body()` joins the payloads with the sink's separator/prefix/suffix."""

    items: list[BatchItem]
    attempt: int                          # 1 for the first try of these items together
    separator: bytes = b"\n"
    prefix: bytes = b""
    suffix: bytes = b""
    context: dict[str, Any] = field(default_factory=dict)   # free for the connector (e.g. an ack id)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [i.event for i in self.items]

    @property
    def payloads(self) -> list[bytes]:
        return [i.payload for i in self.items]

    def body(self) -> bytes:
        return self.prefix + self.separator.join(i.payload for i in self.items) + self.suffix


def classify_exception(exc: BaseException) -> DeliveryError:
    """A transport exception as a DeliveryError: timeouts and connection failures are retryable;
    TLS certificate problems and anything else are not (retrying will not fix them)."""
    if isinstance(exc, DeliveryError):
        return exc
    name = type(exc).__name__
    text = f"{name}: {exc}" if str(exc) else name
    lowered = text.lower()
    if "ssl" in lowered and ("certificate" in lowered or "verify" in lowered):
        return DeliveryError(f"TLS verification failed: {text}", retryable=False)
    if isinstance(exc, (TimeoutError, socket.timeout, ConnectionError)):
        return DeliveryError(f"network error: {text}", retryable=True)
    # requests/urllib3/httpx exceptions: classified by name so this module needs none of them.
    mro = {k.__name__ for k in type(exc).__mro__}
    if mro & {"Timeout", "ConnectTimeout", "ReadTimeout", "TimeoutException", "ConnectionError",
              "ChunkedEncodingError", "ProtocolError", "RemoteDisconnected", "NetworkError",
              "TransportError", "IncompleteRead", "ConnectError", "ReadError", "WriteError",
              # urllib3 (its own TimeoutError), azure-core, botocore
              "TimeoutError", "NewConnectionError", "MaxRetryError", "ServiceRequestError",
              "ServiceResponseError", "HTTPClientError"}:
        return DeliveryError(f"network error: {text}", retryable=True)
    if isinstance(exc, OSError):
        return DeliveryError(f"I/O error: {text}", retryable=True)
    return DeliveryError(f"unexpected error: {text}", retryable=False)


class BatchingSink(BaseSink):
    """Base of every sink that posts batches over a network.

    Declare (class attributes; each a named, tested constant in the connector module):
      - `max_batch_events`: the product's hard cap on events per request (None: no cap)
      - `max_batch_bytes`: the product's hard cap on one request body, in bytes (None: no cap)
      - `item_separator`, `body_prefix`, `body_suffix`: how payloads are joined into a body
        (HEC: b"", b"", b""; NDJSON: b"\\n"; a JSON array: b",", b"[", b"]")
    Implement:
      - `encode(event) -> bytes`; raise ValueError/ConversionError for an event that cannot be
        encoded (it fails alone, permanently)
      - `post(batch) -> Sequence[Outcome] | None`: one request. Return one Outcome per item (same
        order) or None when all were delivered; raise DeliveryError for a whole-batch failure
        (`retryable`, `retry_after`). Other exceptions are classified by `classify_exception`.
        It runs on the worker thread while `encode` runs on the caller's (see `pipelined`).
      - optionally `close_transport()`.
    """

    max_batch_events: ClassVar[int | None] = None
    max_batch_bytes: ClassVar[int | None] = None
    item_separator: ClassVar[bytes] = b"\n"
    body_prefix: ClassVar[bytes] = b""
    body_suffix: ClassVar[bytes] = b""
    #: Post full batches from a worker while the next one is encoded. Off for sinks whose callers read
    #: what a post learned (incident ids, playbook runs) right after `send`.
    pipelined: ClassVar[bool] = True

    def __init__(self, *, name: str, delivery: DeliveryPolicy | None = None,
                 dead_letter: Any = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.policy = (delivery or DeliveryPolicy()).capped(max_events=self.max_batch_events,
                                                            max_bytes=self.max_batch_bytes)
        self.dead_letter = dead_letter       # only for reports nobody can collect (see close())
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._buffer: list[BatchItem] = []
        self._buffer_bytes = 0
        self._oldest: float | None = None
        self._unclaimed = DeliveryReport(name)
        self._closed = False
        self._timer: threading.Thread | None = None
        self._in_flight: Future[DeliveryReport] | None = None
        self._worker: ThreadPoolExecutor | None = None
        self._overhead = len(self.body_prefix) + len(self.body_suffix)

    # -- to implement ----------------------------------------------------------------------------
    def encode(self, event: dict[str, Any]) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def post(self, batch: Batch) -> Sequence[Outcome] | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close_transport(self) -> None:
        pass

    def lower_byte_limit(self, body_size: int, reason: str) -> None:
        """Batch below `body_size` from now on: a server or proxy refused a body that size (413)."""
        new = max(1, body_size - 1)
        if new < self.policy.max_bytes:
            log.warning("%s: a %d-byte request was refused (%s); batching to %d bytes from now on",
                        self.name, body_size, reason, new)
            self.policy = replace(self.policy, max_bytes=new)

    # -- the sink protocol ------------------------------------------------------------------------
    def send(self, events: Sequence[dict[str, Any]]) -> DeliveryReport:
        """Buffer events; post every batch that fills (the last one may still be in flight on return).
        Returns what was settled by now and not reported before; `flush()` settles the rest."""
        report = DeliveryReport(self.name)
        with self._lock:
            if self._closed:
                raise DeliveryError("send() after close()", sink=self.name)
            for n, event in enumerate(events):
                # a finished batch needs no lock handoff: each yield costs ~80 us of sleep here
                if not n % YIELD_EVERY and self._in_flight is not None and not self._in_flight.done():
                    yield_gil()
                item = self._encode(event, report)
                if item is None:
                    continue
                size = len(item.payload)
                if self._buffer and (len(self._buffer) >= self.policy.max_events
                                     or self._body_size(len(self._buffer) + 1, self._buffer_bytes + size) > self.policy.max_bytes):
                    report.merge(self._send_buffer(wait=False))
                self._buffer.append(item)
                self._buffer_bytes += size
                if self._oldest is None:
                    self._oldest = self._clock()
                    self._start_timer()
                    self._wake.notify_all()
            if len(self._buffer) >= self.policy.max_events:
                report.merge(self._send_buffer(wait=False))
            return self._claim(report)

    def flush(self) -> DeliveryReport:
        """Post everything buffered (retrying as the policy allows), wait for the batch in flight, and
        return the settled report."""
        with self._lock:
            report = self._send_buffer(wait=True) if self._buffer else self._settle_in_flight()
            return self._claim(report)

    def close(self) -> DeliveryReport:  # type: ignore[override]
        """Flush, stop the timer, close the transport. Returns the final report. Callers that account
        reports should `flush()` first; failures in a report returned only here (for instance when
        the sink is left by a `with` block) go to `dead_letter` when the sink has one, else to the log."""
        with self._lock:
            if self._closed:
                return DeliveryReport(self.name)
            report = self.flush()
            self._closed = True
            self._wake.notify_all()
        timer = self._timer
        if timer is not None and timer is not threading.current_thread():
            timer.join(timeout=5)
        if self._worker is not None:
            self._worker.shutdown(wait=True)
        self.close_transport()
        return report

    def __exit__(self, *exc: object) -> None:
        report = self.close()
        if report.failed:
            if self.dead_letter is not None:
                for rejected in report.failed:
                    self.dead_letter.put(rejected)
            else:
                log.error("%s: %d event(s) failed while closing and no caller collected them; "
                          "first reason: %s", self.name, len(report.failed), report.failed[0].reason)

    # -- machinery --------------------------------------------------------------------------------
    def _encode(self, event: dict[str, Any], report: DeliveryReport) -> BatchItem | None:
        try:
            payload = self.encode(event)
        except Exception as exc:  # noqa: BLE001 - one bad event fails alone, with its reason
            report.failed.append(unencodable(self.name, event, exc))
            return None
        if self._body_size(1, len(payload)) > self.policy.max_bytes:
            report.failed.append(Rejected(
                f"event is {len(payload):,} bytes encoded, over this destination's {self.policy.max_bytes:,}-byte "
                f"request limit", event=event, sink=self.name))
            return None
        return BatchItem(event, payload)

    def _body_size(self, count: int, payload_bytes: int) -> int:
        return self._overhead + payload_bytes + len(self.item_separator) * max(0, count - 1)

    def _send_buffer(self, *, wait: bool) -> DeliveryReport:
        """Post the buffer: in the worker when not `wait` (returning what the batch before it settled),
        else here, after the batch in flight."""
        items, self._buffer, self._buffer_bytes, self._oldest = self._buffer, [], 0, None
        report = self._settle_in_flight()
        if wait or not self.pipelined:
            return report.merge(self.deliver(items))
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"deliver {self.name}")
        self._in_flight = self._worker.submit(self.deliver, items)
        return report

    def _settle_in_flight(self) -> DeliveryReport:
        future, self._in_flight = self._in_flight, None
        return future.result() if future is not None else DeliveryReport(self.name)

    def _claim(self, report: DeliveryReport) -> DeliveryReport:
        if self._unclaimed.delivered or self._unclaimed.duplicates or self._unclaimed.failed:
            report = self._unclaimed.merge(report)
            self._unclaimed = DeliveryReport(self.name)
        return report

    def deliver(self, items: list[BatchItem]) -> DeliveryReport:
        """Post `items` (which fit one request) until each is settled or the retry budget is spent."""
        report = DeliveryReport(self.name)
        policy = self.policy
        started = self._clock()
        pending = items
        attempt = 0
        while pending:
            attempt += 1
            for item in pending:
                item.attempts += 1
            batch = Batch(pending, attempt, self.item_separator, self.body_prefix, self.body_suffix)
            outcomes = self._post(batch)
            retry: list[tuple[BatchItem, Outcome]] = []
            for item, outcome in zip(pending, outcomes):
                if outcome.status == DELIVERED:
                    report.delivered += 1
                elif outcome.status == DUPLICATE:
                    report.duplicates += 1
                elif outcome.status == RETRY:
                    retry.append((item, outcome))
                else:
                    report.failed.append(self._rejected(item, outcome.reason, outcome.details, retryable=False))
            if not retry:
                break
            elapsed = self._clock() - started
            retry_after = max((o.retry_after for _, o in retry if o.retry_after is not None), default=None)
            delay = policy.delay(attempt, retry_after)
            budget_left = policy.max_elapsed - elapsed if policy.max_elapsed else float("inf")
            if attempt >= policy.max_attempts or delay > budget_left:
                why = (f"{policy.max_attempts} attempt(s) made" if attempt >= policy.max_attempts
                       else f"next retry in {delay:.1f}s would exceed the {policy.max_elapsed:g}s budget")
                for item, outcome in retry:
                    report.failed.append(self._rejected(
                        item, f"gave up after {item.attempts} attempt(s) ({why}): {outcome.reason}",
                        outcome.details, retryable=True))
                break
            log.info("%s: %d event(s) to retry in %.2fs (attempt %d): %s", self.name, len(retry), delay,
                     attempt, retry[0][1].reason)
            self._sleep(delay)
            pending = [item for item, _ in retry]
        return report

    def _post(self, batch: Batch) -> list[Outcome]:
        try:
            outcomes = self.post(batch)
        except Exception as exc:  # noqa: BLE001 - every failure must become an outcome, never a loss
            error = classify_exception(exc)
            return [Outcome.from_error(error)] * len(batch)
        if outcomes is None:
            return [_DELIVERED] * len(batch)
        outcomes = list(outcomes)
        if len(outcomes) != len(batch):
            reason = f"connector bug: {len(outcomes)} outcome(s) for {len(batch)} event(s)"
            log.error("%s: %s", self.name, reason)
            return [Outcome.failed(reason)] * len(batch)
        return outcomes

    def _rejected(self, item: BatchItem, reason: str, details: Any, *, retryable: bool) -> Rejected:
        errors = [{"path": "", "code": "delivery", "message": reason}]
        if details is not None:
            errors[0]["details"] = details
        return Rejected(reason, event=item.event, errors=errors, sink=self.name, retryable=retryable)

    # -- max-wait timer ---------------------------------------------------------------------------
    def _start_timer(self) -> None:
        if self.policy.max_wait <= 0 or self._timer is not None:
            return
        self._timer = threading.Thread(target=self._timer_loop, name=f"flush-timer {self.name}", daemon=True)
        self._timer.start()

    def _timer_loop(self) -> None:
        with self._lock:
            while not self._closed:
                if self._oldest is None:
                    self._wake.wait()
                    continue
                due = self._oldest + self.policy.max_wait - self._clock()
                if due > 0:
                    self._wake.wait(timeout=due)
                    continue
                try:
                    self._unclaimed.merge(self._send_buffer(wait=True))
                except Exception:  # noqa: BLE001 - keep the timer alive; deliver() already settles items
                    log.exception("%s: timer flush failed", self.name)


def yield_gil() -> None:
    """Release the interpreter lock for a moment, so that a thread waiting for it takes it now."""
    time.sleep(0)
