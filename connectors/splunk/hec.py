"""Splunk HTTP Event Collector sink: WIA events as HEC JSON events, batched, with optional indexer acknowledgement.

`splunk+https://splunk.example.com:8088?index=security&token_env=SPLUNK_HEC_TOKEN[&gzip=1][&ack=1]`

Wire format (Splunk "Format events for HTTP Event Collector"): POST /services/collector/event, body =
JSON event objects concatenated (newline-separated; not an array), `Authorization: Splunk <token>`,
each object `{"time": <epoch seconds, ms precision>, "host", "source", "sourcetype":
"wia:security:<type>", "index", "event": <the WIA event, unchanged>}` (+ indexed `fields` when
`fields=cim`). Replies `{"text", "code"[, "ackId"][, "invalid-event-number"]}` are handled per the
HEC status-code table (see HEC_CODES). HEC has no idempotent event id: delivery is at-least-once
and a retry after a lost reply can index an event twice (documented in docs/connectors/splunk.md).
"""
from __future__ import annotations

import gzip as _gzip
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from wia_security import jsonio
from wia_security.errors import ConfigError
from wia_security.timeutil import to_epoch_ms

from ..config import Secret
from ..delivery import Batch, BatchingSink, BatchItem, DeliveryPolicy, Outcome, classify_exception
from ..delivery.urls import (check_header_secret, parse_sink_url, seconds, tls_verification,
                             warn_plain_http_secret)
from ..delivery.http import DEFAULT_TIMEOUT, error_for_response, new_session

log = logging.getLogger("wia_security.connectors.splunk")

HEC_EVENT_PATH = "/services/collector/event"
HEC_ACK_PATH = "/services/collector/ack"
HEC_HEALTH_PATH = "/services/collector/health"
HEC_DEFAULT_PORT = 8088
CHANNEL_HEADER = "X-Splunk-Request-Channel"
SOURCETYPE_PREFIX = "wia:security:"
DEFAULT_SOURCE = "wia-security"

#: Request body cap we batch to by default. Splunk's inputs.conf [http] `max_content_length` is
#: configurable per deployment (recent Splunk Enterprise allows up to 838,860,800 bytes); 1,000,000
#: bytes is the conservative size shippers use so that any HEC (and any proxy in front) accepts it.
HEC_DEFAULT_MAX_CONTENT_LENGTH = 1_000_000
#: The largest request body we ever send (Splunk's own upper bound for max_content_length, ~800 MB).
HEC_MAX_CONTENT_LENGTH_CEILING = 838_860_800
#: inputs.conf [http] `maxEventSize` default (5 MB): a larger single event is a parsing error at HEC.
HEC_MAX_EVENT_SIZE = 5 * 1024 * 1024
GZIP_LEVEL = 5
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)
#: Indexer-acknowledgement polling: first wait, cap of the doubling wait, and how long to wait in all.
ACK_POLL_INITIAL = 0.1
ACK_POLL_MAX = 2.0
DEFAULT_ACK_TIMEOUT = 60.0

#: HEC status codes (Splunk "Troubleshoot HTTP Event Collector"): code -> (text, how we treat it).
#: "config": the token/index/channel setup is wrong -> every event of the request fails permanently;
#: "event": one event is bad (with invalid-event-number) -> the ones before are indexed, it fails,
#: the ones after are re-sent at once; "retry": the server is busy or broken -> backoff and retry;
#: "channel": the ack channel expired -> a new channel and retry.
HEC_CODES: dict[int, tuple[str, str]] = {
    0: ("Success", "ok"),
    1: ("Token disabled", "config"),
    2: ("Token is required", "config"),
    3: ("Invalid authorization", "config"),
    4: ("Invalid token", "config"),
    5: ("No data", "config"),
    6: ("Invalid data format", "event"),
    7: ("Incorrect index", "config"),
    8: ("Internal server error", "retry"),
    9: ("Server is busy", "retry"),
    10: ("Data channel is missing", "config"),
    11: ("Invalid data channel", "channel"),
    12: ("Event field is required", "event"),
    13: ("Event field cannot be blank", "event"),
    14: ("ACK is disabled", "config"),
    15: ("Error in handling indexed fields", "event"),
    16: ("Query string authorization is not enabled", "config"),
    17: ("HEC is healthy", "ok"),
    18: ("HEC is unhealthy, queues are full", "retry"),
    19: ("HEC is unhealthy, ack service unavailable", "retry"),
    20: ("HEC is unhealthy, queues are full, ack service unavailable", "retry"),
}

#: Options a HEC destination takes (URL query or config keys), besides DeliveryPolicy keys.
OPTIONS = ("token", "index", "source", "sourcetype", "host", "gzip", "ack", "ack_timeout", "channel",
           "fields", "tls_verify", "ca_file", "timeout", "max_content_length")
