"""`GET /metrics`: the gateway's counters in the Prometheus text exposition format 0.0.4 (standard library only).

Every counter is written by one thread only, so plain `+=` is exact: request, ingest and stream
counters on the event loop, delivery counters on the delivery thread (dispatch.py). A scrape runs
on the event loop and reads the delivery thread's integers as they are at that moment.

Labels are bounded by construction: route templates (never raw paths), fixed reason and outcome
words, and destination names chosen by the operator (`[destinations.NAME]`) or derived from a
`--to` URL without its credentials, path or query (`destination_name`). No event ids, no client
addresses, no tokens.
"""
from __future__ import annotations

import collections
import math
import time
from typing import Any, Iterable, Mapping

#: The Content-Type of text format 0.0.4 (Prometheus' "Exposition formats" page).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Where ingested events come from: POST /v1/events, the HEC endpoint, a stream `publish`.
SOURCES = ("http", "hec", "stream")
#: Per source, why an event (one value of a request) can be refused. A stream `publish` carries parsed
#: JSON (nothing unparseable); only HEC has its own wrapper rules (codes 6, 12, 13).
EVENT_REJECT_REASONS = {
    "http": ("invalid", "unparseable", "store_refused"),
    "hec": ("invalid", "unparseable", "store_refused", "hec_format"),
    "stream": ("invalid", "store_refused"),
}
#: Per source, why a whole ingest request can be refused before its events are looked at, or not be taken.
_BODY_REASONS = ("auth", "too_large", "bad_encoding", "empty", "busy", "unavailable", "client_gone", "timeout",
                 "cross_site")
#: `stream` counts handshakes (auth, too_many_clients: beyond --max-stream-clients, not_found: a path with no stream)
#: and `publish` messages.
REQUEST_REFUSE_REASONS = {"http": _BODY_REASONS, "hec": (*_BODY_REASONS, "bad_channel", "no_channel"),
                          "stream": ("auth", "too_many_clients", "timeout", "not_found", "busy", "unavailable",
                                     "cross_site")}
#: Why a request head was refused before any route saw it (server._HttpProtocol): a request line over
#: MAX_REQUEST_LINE_BYTES (414), a head over MAX_REQUEST_HEAD_BYTES (431), one h11 cannot parse (400), one that did
#: not arrive within REQUEST_HEAD_TIMEOUT_SECONDS (closed without an answer).
HEAD_REFUSE_REASONS = ("uri_too_long", "headers_too_large", "malformed", "timeout")
#: Methods used as label values; anything else is "other" (a client chooses the method).
METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"})
UNMATCHED = "unmatched"


class GatewayMetrics:
    """Counters the request handlers keep (the delivery thread and the stream hub keep their own)."""

    def __init__(self) -> None:
        self.start_time = time.time()
        self.requests: collections.Counter[tuple[str, str, str]] = collections.Counter()   # (method, endpoint, class)
        self.in_flight = 0
        self.events_accepted = collections.Counter({s: 0 for s in SOURCES})
        # Every series that can occur exists from the start at 0, so rate() and absent() work at once.
        self.events_rejected = collections.Counter({(s, r): 0 for s, reasons in EVENT_REJECT_REASONS.items()
                                                    for r in reasons})
        self.requests_refused = collections.Counter({(s, r): 0 for s, reasons in REQUEST_REFUSE_REASONS.items()
                                                     for r in reasons})
        self.heads_refused = collections.Counter({r: 0 for r in HEAD_REFUSE_REASONS})
        self.stream_connections = 0
        self.stream_token_revoked = 0            # stream connections closed with 4001
        self.stream_ping_timeouts = 0            # stream connections closed with 1011: no pong in time
        self.connections_aborted = 0             # connections reset: the peer took nothing of the close (server.py)
        # connections refused beyond --max-connections (server.py): answered 503, or closed early while lingering
        self.connections_refused = collections.Counter({"answered": 0, "cut_short": 0})

    def count_verdicts(self, source: str, results: Iterable[dict[str, Any]], hec_refused: int = 0) -> None:
        """Count one request's per-event results once they are final (after the store answered)."""
        for result in results:
            if result["status"] == "accepted":
                self.events_accepted[source] += 1
            else:
                code = result["errors"][0]["code"] if result.get("errors") else ""
                reason = ("unparseable" if code == "parse_error" else "store_refused" if code == "store_refused"
                          else "invalid")
                self.events_rejected[(source, reason)] += 1
        if hec_refused:
            self.events_rejected[(source, "hec_format")] += hec_refused

    def refuse(self, source: str, reason: str) -> None:
        self.requests_refused[(source, reason)] += 1


