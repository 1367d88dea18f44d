"""WIA Security for Google Cloud Functions (2nd gen / Cloud Run functions): Pub/Sub CloudEvents and HTTP
-> Security Command Center findings.

- `pubsub_to_scc` (CloudEvent `google.cloud.pubsub.topic.v1.messagePublished`): the message data is
  a WIA event, a JSON array or NDJSON (gzip allowed). Rejected values are dead-lettered; a retryable
  failure raises, so with retries enabled on the trigger Pub/Sub redelivers the message (and, after
  the subscription's maximum delivery attempts, moves it to its dead-letter topic: nothing is lost).
  With a dead-letter policy Pub/Sub says which attempt this is (`deliveryAttempt`); given the policy's
  maximum (`WIA_PUBSUB_MAX_DELIVERY_ATTEMPTS`), a message still failing on its last attempt is
  dead-lettered here with the reason and acknowledged (the dead-letter topic would get it without
  one), and before that the message's rejections are held back, so a redelivery never logs the same
  dead letter twice.
- `http_to_scc` (POST): answered per value like the Lambda URL: 200 with what was delivered and
  rejected, 503 + Retry-After naming the values to send again, 405 for other methods.

Dead letters are structured log entries (severity ERROR, `wia_dead_letter`: reason, where, event) in
Cloud Logging; route them with a log sink (docs/cloud/gcp.md). One too big for a LogEntry (256 KB) is
written in parts (`part`, `parts`, `record_part`: its JSON text, joined in part order). Logs are JSON lines on stdout, which
Cloud Logging reads as structured entries.

Settings (environment):
  WIA_SCC_SOURCE     organizations/<org>/sources/<source id>
  WIA_SCC_LOCATION   default global
  WIA_SCC_RESOURCE   full resource name for events without a GCP project (optional; default the organization)
  WIA_CONFIG         optional: a destinations config (TOML) instead of the above
  WIA_PUBSUB_MAX_DELIVERY_ATTEMPTS   the subscription's dead-letter policy maximum (5-100), optional
  WIA_TIME_BUDGET    seconds a request may spend starting deliveries (default 120; see DEFAULT_TIME_BUDGET)
Credentials: the function's service account through Application Default Credentials.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# The deployment zip carries wia_security/ beside this file and its libraries in vendor/.
for path in (HERE / "vendor", HERE):
    if path.is_dir() and str(path) not in sys.path:
        sys.path.insert(0, str(path))

import functions_framework  # noqa: E402

_runtime: dict[str, Any] = {}
#: functions-framework serves requests on gunicorn threads, and with `--concurrency` above 1 an instance takes
#: several at once, all sharing its one sink (which batches: one request's flush() posted and reported what another
#: had buffered) and, before, one relay (whose hold-back one request set for another: a last attempt's invalid event
#: was held back and lost). One request at a time uses the sink; each has its own relay.
_SINK_IN_USE = threading.Lock()
_OPENING = threading.Lock()              # two requests of a cold instance open one sink, not two
#: Seconds a request may spend starting work (`WIA_TIME_BUDGET`), waiting for the sink included: the deploy's
#: --timeout=540 less the worst case of the delivery already under way (one chunk of CHUNK_EVENTS findings against
#: an SCC that hangs: ceil(100 / 8 RPC workers) x the 30 s RPC deadline = 390 s) and a margin. Values not started
#: by then are retried (Pub/Sub redelivers; the HTTP function answers 503 naming them), and on a message's last
#: delivery attempt dead-lettered with its whole data. Without it a message too big for the timeout was cut off by
#: the platform on every delivery, and went to the dead-letter topic with no reason on record.
DEFAULT_TIME_BUDGET = 120.0
#: events handed to the destination at a time (SCC's batch), so the budget is checked between deliveries
CHUNK_EVENTS = 100
#: delivery defaults for a function: no flush timer, 3 attempts within 30 s per batch (a [delivery] table in
#: WIA_CONFIG overrides them key by key)
FUNCTION_DELIVERY = {"max_wait": 0, "max_attempts": 3, "max_elapsed": 30}
ENV_MAX_DELIVERY_ATTEMPTS = "WIA_PUBSUB_MAX_DELIVERY_ATTEMPTS"


def time_budget() -> float:
    """`WIA_TIME_BUDGET` (`relay.seconds_from_env`: an unreadable one is warned about and the default used)."""
    from wia_security.connectors.relay import seconds_from_env
    return seconds_from_env("WIA_TIME_BUDGET", DEFAULT_TIME_BUDGET, log)


def _deadline() -> tuple[float, str]:
    """(when this request starts no more work, why), for `until`."""
    budget = time_budget()
    return time.monotonic() + budget, f"within the request's {budget:g}s budget (WIA_TIME_BUDGET)"


def max_delivery_attempts() -> int | None:
    """The dead-letter policy's maxDeliveryAttempts (Pub/Sub allows 5 to 100), or None when not set."""
    text = os.environ.get(ENV_MAX_DELIVERY_ATTEMPTS, "").strip()
    if not text:
        return None
    if not text.isdigit() or not 5 <= int(text) <= 100:
        from wia_security.errors import ConfigError
        raise ConfigError("must be the subscription's dead-letter policy maxDeliveryAttempts, 5 to 100",
                          key=ENV_MAX_DELIVERY_ATTEMPTS)
    return int(text)