FIELDS_MODES = ("none", "cim")


class HecSink(BatchingSink):
    """Delivers WIA events to a Splunk HTTP Event Collector."""

    max_batch_bytes = HEC_MAX_CONTENT_LENGTH_CEILING
    item_separator = b"\n"

    def __init__(self, url: str, *, token: Secret | str, index: str | None = None, source: str | None = None,
                 sourcetype: str | None = None, host: str | None = None, gzip: bool = False, ack: bool = False,
                 ack_timeout: float = DEFAULT_ACK_TIMEOUT, channel: str | None = None, fields: str = "none",
                 tls_verify: bool = True, ca_file: str | None = None, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 max_content_length: int = HEC_DEFAULT_MAX_CONTENT_LENGTH, delivery: DeliveryPolicy | None = None,
                 dead_letter: Any = None, **machinery: Any) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("expected http(s)://host[:port]", key="url", source=f"{parts.scheme}://{parts.hostname}")
        if not token:
            raise ConfigError("a HEC token is required (token_env = \"VAR\" or token_file = \"/path\")", key="token")
        if fields not in FIELDS_MODES:
            raise ConfigError(f"must be one of {', '.join(FIELDS_MODES)}", key="fields")
        if (not isinstance(max_content_length, int) or isinstance(max_content_length, bool)
                or not 1 <= max_content_length <= HEC_MAX_CONTENT_LENGTH_CEILING):
            raise ConfigError(f"must be an integer between 1 and {HEC_MAX_CONTENT_LENGTH_CEILING}, got "
                              f"{max_content_length!r}", key="max_content_length")
        # a timeout of 0, nan or below failed every request as a permanent 'unexpected error: ValueError'
        # (every event dead-lettered), and an ack_timeout of nan or inf polled a lost ackId for ever
        timeout = (seconds(timeout[0], "timeout"), seconds(timeout[1], "timeout")) if isinstance(timeout, tuple) \
            else seconds(timeout, "timeout")
        ack_timeout = seconds(ack_timeout, "ack_timeout")
        port = parts.port or HEC_DEFAULT_PORT
        address = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname      # an IPv6 one in brackets
        self.base_url = f"{parts.scheme}://{address}:{port}{parts.path.rstrip('/')}"
        policy = (delivery or DeliveryPolicy()).capped(max_events=None, max_bytes=max_content_length)
        super().__init__(name=f"splunk:{address}:{port}", delivery=policy, dead_letter=dead_letter, **machinery)
        self.index, self.source, self.sourcetype, self.host = index, source, sourcetype, host
        self.gzip, self.ack, self.ack_timeout, self.timeout = bool(gzip), bool(ack), float(ack_timeout), timeout
        self.channel = channel or str(uuid.uuid4())
        self.fields = fields
        self._cim = _cim_converter() if fields == "cim" else None
        warn_plain_http_secret(self.name, self.base_url, "HEC token")
        secret = token if isinstance(token, Secret) else Secret(str(token), "argument")
        check_header_secret(secret.reveal(), key="token", product="HEC")
        self.session = new_session(verify=tls_verification(self.name, tls_verify, ca_file),
                                   headers={"Authorization": f"Splunk {secret.reveal()}", "Content-Type": "application/json"})
        self._ack_warned = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "HecSink":
        """`splunk+https://host:8088?index=..&token_env=..`; query keys and `options` are the same
        names (options win is an error: give each once); delivery keys (max_events, ...) allowed."""
        parsed = parse_sink_url(url, options, product="Splunk HEC", known=OPTIONS,
                                required={"token": "a HEC token is required"},
                                booleans=("gzip", "ack", "tls_verify"), numbers=("ack_timeout", "timeout"),
                                integers=("max_content_length",))
        try:
            return cls(parsed.base, delivery=parsed.delivery, **parsed.options)
        except ConfigError as exc:          # name the destination, as parse_sink_url's own errors do
            if exc.source:
                raise
            raise ConfigError(exc.reason, key=exc.key, source=parsed.where) from None

    # -- encoding ---------------------------------------------------------------------------------
    def encode(self, event: Mapping[str, Any]) -> bytes:
        """One HEC event object for a WIA event (the event body is the WIA event itself)."""
        doc: dict[str, Any] = {"time": _epoch_seconds(event["timestamp"])}
        host = self.host or _hostname(event)
        if host:
            doc["host"] = host
        src = event.get("source")
        doc["source"] = self.source or (src.get("name") if isinstance(src, dict) and src.get("name") else DEFAULT_SOURCE)
        doc["sourcetype"] = self.sourcetype or SOURCETYPE_PREFIX + str(event["type"])
        if self.index:
            doc["index"] = self.index
        doc["event"] = event
        if self._cim is not None:
            doc["fields"] = self._cim(event)
        payload = jsonio.dumpb(doc)
        if len(payload) > HEC_MAX_EVENT_SIZE:
            raise ValueError(f"event is {len(payload):,} bytes, over HEC's maxEventSize default of {HEC_MAX_EVENT_SIZE:,}")
        return payload

    # -- transport --------------------------------------------------------------------------------
    def post(self, batch: Batch) -> Sequence[Outcome]:
        """Post the batch; split it on 413; on an invalid event keep the ones before, fail it, and
        re-send the ones after at once (HEC indexed the prefix and dropped the rest)."""
        items = batch.items
        outcomes: list[Outcome | None] = [None] * len(items)
        pending = [(0, len(items))]
        while pending:
            start, end = pending.pop()
            kind, value = self._post_range(items[start:end])
            if kind == "settled":
                outcomes[start:end] = value
            elif kind == "split":
                middle = (start + end) // 2
                pending += [(middle, end), (start, middle)]
            else:                                           # "invalid": (index, outcome for it, rest)
                n, bad, rest = value
                outcomes[start:start + n] = [Outcome.delivered()] * n
                outcomes[start + n] = bad
                if start + n + 1 < end:
                    if rest is None:
                        pending.append((start + n + 1, end))
                    else:
                        outcomes[start + n + 1:end] = [rest] * (end - start - n - 1)
        return outcomes  # type: ignore[return-value]

    def _post_range(self, items: list[BatchItem]) -> tuple[str, Any]:
        body = self.item_separator.join(i.payload for i in items)
        batched = len(body)                 # the size batches are counted in (before gzip)
        headers = {CHANNEL_HEADER: self.channel}
        if self.gzip:
            body = _gzip.compress(body, compresslevel=GZIP_LEVEL)
            headers["Content-Encoding"] = "gzip"
        try:
            # Never follow a redirect: requests would turn the POST into a GET (301/302) and count what
            # answers that as indexed, or carry the events to whatever host the Location names.
            response = self.session.post(self.base_url + HEC_EVENT_PATH, data=body, headers=headers,
                                         timeout=self.timeout, allow_redirects=False)
        except Exception as exc:  # noqa: BLE001 - classified: network errors retry, TLS errors fail
            return "settled", [Outcome.from_error(classify_exception(exc))] * len(items)
        doc = _json(response)
        code = doc.get("code") if _is_code(doc.get("code")) else None
        status = response.status_code
        if status == 200 and code == 0:
            if not self.ack:
                return "settled", [Outcome.delivered()] * len(items)
            return "settled", [self._acknowledged(doc.get("ackId"))] * len(items)
        if status == 200 and code is None:
            # Not HEC's {"text", "code"}: a captive portal, a web UI, a cut reply. Proof of nothing, so
            # re-send (at-least-once) rather than count the events as indexed.
            return "settled", [Outcome.retry(f"HEC 200 but the body is not a HEC reply ({_excerpt(response)}); "
                                             "not counted as indexed")] * len(items)
        text = doc.get("text") or HEC_CODES.get(code if code is not None else -1, ("",))[0]
        if not text and not doc:
            text = _excerpt(response)                       # an HTML error page of a proxy, say
        reason = f"HEC {status}" + (f" code {code}" if code is not None else "") + (f": {text}" if text else "")
        if 300 <= status < 400:
            location = response.headers.get("Location") or "(no Location)"
            return "settled", [Outcome.failed(f"HEC {status} redirect to {location}: HEC does not redirect; set the "
                                              "URL to the address that answers (a proxy or a wrong URL?)")] * len(items)
        if status == 413:
            if len(items) > 1:
                self.lower_byte_limit(batched, reason)
                return "split", None
            return "settled", [Outcome.failed(f"{reason} (one event of {len(items[0].payload):,} bytes is over this "
                                              f"HEC's max_content_length)", details=doc or None)]
        action = HEC_CODES.get(code, ("", ""))[1] if code is not None else ""
        number = doc.get("invalid-event-number")
        if action == "event" and _is_code(number) and 0 <= number < len(items):
            return "invalid", (number, Outcome.failed(f"{reason} (invalid-event-number {number})", details=doc), None)
        if action == "channel":
            self.channel = str(uuid.uuid4())
            return "settled", [Outcome.retry(f"{reason}; retrying on a new channel", details=doc)] * len(items)
        if action == "config" or (action == "event" and status < 500):
            return "settled", [Outcome.failed(reason, details=doc or None)] * len(items)
        error = error_for_response(response, reason, sink=self.name, details=doc or None)
        if action == "retry" or error.retryable:
            return "settled", [Outcome.retry(reason, error.retry_after, details=doc or None)] * len(items)
        return "settled", [Outcome.failed(reason, details=doc or None)] * len(items)

    def _acknowledged(self, ack_id: Any) -> Outcome:
        """Poll /services/collector/ack until the ackId is true (delivered) or ack_timeout passes
        (retry: the events may or may not be indexed; re-sending is the at-least-once choice)."""
        if not isinstance(ack_id, int):
            if not self._ack_warned:
                log.error("%s: ack=true but HEC returned no ackId (indexer acknowledgement is off for this "
                          "token); events are counted on HTTP 200", self.name)
                self._ack_warned = True
            return Outcome.delivered()
        waited, interval = 0.0, ACK_POLL_INITIAL
        last = "no answer"
        started = self._clock()
        while True:
            self._sleep(interval)
            waited = self._clock() - started
            try:
                r = self.session.post(self.base_url + HEC_ACK_PATH, params={"channel": self.channel},
                                      data=jsonio.dumpb({"acks": [ack_id]}), headers={CHANNEL_HEADER: self.channel},
                                      timeout=self.timeout, allow_redirects=False)
                doc = _json(r)
                if r.status_code == 200 and isinstance(doc.get("acks"), dict):
                    if doc["acks"].get(str(ack_id)) is True:
                        return Outcome.delivered()
                    last = "not yet indexed"
                else:
                    last = f"ack endpoint answered HTTP {r.status_code} {doc.get('text', '')}".strip()
            except Exception as exc:  # noqa: BLE001 - keep polling until the timeout
                last = classify_exception(exc).reason
            if waited + interval > self.ack_timeout:
                return Outcome.retry(f"indexer acknowledgement for ackId {ack_id} not received within "
                                     f"{self.ack_timeout:g}s ({last})")
            interval = min(interval * 2, ACK_POLL_MAX)

    def health(self) -> bool:
        """GET /services/collector/health -> True when HEC says it is healthy (code 17)."""
        r = self.session.get(self.base_url + HEC_HEALTH_PATH, timeout=self.timeout)
        return r.status_code == 200 and _json(r).get("code") == 17

    def close_transport(self) -> None:
        self.session.close()


