"""`wia-security serve`: the event gateway (HTTP + HEC ingest, WebSocket stream, TAXII 2.1) — needs the `server` extra.

The server code is imported only when the command runs, so the core stays standard-library-only.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from typing import Any

from ..extras import missing_package
from ..errors import ConfigError, WiaError
from ..outputs import unwritable
from .common import fail, missing_inputs, spec_path, sqlite_slashes_hint

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
MAX_PORT = 65535
UVICORN_STARTUP_FAILURE = 3        # uvicorn.config.STARTUP_FAILURE
TOKEN_ENV = "WIA_GATEWAY_TOKENS"
# GatewaySettings names a bad value by its field; the user typed the flag.
FLAG_OF_SETTING = {
    "max_body_bytes": "--max-body-bytes", "max_request_events": "--max-request-events",
    "max_inflight_body_bytes": "--max-inflight-body-bytes",
    "client_queue": "--client-queue", "client_queue_bytes": "--client-queue-bytes",
    "max_stream_clients": "--max-stream-clients", "max_connections": "--max-connections", "backlog": "--backlog",
    "max_subscriptions": "--max-subscriptions", "max_client_subscriptions": "--max-client-subscriptions",
    "max_token_subscriptions": "--max-token-subscriptions",
    "replay_events": "--replay-events", "heartbeat_seconds": "--heartbeat",
    "ping_interval_seconds": "--ping-interval", "ping_timeout_seconds": "--ping-timeout",
}


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="run the event gateway (HTTP/HEC ingest, WebSocket stream, TAXII 2.1)",
        description="Accept WIA events over HTTP (POST /v1/events: JSON, array or NDJSON) and a Splunk-HEC-compatible "
                    "endpoint, validate them, store them in the embedded SQLite store, fan them out to configured "
                    "destinations, stream them over WebSocket (/v1/stream) and serve threat intel over TAXII 2.1 "
                    f"(/taxii2/). Bearer tokens come from ${TOKEN_ENV} (comma-separated) and/or --token-file. "
                    "Protocol reference: docs/connectors/gateway.md.")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--store", default="sqlite:///wia-events.db", metavar="URL",
                   help="the embedded store (default sqlite:///wia-events.db)")
    p.add_argument("--no-store", action="store_true", help="run without the embedded store (no query API, no TAXII)")
    p.add_argument("--config", metavar="TOML", help="destinations file ([destinations.*], as for forward --config)")
    p.add_argument("--to", dest="destinations", action="append", default=[], metavar="URL",
                   help="an extra destination URL (repeatable), e.g. kafka://broker:9092/wia-events")
    p.add_argument("--dead-letter", default="wia-dead-letter.ndjson", metavar="SPEC",
                   help="where refused events go with the reason: a path, sqlite:///x.db, or sink+URL")
    p.add_argument("--token-file", metavar="PATH",
                   help="bearer tokens, one per line; re-read when it changes and on SIGHUP (streams of a removed "
                        "token close with 4001)")
    p.add_argument("--allow-anonymous", action="store_true",
                   help="accept requests without a token (local development only)")
    p.add_argument("--metrics-token-file", metavar="PATH",
                   help="tokens accepted on GET /metrics only, one per line (also $WIA_GATEWAY_METRICS_TOKENS); "
                        "re-read when it changes and on SIGHUP")
    p.add_argument("--metrics-anonymous", action="store_true",
                   help="serve GET /metrics without a token (counts only; for a scraper on a private network)")
    p.add_argument("--lenient", action="store_true", help="treat optional null fields as absent")
    p.add_argument("--max-body-bytes", type=int, metavar="N", help="largest request body (default 10 MiB); 413 beyond")
    p.add_argument("--max-request-events", type=int, metavar="N",
                   help="most events (values) in one request or stream publish (default 50000); 413 beyond")
    p.add_argument("--max-inflight-body-bytes", type=int, metavar="N",
                   help="request bodies held at once, in bytes (default 64 MiB); 503 with Retry-After beyond")
    p.add_argument("--client-queue", type=int, metavar="N", help="messages queued per stream client (default 1000)")
    p.add_argument("--client-queue-bytes", type=int, metavar="N",
                   help="message text queued per stream client, in bytes (default 16 MiB)")
    p.add_argument("--max-stream-clients", type=int, metavar="N",
                   help="stream connections open at once (default 1000); beyond, the handshake is HTTP 503 "
                        "with Retry-After")
    p.add_argument("--max-connections", type=int, metavar="N",
                   help="HTTP and stream connections open at once (default 4096, or fewer when ulimit -n is low); "
                        "a connection beyond is answered HTTP 503 with Retry-After; must be above --max-stream-clients")
    p.add_argument("--backlog", type=int, metavar="N",
                   help="connections the listening socket queues before they are accepted, and accepts at once (default 64)")
    p.add_argument("--max-subscriptions", type=int, metavar="N",
                   help="stream subscriptions all connections together may hold (default 10000); a subscribe "
                        "beyond gets error E3003")
    p.add_argument("--max-client-subscriptions", type=int, metavar="N",
                   help="stream subscriptions one connection may hold (default 100); a subscribe beyond gets "
                        "error E1001")
    p.add_argument("--max-token-subscriptions", type=int, metavar="N",
                   help="stream subscriptions the connections of one token may hold together (default 1000; with "
                        "--allow-anonymous, of one peer address); a subscribe beyond gets error E3003")
    p.add_argument("--slow-consumer", choices=("disconnect", "drop_oldest"), default="disconnect",
                   help="what to do with a stream client whose queue is full (default disconnect, close code 4008)")
    p.add_argument("--replay-events", type=int, metavar="N", help="events kept for stream resume (default 10000)")
    p.add_argument("--heartbeat", type=float, metavar="SECONDS", help="stream heartbeat interval (default 30)")
    p.add_argument("--ping-interval", type=float, metavar="SECONDS",
                   help="WebSocket ping interval on the stream (default 20; liveness of silent peers)")
    p.add_argument("--ping-timeout", type=float, metavar="SECONDS",
                   help="close a stream peer with 1011 that has not answered a ping within this (default 20)")
    p.add_argument("--no-taxii", action="store_true", help="do not serve the TAXII 2.1 endpoint")
    p.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS/WSS with this certificate chain")
    p.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                   help="gateway and access log level on standard error (default info)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import ssl                      # here, not at import: every CLI command imports this module's parser

    try:
        from wia_security.connectors.gateway import GatewaySettings, load_tokens
        from wia_security.connectors.gateway.settings import METRICS_TOKEN_ENV
        from wia_security.connectors.gateway.server import run as serve
    except ModuleNotFoundError as exc:
        return fail(f"the gateway: {missing_package(exc, 'server') or exc}")
    if bool(args.tls_cert) != bool(args.tls_key):
        return fail("--tls-cert and --tls-key go together")
    if not 1 <= args.port <= MAX_PORT:
        return fail(f"--port: must be 1 to {MAX_PORT}")
    # GatewaySettings does not check the heartbeat; at 0 each stream would be sent heartbeats without pause.
    if args.heartbeat is not None and not 0 < args.heartbeat < math.inf:
        return fail("--heartbeat: must be a number of seconds above 0")
    overrides = {k: v for k, v in {
        "max_body_bytes": args.max_body_bytes, "max_request_events": args.max_request_events,
        "max_inflight_body_bytes": args.max_inflight_body_bytes,
        "client_queue": args.client_queue,
        "client_queue_bytes": args.client_queue_bytes, "max_stream_clients": args.max_stream_clients,
        "max_connections": args.max_connections, "backlog": args.backlog,
        "max_subscriptions": args.max_subscriptions, "max_client_subscriptions": args.max_client_subscriptions,
        "max_token_subscriptions": args.max_token_subscriptions,
        "replay_events": args.replay_events, "heartbeat_seconds": args.heartbeat,
        "ping_interval_seconds": args.ping_interval, "ping_timeout_seconds": args.ping_timeout}.items() if v is not None}
    try:
        settings = GatewaySettings(
            tokens=load_tokens(env=TOKEN_ENV), token_file=args.token_file, allow_anonymous=args.allow_anonymous,
            store=None if args.no_store else args.store, destinations=args.config, extra_sinks=args.destinations,
            dead_letter=args.dead_letter, lenient=args.lenient, slow_consumer=args.slow_consumer,
            taxii=not args.no_taxii, metrics_tokens=load_tokens(env=METRICS_TOKEN_ENV),
            metrics_token_file=args.metrics_token_file,
            metrics_anonymous=args.metrics_anonymous, **overrides)
        settings.check()
    except ConfigError as exc:
        return _config_failure(exc)
    except (WiaError, OSError) as exc:
        return fail(exc)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.allow_anonymous and not settings.tokens and not settings.token_file:
        logging.getLogger("wia_security.gateway").warning("authentication is OFF (--allow-anonymous)")
    if args.metrics_anonymous:
        logging.getLogger("wia_security.gateway").warning("GET /metrics is served without a token (--metrics-anonymous)")
    problem = _startup_problem(args, settings.dead_letter)
    if problem:
        return fail(problem)
    try:
        serve(settings, args.host, args.port, ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key,
              log_level=args.log_level)
    except ssl.SSLError as exc:          # OpenSSL's reason alone ('[SSL] PEM lib') names neither file
        return fail(f"--tls-cert {args.tls_cert}, --tls-key {args.tls_key}: not a PEM certificate chain and its "
                    f"private key ({exc})")
    except ConfigError as exc:           # a connection maximum the open files limit does not allow (fit_connections)
        return _config_failure(exc)
    except (WiaError, OSError) as exc:
        return fail(exc)
    except SystemExit as exc:
        if exc.code != UVICORN_STARTUP_FAILURE:
            raise
        # uvicorn logged why (a port in use; destinations are opened before it starts) and exits 3, a status
        # this command does not document: a usage or I/O error is 2
        return fail("the gateway did not start (the reason is logged above)")
    return 0


def _config_failure(exc: ConfigError) -> int:
    flag = FLAG_OF_SETTING.get(exc.key or "")
    return fail(f"{flag}: {exc.reason}" if flag and not exc.source else exc)


def _startup_problem(args: argparse.Namespace, dead_letter: str) -> str | None:
    """A TLS file that cannot be read, or a store, dead letter or file destination that cannot be written,
    found before uvicorn starts: there it is a traceback in the log and exit status 3."""
    if args.tls_cert and missing_inputs([args.tls_cert, args.tls_key]):
        return "cannot read the TLS certificate or key (--tls-cert, --tls-key)"
    specs = [("--store", args.store)] if not args.no_store else []
    specs += [("--dead-letter", dead_letter)] + [("--to", url) for url in args.destinations or []]
    if args.config:
        # Loaded here as the gateway will load it: a bad file or a store it cannot open would otherwise be a
        # traceback in the startup log.
        from wia_security.connectors.config import load_config
        try:
            config = load_config(args.config)
        except WiaError as exc:
            return f"--config: {exc}"
        specs += [(f"--config {args.config}: destinations.{d.name}.url", d.url) for d in config.destinations]
    for flag, spec in specs:
        try:
            path = spec_path(spec)
        except WiaError as exc:
            return f"{flag}: {exc}"
        problem = unwritable(path) if path and path != "-" else None
        if problem:
            return f"{flag} {spec}: cannot write {path}: {problem}{sqlite_slashes_hint(spec, path or '')}"
    return None
