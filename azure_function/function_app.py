"""WIA Security for Azure Functions (Python v2 programming model): Event Hub and HTTP triggers -> Sentinel.

Two functions:
- `eventhub_to_sentinel`: a batch of Event Hub events (each a WIA event, a JSON array or NDJSON)
  into the `WIASecurity_CL` table through the Logs Ingestion API. A retryable failure (throttling,
  a 5xx, the identity endpoint) raises, so the host's exponential-backoff retry policy re-runs the
  batch; on the last allowed retry the failures are dead-lettered instead, so nothing is dropped when
  the trigger moves its checkpoint on.
- `http_to_sentinel`: POST /api/events (function key), answered per value like the Lambda URL:
  200 with what was delivered and rejected, 503 + Retry-After naming the values to send again.

Rejected events (invalid, or refused by the destination) are written to blob storage through an
output binding: one NDJSON blob per invocation under `wia-dead-letter/`, one record (reason, where,
event, dead_letter_id) a line. An Event Hub invocation that raises for a retry writes no blob: the
retry re-runs the same batch and rejects the same values again, so each is dead-lettered once, by the
invocation that settles the batch (a success, or the last retry).

Settings (app settings; no secrets needed: the managed identity authenticates):
  WIA_SENTINEL_ENDPOINT   data collection endpoint, https://<dce>.<region>.ingest.monitor.azure.com
  WIA_SENTINEL_DCR_ID     the DCR's immutable id (dcr-...)
  WIA_SENTINEL_STREAM     default Custom-WIASecurity
  WIA_MANAGED_IDENTITY_CLIENT_ID   a user-assigned identity's client id (system-assigned if unset)
  WIA_CONFIG              optional: a destinations config (TOML) instead of the three above
  WIA_EVENTHUB_NAME, WIA_EVENTHUB__fullyQualifiedNamespace   the trigger's hub (identity-based connection)
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import azure.functions as func

# The package's own code (wia_security) sits beside this file in the deployed zip.
sys.path.insert(0, str(Path(__file__).resolve().parent))

log = logging.getLogger("wia_security.azure_function")
app = func.FunctionApp()

MAX_RETRIES = 5
#: delivery defaults for a function: no flush timer, 3 attempts within 30 s per request
FUNCTION_DELIVERY = {"max_wait": 0, "max_attempts": 3, "max_elapsed": 30}
#: Seconds an Event Hub invocation may spend starting work (`WIA_TIME_BUDGET`): host.json's
#: functionTimeout (300 s) less the worst case of the delivery already under way (one chunk of
#: CHUNK_EVENTS events, one Sentinel request: 30 s of retries, then up to a 60 s answer wait) and a
#: margin. Records not started by then are retried with the batch, or dead-lettered with their bodies
#: on the last retry. Without it a slow destination lets the host kill the invocation, and on the last
#: retry the checkpoint then moves past the batch with nothing on record.
DEFAULT_TIME_BUDGET = 180.0
#: events handed to the destination at a time, so the budget is checked between deliveries
CHUNK_EVENTS = 100
#: Seconds an HTTP request may spend starting work, waiting for the destination included: the HTTP front end
#: gives up on the request after 230 s, less one chunk's worst case (90 s) and a margin. Values not started by
#: then are answered 503 + Retry-After, named; without it a request past 230 s got the front end's error and
#: the caller could not tell which values were delivered.
HTTP_TIME_BUDGET = 120.0
_runtime: dict[str, Any] = {}
#: The worker runs invocations on a thread pool (Event Hub partitions, HTTP requests), all sharing one sink,
#: which batches: what one invocation's send() buffered, another's flush() posted and reported, so the first
#: found its own events unaccounted for and had them retried (ingested twice) or, on the last retry,
#: dead-lettered although delivered. One invocation at a time uses the sink.
_SINK_IN_USE = threading.Lock()
_OPENING = threading.Lock()              # two invocations of a cold worker open one sink, not two


def time_budget() -> float:
    """`WIA_TIME_BUDGET` (`relay.seconds_from_env`: an unreadable one is warned about and the default used)."""
    from wia_security.connectors.relay import seconds_from_env
    return seconds_from_env("WIA_TIME_BUDGET", DEFAULT_TIME_BUDGET, log)


def _config_document() -> dict[str, Any]:
    import tomllib
    text = os.environ.get("WIA_CONFIG")
    if text:
        try:
            return json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
        except ValueError as exc:           # TOMLDecodeError and JSONDecodeError: a ConfigError naming the setting
            from wia_security.errors import ConfigError
            raise ConfigError(f"the setting is not TOML or JSON: {exc}", key="WIA_CONFIG") from None
    endpoint, dcr = os.environ.get("WIA_SENTINEL_ENDPOINT", ""), os.environ.get("WIA_SENTINEL_DCR_ID", "")
    if not endpoint or not dcr:
        from wia_security.errors import ConfigError
        raise ConfigError("set WIA_SENTINEL_ENDPOINT and WIA_SENTINEL_DCR_ID (or WIA_CONFIG)", key="WIA_SENTINEL_ENDPOINT")
    host = endpoint.split("://", 1)[-1].rstrip("/")
    destination: dict[str, Any] = {"url": f"sentinel://{host}/{dcr}",
                                   "stream": os.environ.get("WIA_SENTINEL_STREAM", "Custom-WIASecurity")}
    client_id = os.environ.get("WIA_MANAGED_IDENTITY_CLIENT_ID")
    if client_id:
        destination["client_id"] = client_id
    return {"destinations": {"sentinel": destination}}


def relay() -> Any:
    """The relay (destinations + a per-invocation dead letter), built once per worker process."""
    with _OPENING:
        return _open()


def _open() -> Any:
    if "sink" not in _runtime:
        from wia_security.connectors.config import parse_config
        document = _config_document()      # Sentinel's credential masks its tokens itself (RedactedTokens)
        # the function's delivery defaults under the config's own keys: a [delivery] table giving only some keys
        # replaced them all, and the policy's defaults (6 tries within 120 s, a 5 s flush timer) broke the time
        # budget's worst case (a chunk then took up to 180 s: the host killed the invocation at 300 s)
        document["delivery"] = {**FUNCTION_DELIVERY, **(document.get("delivery") or {})}
        config = parse_config(document, source="app settings")
        if config.forward:        # the CLI's table, which nothing here reads: said once, not ignored without a word
            log.warning("WIA_CONFIG: [forward] %s is not read by this function: dead letters go to the blob "
                        "container wia-dead-letter and events are validated strictly (docs/cloud/azure.md)",
                        ", ".join(sorted(config.forward)))
        # Kept only once the sink is open: a failed open is tried again by the next invocation (a config
        # kept alone made every later invocation of this worker fail with KeyError 'sink').
        _runtime["sink"], _runtime["config"] = config.open(), config
        log.info("configured destinations: %s", ", ".join(d.name for d in config.destinations))
    return _runtime["sink"]


class BlobDeadLetter:
    """Dead letters of one invocation, written as one NDJSON blob through the output binding."""

    def __init__(self, out: func.Out[str]) -> None:
        self.out = out
        self.lines: list[str] = []
        self.count = 0

    def put(self, rejected: Any) -> None:
        from wia_security import jsonio
        from wia_security.connectors.dead_letter import dead_letter_record
        self.lines.append(jsonio.dumps(dead_letter_record(rejected)))      # with its dead_letter_id
        self.count += 1

    def flush(self) -> list:
        return []                                 # the blob is written once, by write(), when the outcome is known

    def write(self) -> None:
        if self.lines:
            self.out.set("\n".join(self.lines) + "\n")     # the host writes the blob when the function returns

    def close(self) -> None:
        self.write()


def _process(records: list[Any], deadletter: func.Out[str], wait: float) -> Any:
    """(result, dead letter, relay); the dead letter is not written yet (`dead.write()`). Waits up to `wait`
    seconds for the sink while another invocation uses it; past that every record is retried, not started."""
    from wia_security.connectors.relay import Relay, SourceRecord, until
    dead = BlobDeadLetter(deadletter)
    runner = Relay(relay(), dead, chunk_events=CHUNK_EVENTS, on_reject=lambda r: log.warning(
        "rejected: %s", r.reason, extra={"where": r.where, "sink": r.sink}))
    if not _SINK_IN_USE.acquire(timeout=max(0.0, wait)):
        why = f"the destination was in use by another invocation of this worker for {max(0.0, wait):g}s"
        busy = [SourceRecord(r.id, until(r.items, 0.0, why)) for r in records]   # none reaches the sink
        return runner.process(busy), dead, runner
    try:
        return runner.process(records), dead, runner
    finally:
        _SINK_IN_USE.release()


@app.function_name("eventhub_to_sentinel")
@app.event_hub_message_trigger(arg_name="events", event_hub_name="%WIA_EVENTHUB_NAME%", connection="WIA_EVENTHUB",
                               cardinality=func.Cardinality.MANY, consumer_group="$Default")
@app.retry(strategy="exponential_backoff", max_retry_count=str(MAX_RETRIES),
           minimum_interval="00:00:05", maximum_interval="00:05:00")
@app.blob_output(arg_name="deadletter", path="wia-dead-letter/{rand-guid}.ndjson", connection="AzureWebJobsStorage")
def eventhub_to_sentinel(events: list[func.EventHubEvent], deadletter: func.Out[str], context: func.Context) -> None:
    from wia_security.connectors.relay import GzipBodyError, SourceRecord, record_items, until
    from wia_security.errors import ParseError
    from wia_security.reader import Item

    budget = time_budget()
    stop_at = time.monotonic() + budget
    why = f"within the invocation's {budget:g}s budget (WIA_TIME_BUDGET)"
    records, bodies = [], {}
    for index, event in enumerate(events):
        name = f"eventhub:{event.partition_key or '-'}:{event.sequence_number if event.sequence_number is not None else index}"
        bodies[name] = event.get_body() or b""
        if not bodies[name].strip():         # nothing to forward: on record, never skipped silently
            items = iter([Item(name, 0, error=ParseError("the Event Hub event has no body", source=name))])
            records.append(SourceRecord(name, items))
            continue
        try:
            items = record_items(bodies[name], name)    # gzip cut short or corrupt: up to where it broke
        except GzipBodyError as exc:        # a gzip bomb, a poison event: on record, never retried forever
            items = iter([Item(name, 0, error=ParseError(f"unreadable gzip body: {exc.reason}", source=name),
                               raw=bodies[name][:4096])])
        records.append(SourceRecord(name, until(items, stop_at, why)))
    try:
        relay()
    except Exception as exc:  # noqa: BLE001 - a destination that cannot be opened (a setting, a library)
        if not _last_attempt(context):
            raise                                # the retry may find the setting corrected
        # The host moves the checkpoint past this batch after its last retry: every event on record.
        _dead_letter_unopened(exc, bodies, _attempt(context), deadletter)
        return
    result, dead, runner = _process(records, deadletter, stop_at - time.monotonic())
    retry = result.retry
    if retry:
        attempt, allowed = _attempt(context), _allowed(context)
        if attempt < allowed:
            # no blob: the retry re-runs this batch and dead-letters its rejections then, once
            log.warning("retrying the batch: %d of %d event(s) failed retryably; %d rejection(s) held back",
                        len(retry), len(records), dead.count)
            raise RuntimeError(f"{len(retry)} event(s) must be retried (attempt {attempt + 1} of {allowed + 1})")
        # last attempt: dead-letter what still fails (the events the destination refused, or the whole
        # body of an event not read to its end), so the checkpoint moving on loses nothing
        gave_up = runner.give_up(result, f"gave up after {attempt + 1} attempt(s)", bodies.get)
        log.warning("gave up on %d event(s) after %d attempt(s): dead-lettered", gave_up, attempt + 1)
    dead.write()
    log.info("batch processed", extra=result.summary())


def _attempt(context: Any) -> int:
    """The retry number of this invocation (0: the first try)."""
    return getattr(getattr(context, "retry_context", None), "retry_count", 0) or 0


def _allowed(context: Any) -> int:
    return getattr(getattr(context, "retry_context", None), "max_retry_count", MAX_RETRIES)


def _last_attempt(context: Any) -> bool:
    return _attempt(context) >= _allowed(context)


def _dead_letter_unopened(exc: Exception, bodies: dict[str, bytes], attempt: int, deadletter: func.Out[str]) -> None:
    """Every event of the batch, its body whole, dead-lettered with why the destination could not be opened."""
    from wia_security.connectors.base import Rejected
    reason = f"gave up after {attempt + 1} attempt(s): the destination could not be opened: {type(exc).__name__}: {exc}"
    log.error("%s; %d event(s) dead-lettered", reason, len(bodies))
    dead = BlobDeadLetter(deadletter)
    for name, body in bodies.items():
        dead.put(Rejected(reason, where=name, raw=body, retryable=True))
    dead.write()


@app.function_name("http_to_sentinel")
@app.route(route="events", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.blob_output(arg_name="deadletter", path="wia-dead-letter/{rand-guid}.ndjson", connection="AzureWebJobsStorage")
def http_to_sentinel(req: func.HttpRequest, deadletter: func.Out[str]) -> func.HttpResponse:
    from wia_security.connectors.relay import GzipBodyError, SourceRecord, body_lines, http_reply, until
    from wia_security.errors import ConfigError
    from wia_security.reader import iter_items

    stop_at = time.monotonic() + HTTP_TIME_BUDGET
    why = f"within the request's {HTTP_TIME_BUDGET:g}s budget"
    if req.method.upper() != "POST":
        return _json(405, {"error": "POST WIA events (a JSON object, a JSON array or NDJSON)"})
    body = req.get_body() or b""
    if not body.strip():                     # not "200, accepted 0": the client sent nothing
        return _json(400, {"error": "empty body: POST WIA events (a JSON object, a JSON array or NDJSON)"})
    try:
        lines = body_lines(body, "request")
    except GzipBodyError as exc:
        return _json(413 if exc.too_large else 400, {"error": f"unreadable gzip body: {exc.reason}"})
    records = [SourceRecord(str(i), until([item], stop_at, why)) for i, item in enumerate(iter_items(lines, "request"))]
    try:
        result, dead, _ = _process(records, deadletter, stop_at - time.monotonic())
        dead.write()
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return _json(500, {"error": "the function is misconfigured; see its logs"})
    status, body, headers = http_reply(result)
    return _json(status, body, headers)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json", headers=headers)