def endpoint_of(scope: Mapping[str, Any]) -> str:
    """The route template that handled the request (`/taxii2/{api_root}/...`), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def method_of(scope: Mapping[str, Any]) -> str:
    method = scope.get("method", "")
    return method if method in METHODS else "other"


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


def destination_name(url: str, taken: Iterable[str]) -> str:
    """A `--to` URL as a destination name: `scheme://host[:port]` only.

    User info, path and query are dropped because any of them may hold a credential (a password, a
    webhook path token, `?token=`); the name shows up in the dead letter's `sink` and in /metrics.
    A second destination with the same name gets ` #2`, and so on."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        base = scheme.split(":", 1)[0] or "destination"
    else:
        host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
        base = f"{scheme}://{host}"
    taken = set(taken)
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base} #{n}"
    return name


# --- the text format ---
def escape_label_value(value: str) -> str:
    """Backslash, double quote and line feed escaped, as the text format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text escapes only backslash and line feed."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Exposition:
    """Builds one scrape: each family's HELP and TYPE lines, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[Mapping[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {escape_help(help_text)}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                rendered = ",".join(f'{k}="{escape_label_value(str(v))}"' for k, v in labels.items())
                self.lines.append(f"{name}{{{rendered}}} {format_value(value)}")
            else:
                self.lines.append(f"{name} {format_value(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"     # the last line ends with a line feed too


def render(gw: Any) -> str:
    """The whole scrape for Gateway `gw`; runs on the event loop (the hub and the handler counters are its own)."""
    m: GatewayMetrics = gw.metrics
    out = Exposition()
    out.family("wia_gateway_start_time_seconds", "gauge", "Start time of the gateway since the Unix epoch, in seconds.",
               [({}, m.start_time)])
    out.family("wia_gateway_http_requests_total", "counter",
               "HTTP requests answered, by method, route template and status class.",
               [({"method": k[0], "endpoint": k[1], "status_class": k[2]}, v) for k, v in sorted(m.requests.items())])
    out.family("wia_gateway_http_requests_in_flight", "gauge", "HTTP requests being handled now.",
               [({}, m.in_flight)])
    out.family("wia_gateway_connections", "gauge", "Connections open now (HTTP and stream), refused ones not counted.",
               [({}, max(0, len(gw.connections) - len(gw.lingering_refusals)))])
    out.family("wia_gateway_max_connections", "gauge",
               "Connections open at once beyond which a new one is answered 503 (--max-connections).",
               [({}, gw.settings.max_connections or 0)])
    out.family("wia_gateway_connections_refused_total", "counter",
               "Connections refused beyond --max-connections, by outcome: answered (503 written, closed once read), "
               "cut_short (closed before its client closed: more than MAX_LINGERING_REFUSALS refused at once).",
               [({"outcome": k}, v) for k, v in sorted(m.connections_refused.items())])
    out.family("wia_gateway_events_accepted_total", "counter",
               "Events accepted (validated and stored), by ingest source.",
               [({"source": s}, v) for s, v in sorted(m.events_accepted.items())])
    out.family("wia_gateway_events_rejected_total", "counter",
               "Events refused one by one (in the reply and the dead letter), by ingest source and reason.",
               [({"source": k[0], "reason": k[1]}, v) for k, v in sorted(m.events_rejected.items())])
    out.family("wia_gateway_requests_refused_total", "counter",
               "Ingest requests refused as a whole (their events were not counted), by ingest source and reason.",
               [({"source": k[0], "reason": k[1]}, v) for k, v in sorted(m.requests_refused.items())])
    out.family("wia_gateway_http_request_heads_refused_total", "counter",
               "Requests refused by the HTTP layer, not by a route, by reason: uri_too_long (414), headers_too_large "
               "(431), malformed (400: not valid HTTP/1.1), timeout (closed: the head did not arrive in time).",
               [({"reason": r}, v) for r, v in sorted(m.heads_refused.items())])

    out.family("wia_gateway_request_body_bytes_in_flight", "gauge",
               "Bytes of ingest request bodies held now (arriving, validated, waiting for delivery).",
               [({}, gw.body_budget.held)])
    out.family("wia_gateway_request_body_max_bytes_in_flight", "gauge",
               "Bytes of request bodies held at once beyond which ingest answers 503.", [({}, gw.body_budget.limit)])

    d = gw.dispatcher
    if d is not None:
        stats = d.stats
        out.family("wia_gateway_delivery_pending_events", "gauge",
                   "Accepted events waiting for or in delivery (store and destinations).", [({}, d.pending)])
        out.family("wia_gateway_delivery_max_pending_events", "gauge",
                   "Pending events beyond which ingest answers 503.", [({}, d.max_pending)])
        out.family("wia_gateway_delivery_batches_total", "counter",
                   "Delivery rounds (concurrent requests grouped into one store transaction).", [({}, stats.groups)])
        out.family("wia_gateway_delivery_errors_total", "counter",
                   "Delivery rounds that failed as a whole (requests answered 503).",
                   [({}, stats.failures)])
        if d.store is not None:
            out.family("wia_gateway_store_events_total", "counter",
                       "Events handed to the embedded store, by outcome.",
                       [({"outcome": "stored"}, stats.stored), ({"outcome": "duplicate"}, stats.duplicates),
                        ({"outcome": "refused"}, stats.store_refused)])
            out.family("wia_gateway_store_errors_total", "counter",
                       "Store transactions that raised (their requests were answered 503).",
                       [({}, stats.store_errors)])
        per_destination = dict(d.fanout.stats) if d.fanout is not None else {}
        out.family("wia_gateway_destination_events_total", "counter",
                   "Events handed to each configured destination, by destination name and outcome.",
                   [({"sink": name, "outcome": outcome}, getattr(s, outcome if outcome != "duplicate" else "duplicates"))
                    for name, s in sorted(per_destination.items())
                    for outcome in ("delivered", "duplicate", "failed")])
        handed = stats.handed_to_destinations
        out.family("wia_gateway_destination_pending_events", "gauge",
                   "Events handed to a destination and not yet settled (buffered, or sent without a report yet).",
                   [({"sink": name}, max(0, handed - s.delivered - s.duplicates - s.failed))
                    for name, s in sorted(per_destination.items())])
        out.family("wia_gateway_dead_lettered_events_total", "counter",
                   "Events written to the dead letter, by stage (ingest, store, destination) and destination name.",
                   [({"stage": stage, "sink": sink} if sink else {"stage": stage}, v)
                    for (stage, sink), v in sorted(d.dead_letter_counts().items())])

    hub = gw.hub
    out.family("wia_gateway_stream_clients", "gauge", "WebSocket stream connections open now.",
               [({}, len(hub.clients))])
    out.family("wia_gateway_stream_connections_total", "counter", "WebSocket stream connections accepted.",
               [({}, m.stream_connections)])
    out.family("wia_gateway_stream_max_clients", "gauge",
               "Stream connections open at once beyond which a handshake is refused (HTTP 503).",
               [({}, gw.settings.max_stream_clients)])
    out.family("wia_gateway_stream_handshakes_in_progress", "gauge",
               "Stream handshakes whose request head is still arriving (they count against the maximum).",
               [({}, gw.handshakes)])
    out.family("wia_gateway_stream_subscriptions", "gauge",
               "Subscriptions held by the open stream connections (each published event is matched against each).",
               [({}, hub.subscriptions)])
    out.family("wia_gateway_stream_max_subscriptions", "gauge",
               "Subscriptions all stream connections together may hold (--max-subscriptions).",
               [({}, gw.settings.max_subscriptions)])
    out.family("wia_gateway_stream_max_token_subscriptions", "gauge",
               "Subscriptions the stream connections of one token (anonymous: of one peer address) may hold together "
               "(--max-token-subscriptions).", [({}, gw.settings.max_token_subscriptions)])
    out.family("wia_gateway_stream_token_subscriptions_most", "gauge",
               "The most subscriptions one token (anonymous: one peer address) holds now; near the maximum, that "
               "token's next subscribe is refused.", [({}, max(hub.owner_subscriptions.values(), default=0))])
    out.family("wia_gateway_stream_subscribes_refused_total", "counter",
               "Stream subscribe messages refused for a limit, by reason: connection_limit (--max-client-subscriptions, "
               "E1001), token_limit (--max-token-subscriptions, E3003), gateway_limit (--max-subscriptions, E3003).",
               [({"reason": r}, v) for r, v in sorted(hub.subscribes_refused.items())])
    out.family("wia_gateway_stream_token_revoked_disconnects_total", "counter",
               "Stream connections closed (code 4001) because their token was removed from the token file.",
               [({}, m.stream_token_revoked)])
    files = [("tokens", gw.token_file), ("metrics_tokens", gw.metrics_token_file)]
    if any(f is not None for _, f in files):
        out.family("wia_gateway_token_file_reloads_total", "counter",
                   "New versions of a token file (file = tokens, metrics_tokens), taken or refused (the last good "
                   "stays).", [({"file": name, "outcome": outcome}, getattr(f, outcome))
                               for name, f in files if f is not None for outcome in ("taken", "refused")])
    out.family("wia_gateway_stream_queued_messages", "gauge",
               "Messages queued for stream clients and not yet written to their sockets.",
               [({}, sum(c.queued_messages() for c in list(hub.clients)))])
    out.family("wia_gateway_stream_events_published_total", "counter",
               "Events published to the stream (each gets a sequence number).", [({}, hub.published)])
    out.family("wia_gateway_stream_messages_sent_total", "counter",
               "Messages written to stream clients' sockets (events, replies, heartbeats).", [({}, hub.deliveries)])
    out.family("wia_gateway_stream_dropped_messages_total", "counter",
               "Messages dropped for slow consumers, by slow-consumer policy.",
               [({"policy": "drop_oldest"}, hub.dropped), ({"policy": "disconnect"}, hub.discarded)])
    out.family("wia_gateway_stream_slow_consumer_disconnects_total", "counter",
               "Stream clients closed with 4008 because their queue was full.", [({}, hub.slow_disconnects)])
    out.family("wia_gateway_stream_ping_timeout_disconnects_total", "counter",
               "Stream connections closed with 1011 because they answered no ping within the pong timeout.",
               [({}, m.stream_ping_timeouts)])
    out.family("wia_gateway_connections_aborted_total", "counter",
               "Connections (HTTP or stream) reset because their peer took nothing of the close for "
               "CLOSE_STALL_SECONDS.", [({}, m.connections_aborted)])

    out.family("wia_gateway_hec_acks_issued_total", "counter",
               "HEC ackIds issued (each is already true when issued: the reply comes after the store).",
               [({}, gw.hec_acks.issued)])
    out.family("wia_gateway_hec_ack_channels", "gauge", "HEC channels whose ackIds are remembered.",
               [({}, gw.hec_acks.channels)])
    return out.text()