class _CloudLoggingFormatter(logging.Formatter):
    """One JSON object per line with Cloud Logging's `severity`, `message` and the record's extras."""

    _standard = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        # formatted here, not by logging (whose record factory masks known secrets): masked here too, each text as
        # written before json.dumps escapes it (a secret with a quote and a non-ASCII character matches neither of
        # the core's forms once escaped), and the line again
        from wia_security.redact import redact
        entry: dict[str, Any] = {"severity": record.levelname, "message": redact(record.getMessage()),
                                 "logger": record.name}
        entry.update({k: redact(v) if isinstance(v, str) else v for k, v in vars(record).items()
                      if k not in self._standard and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class _Stdout(logging.StreamHandler):
    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


log = logging.getLogger("wia_security.gcp_function")
if not log.handlers:
    _handler = _Stdout()
    _handler.setFormatter(_CloudLoggingFormatter())
    log.addHandler(_handler)
    log.propagate = False
    log.setLevel(logging.INFO)


#: Cloud Logging's limit on one LogEntry (logging/quotas); the log agent splits a longer stdout line into text
#: chunks or drops it, so a dead letter past it would never reach a `jsonPayload.wia_dead_letter:*` sink.
LOG_ENTRY_MAX_BYTES = 256 * 1024
#: A dead letter whose line would pass this is written in parts (room left for severity, message and logger).
DEAD_LETTER_ENTRY_BUDGET = 200 * 1024
#: Characters of the record's JSON per part: at most 6 bytes each once escaped into the line, so <= 192 KiB.
DEAD_LETTER_PART_CHARS = 32 * 1024


def _parted_dead_letter(logger: logging.Logger) -> Any:
    """The relay's log dead letter, writing a record too big for one LogEntry in parts under the limit."""
    from wia_security.connectors.dead_letter import dead_letter_record
    from wia_security.connectors.relay import LogDeadLetter
    from wia_security.redact import redact

    class PartedLogDeadLetter(LogDeadLetter):
        def put(self, rejected: Any) -> None:
            record = dead_letter_record(rejected)
            text = json.dumps(record, default=str, ensure_ascii=False)
            if len(text.encode("utf-8", "surrogatepass")) <= DEAD_LETTER_ENTRY_BUDGET:
                super().put(rejected)
                return
            # masked whole before it is cut, so no secret is split across two parts and missed
            text = redact(text)
            chunks = [text[i:i + DEAD_LETTER_PART_CHARS] for i in range(0, len(text), DEAD_LETTER_PART_CHARS)]
            # failed_at tells one write of the record from another (a redelivery refused again), so replay
            # never joins parts of two writes cut at different places
            header = {k: record[k] for k in ("dead_letter_id", "failed_at", "where", "sink") if k in record}
            header["reason"] = str(record.get("reason", ""))[:1000]
            for number, chunk in enumerate(chunks, 1):
                self.logger.error("dead letter (part %d of %d)", number, len(chunks), extra={"wia_dead_letter": {
                    **header, "part": number, "parts": len(chunks), "record_part": chunk}})
            self.count += 1

    return PartedLogDeadLetter(logger)


def _config_document() -> dict[str, Any]:
    import tomllib
    text = os.environ.get("WIA_CONFIG")
    if text:
        try:
            return json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
        except ValueError as exc:           # TOMLDecodeError and JSONDecodeError: a ConfigError naming the setting
            from wia_security.errors import ConfigError
            raise ConfigError(f"the setting is not TOML or JSON: {exc}", key="WIA_CONFIG") from None
    source = os.environ.get("WIA_SCC_SOURCE")
    if not source:
        from wia_security.errors import ConfigError
        raise ConfigError("set WIA_SCC_SOURCE to organizations/<org>/sources/<id> (or WIA_CONFIG)", key="WIA_SCC_SOURCE")
    destination: dict[str, Any] = {"url": f"scc://{source}", "location": os.environ.get("WIA_SCC_LOCATION", "global")}
    if os.environ.get("WIA_SCC_RESOURCE"):
        destination["resource"] = os.environ["WIA_SCC_RESOURCE"]
    return {"destinations": {"scc": destination}}


def sink() -> Any:
    """The destinations, opened once per instance."""
    with _OPENING:
        if "sink" not in _runtime:
            from wia_security.connectors.config import parse_config
            document = _config_document()
            # under the config's own keys: a [delivery] table giving only some replaced them all (the policy's
            # 6 tries within 120 s broke the time budget's worst case)
            document["delivery"] = {**FUNCTION_DELIVERY, **(document.get("delivery") or {})}
            config = parse_config(document, source="environment")
            if config.forward:    # the CLI's table, which nothing here reads: said once, not ignored without a word
                log.warning("WIA_CONFIG: [forward] %s is not read by this function: dead letters are log entries "
                            "and events are validated strictly (docs/cloud/gcp.md)", ", ".join(sorted(config.forward)))
            _runtime["sink"] = config.open()
            log.info("configured", extra={"destinations": [d.name for d in config.destinations]})
        return _runtime["sink"]


def relay() -> Any:
    """A relay for one request (its own hold-back state and dead letter) over the instance's sink."""
    from wia_security.connectors.relay import Relay
    return Relay(sink(), _parted_dead_letter(log), chunk_events=CHUNK_EVENTS, on_reject=lambda r: log.warning(
        "rejected: %s", r.reason, extra={"where": r.where, "sink": r.sink}))


def _process(runner: Any, records: list[Any], stop_at: float, hold_back: Any = None) -> Any:
    """`runner.process(records)` while no other request of this instance uses the sink; if it is not free by
    `stop_at`, every record is retried, not started (none reaches the sink)."""
    from wia_security.connectors.relay import SourceRecord, until
    if not _SINK_IN_USE.acquire(timeout=max(0.0, stop_at - time.monotonic())):
        why = "the destination was in use by another request of this instance until the request's budget was spent"
        return runner.process([SourceRecord(r.id, until(r.items, 0.0, why)) for r in records], hold_back=hold_back)
    try:
        return runner.process(records, hold_back=hold_back)
    finally:
        _SINK_IN_USE.release()


@functions_framework.cloud_event
def pubsub_to_scc(cloud_event: Any) -> None:
    from wia_security.connectors.relay import SourceRecord, record_items, until
    from wia_security.errors import ParseError
    from wia_security.reader import Item

    stop_at, why = _deadline()
    envelope = cloud_event.data
    message = envelope.get("message") if isinstance(envelope, dict) else None
    message_id = str((message.get("messageId") or message.get("message_id") if isinstance(message, dict) else None)
                     or cloud_event["id"])
    name = f"pubsub:{message_id}"
    data = message.get("data") if isinstance(message, dict) else None
    # A poison message is dead-lettered and acknowledged (200): raising would make Pub/Sub redeliver it
    # until its retention or dead-letter policy ends that, with no reason on record.
    problem = ("the CloudEvent carries no Pub/Sub message (data.message)" if not isinstance(message, dict)
               else "the Pub/Sub message has no data" if data is None or data == ""
               else "the message data is not a base64 string" if not isinstance(data, str) else None)
    payload = b""
    if problem is None:
        try:
            payload = base64.b64decode(data, validate=True)
            items = record_items(payload, name)   # gzip cut short or corrupt: up to the line it broke in
        except ValueError as exc:           # not base64, or gzip inflating too far (GzipBodyError)
            problem = f"message data is not base64/gzip: {exc}"
    if problem is not None:
        raw = json.dumps(envelope, default=str).encode()[:4096]
        items = iter([Item(name, 0, error=ParseError(problem, source=name), raw=raw)])
    # Pub/Sub counts delivery attempts only for a subscription with a dead-letter policy
    attempt = envelope.get("deliveryAttempt") if isinstance(envelope, dict) else None
    attempt = attempt if isinstance(attempt, int) and not isinstance(attempt, bool) and attempt > 0 else None
    limit = max_delivery_attempts()
    last = attempt is not None and limit is not None and attempt >= limit
    held = attempt is not None and limit is not None and not last
    runner = relay()
    result = _process(runner, [SourceRecord(message_id, until(items, stop_at, why))], stop_at,
                      hold_back=(lambda _: True) if held else None)
    if result.retry and last:
        runner.give_up(result, f"gave up on delivery attempt {attempt} ({ENV_MAX_DELIVERY_ATTEMPTS}={limit}, "
                               "the dead-letter policy's last)", lambda _: payload, lambda _: name)
    log.info("message processed", extra={"message_id": message_id, "delivery_attempt": attempt, **result.summary()})
    if result.retry:
        raise RuntimeError(f"message {message_id}: delivery must be retried")


@functions_framework.http
def http_to_scc(request: Any) -> Any:
    from wia_security.connectors.relay import GzipBodyError, SourceRecord, body_lines, http_reply, until
    from wia_security.errors import ConfigError
    from wia_security.reader import iter_items

    stop_at, why = _deadline()
    if request.method.upper() != "POST":
        return _json(405, {"error": "POST WIA events (a JSON object, a JSON array or NDJSON)"})
    body = request.get_data()
    if not body.strip():                     # not "200, accepted 0": the client sent nothing
        return _json(400, {"error": "empty body: POST WIA events (a JSON object, a JSON array or NDJSON)"})
    try:
        lines = body_lines(body, "request")
    except GzipBodyError as exc:
        return _json(413 if exc.too_large else 400, {"error": f"unreadable gzip body: {exc.reason}"})
    records = [SourceRecord(str(i), until([item], stop_at, why)) for i, item in enumerate(iter_items(lines, "request"))]
    try:
        result = _process(relay(), records, stop_at)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return _json(500, {"error": "the function is misconfigured; see its logs"})
    status, body, headers = http_reply(result)
    return _json(status, body, headers)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    return json.dumps(body), status, {"Content-Type": "application/json", **(headers or {})}