def indexed_fields(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested document flattened to HEC indexed fields: dotted keys, values str or list[str]
    (HEC refuses nested objects in `fields` with code 15)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(indexed_fields(value, name + "."))
        elif isinstance(value, (list, tuple)):
            flat = [_scalar(v) for v in value if not isinstance(v, (Mapping, list, tuple)) and v is not None]
            if flat:
                out[name] = flat
        elif value is not None:
            out[name] = _scalar(value)
    return out


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else jsonio.dumps(value)


def _cim_converter() -> Any:
    from wia_security.formats import FORMATS, get_format
    if "cim" not in FORMATS:
        raise ConfigError("fields=cim needs the CIM format (core/formats/cim.py), which this build lacks", key="fields")
    fmt = get_format("cim")

    def cim_fields(event: Mapping[str, Any]) -> dict[str, Any]:
        # The CIM document's `fields` (src, dest, user, signature, ...); names starting with "_"
        # (_time) are Splunk's own and not indexed-field material.
        cim = fmt.from_wia(dict(event))
        return indexed_fields({k: v for k, v in cim.get("fields", {}).items() if not k.startswith("_")})
    return cim_fields


def _epoch_seconds(timestamp: str) -> float:
    """Epoch seconds with millisecond precision (HEC `time`), the milliseconds cut, not rounded: rounding put
    23:59:59.9995 in the next second, day or year of `_time` (Splunk keeps milliseconds, the LEEF/CEF times and
    every other sink cut). Exact integer milliseconds: a float product can land one below. The C fast path for
    the usual spellings."""
    try:
        moment = datetime.fromisoformat(timestamp)
        if moment.tzinfo is None:
            raise ValueError
        return ((moment - _EPOCH) // _MILLISECOND) / 1000
    except (ValueError, TypeError, OverflowError):
        return to_epoch_ms(timestamp) / 1000


def _hostname(event: Mapping[str, Any]) -> str | None:
    context = event.get("context")
    host = context.get("host") if isinstance(context, dict) else None
    name = host.get("hostname") if isinstance(host, dict) else None
    return name if isinstance(name, str) and name else None


def _is_code(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _excerpt(response: Any, limit: int = 120) -> str:
    """The start of a reply body as one line (for reasons), or that it was empty."""
    try:
        text = " ".join(response.text.split())
    except Exception:  # noqa: BLE001 - an undecodable body is described, not raised
        return "an undecodable body"
    if not text:
        return "an empty body"
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def _json(response: Any) -> dict[str, Any]:
    try:
        doc = response.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


__all__ = ["HecSink", "HEC_CODES", "HEC_DEFAULT_MAX_CONTENT_LENGTH", "HEC_MAX_CONTENT_LENGTH_CEILING",
           "HEC_MAX_EVENT_SIZE", "indexed_fields"]
