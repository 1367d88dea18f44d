"""A Splunk HTTP Event Collector contract server: the documented HEC behaviour, in-process, on 127.0.0.1.

What it follows (Splunk "Format events for HEC", "Troubleshoot HEC" status-code table, "About HEC
indexer acknowledgment", inputs.conf.spec [http]):
  - POST /services/collector/event (also /services/collector, /services/collector/event/1.0):
    a body of JSON event objects concatenated (whitespace allowed between), optional
    `Content-Encoding: gzip`; `Authorization: Splunk <token>`.
  - Replies `{"text": ..., "code": N}`; codes and HTTP statuses: 0 Success 200; 1 Token disabled 403;
    2 Token is required 401; 3 Invalid authorization 401; 4 Invalid token 403; 5 No data 400;
    6 Invalid data format 400; 7 Incorrect index 400; 8 Internal server error 500; 9 Server is busy 503;
    10 Data channel is missing 400; 11 Invalid data channel 400; 12 Event field is required 400;
    13 Event field cannot be blank 400; 14 ACK is disabled 400; 15 Error in handling indexed fields 400;
    17 HEC is healthy (GET /services/collector/health).
  - An invalid event in a batch: the events before it are indexed, the reply is 400 with
    `invalid-event-number` (zero-based) and the events from it on are not indexed.
  - Requests larger than `max_content_length` bytes: 413.
  - Tokens with indexer acknowledgement (useACK) need a channel (`X-Splunk-Request-Channel` header or
    `channel` query parameter, a GUID); replies carry `ackId` (per channel, from 0); POST
    /services/collector/ack `{"acks": [ids]}` -> `{"acks": {"id": bool}}`.
Fault injection for tests: `faults` is a list consumed one per event request (see `Fault`).
"""
from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

EVENT_PATHS = ("/services/collector/event", "/services/collector", "/services/collector/event/1.0")
ACK_PATH = "/services/collector/ack"
HEALTH_PATH = "/services/collector/health"

TEXT = {0: "Success", 1: "Token disabled", 2: "Token is required", 3: "Invalid authorization", 4: "Invalid token",
        5: "No data", 6: "Invalid data format", 7: "Incorrect index", 8: "Internal server error",
        9: "Server is busy", 10: "Data channel is missing", 11: "Invalid data channel",
        12: "Event field is required", 13: "Event field cannot be blank", 14: "ACK is disabled",
        15: "Error in handling indexed fields", 17: "HEC is healthy"}
STATUS = {0: 200, 1: 403, 2: 401, 3: 401, 4: 403, 5: 400, 6: 400, 7: 400, 8: 500, 9: 503, 10: 400, 11: 400,
          12: 400, 13: 400, 14: 400, 15: 400, 17: 200}


@dataclass
class Fault:
    """One injected misbehaviour for the next event request.

    kind: "status" (reply `status` with HEC `code`, optional `retry_after` header, events NOT indexed),
          "accept_then_status" (index the events, then reply with `status`/`code`: a lost success),
          "delay" (sleep `seconds` before handling: client timeouts),
          "reset" (read the request, then close the connection without a reply),
          "die_mid_body" (read half of the body, then close: the server died mid-batch),
          "invalid_event" (reply 400 code `code` with invalid-event-number `index`; events before it indexed).
    """

    kind: str
    status: int = 503
    code: int = 9
    retry_after: str | None = None
    seconds: float = 0.0
    index: int = 0


@dataclass
class IndexedEvent:
    body: dict[str, Any]
    token: str
    channel: str | None


@dataclass
class HecState:
    tokens: dict[str, dict[str, Any]]                      # token -> {"ack": bool, "disabled": bool, "indexes": [..]}
    max_content_length: int = 1_000_000
    ack_after_polls: int = 1                               # an ackId turns true on this poll (0 = immediately)
    never_ack: bool = False
    keep_events: bool = True                               # False: only count (benchmarks)
    indexed_count: int = 0
    events: list[IndexedEvent] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    requests: int = 0
    event_requests: int = 0
    ack_requests: int = 0
    gzip_requests: int = 0
    channels: dict[str, dict[int, int]] = field(default_factory=dict)   # channel -> ackId -> polls seen
    lock: threading.Lock = field(default_factory=threading.Lock)


class HecHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet
        pass

    # -- helpers ---------------------------------------------------------------------------------
    def _reply(self, code: int, extra: dict[str, Any] | None = None, *, status: int | None = None,
               headers: dict[str, str] | None = None) -> None:
        body = {"text": TEXT.get(code, "Unknown"), "code": code, **(extra or {})}
        data = json.dumps(body).encode()
        self.send_response(status or STATUS.get(code, 400))
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _token(self) -> tuple[str | None, int | None]:
        """(token, error code)"""
        header = self.headers.get("Authorization")
        if header is None:
            return None, 2
        scheme, _, token = header.partition(" ")
        if scheme != "Splunk" or not token:
            return None, 3
        info = self.server.state.tokens.get(token)
        if info is None:
            return None, 4
        if info.get("disabled"):
            return None, 1
        return token, None

    def _channel(self, query: dict[str, list[str]]) -> tuple[str | None, int | None]:
        channel = self.headers.get("X-Splunk-Request-Channel") or (query.get("channel") or [None])[0]
        if channel is None:
            return None, 10
        try:
            uuid.UUID(channel)
        except ValueError:
            return None, 11
        return channel, None

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- routes ----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == HEALTH_PATH:
            self._reply(17)
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        with state.lock:
            state.requests += 1
        if parts.path == ACK_PATH:
            self._ack(query)
        elif parts.path in EVENT_PATHS:
            self._events(query)
        else:
            self._read_body()
            self.send_error(404)

    def _events(self, query: dict[str, list[str]]) -> None:
        state = self.server.state
        with state.lock:
            state.event_requests += 1
            fault = state.faults.pop(0) if state.faults else None
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "die_mid_body":
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length // 2)
            self._drop()
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > state.max_content_length:
            # Splunk answers before reading the body; the connection is then closed.
            data = json.dumps({"text": f"Content-Length of {length} too large (maximum is "
                                       f"{state.max_content_length})"}).encode()
            self.send_response(413)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
            return
        raw = self.rfile.read(length) if length else b""
        if fault is not None and fault.kind == "reset":
            self._drop()
            return
        token, error = self._token()
        if error is not None:
            self._reply(error)
            return
        info = state.tokens[token]
        channel = None
        if info.get("ack"):
            channel, error = self._channel(query)
            if error is not None:
                self._reply(error)
                return
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            self._reply(fault.code, status=fault.status, headers=headers)
            return
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            with state.lock:
                state.gzip_requests += 1
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error):
                self._reply(6)
                return
        if not raw.strip():
            self._reply(5)
            return
        events, bad = parse_events(raw, info.get("indexes"))
        if fault is not None and fault.kind == "invalid_event":
            events, bad = events[:fault.index], (fault.index, fault.code)
        with state.lock:
            state.indexed_count += len(events)
            if state.keep_events:
                state.events.extend(IndexedEvent(e, token, channel) for e in events)
        if bad is not None:
            self._reply(bad[1], {"invalid-event-number": bad[0]})
            return
        if fault is not None and fault.kind == "accept_then_status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            self._reply(fault.code, status=fault.status, headers=headers)
            return
        extra = {}
        if info.get("ack"):
            with state.lock:
                acks = state.channels.setdefault(channel, {})
                ack_id = len(acks)
                acks[ack_id] = 0
            extra["ackId"] = ack_id
        self._reply(0, extra)

    def _ack(self, query: dict[str, list[str]]) -> None:
        state = self.server.state
        raw = self._read_body()
        token, error = self._token()
        if error is not None:
            self._reply(error)
            return
        if not state.tokens[token].get("ack"):
            self._reply(14)
            return
        channel, error = self._channel(query)
        if error is not None:
            self._reply(error)
            return
        try:
            ids = json.loads(raw)["acks"]
            ids = [int(i) for i in ids]
        except (ValueError, KeyError, TypeError):
            self._reply(6)
            return
        answer: dict[str, bool] = {}
        with state.lock:
            state.ack_requests += 1
            acks = state.channels.get(channel, {})
            for i in ids:
                if i not in acks:
                    answer[str(i)] = False
                    continue
                acks[i] += 1
                answer[str(i)] = not state.never_ack and acks[i] > state.ack_after_polls - 1
        data = json.dumps({"acks": answer}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.connection.close()


def parse_events(raw: bytes, allowed_indexes: list[str] | None) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
    """(events before the first invalid one, (invalid-event-number, code) or None)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [], (0, 6)
    decoder = json.JSONDecoder()
    events: list[dict[str, Any]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            return events, None
        number = len(events)
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return events, (number, 6)
        if not isinstance(obj, dict):
            return events, (number, 6)
        if "event" not in obj:
            return events, (number, 12)
        if obj["event"] in ("", None) or obj["event"] == {}:
            return events, (number, 13)
        if allowed_indexes is not None and "index" in obj and obj["index"] not in allowed_indexes:
            return events, (number, 7)
        fields = obj.get("fields")
        if fields is not None and (not isinstance(fields, dict) or not all(
                isinstance(v, (str, int, float)) or (isinstance(v, list) and all(isinstance(x, (str, int, float)) for x in v))
                for v in fields.values())):
            return events, (number, 15)
        if "time" in obj and not isinstance(obj["time"], (int, float, str)):
            return events, (number, 6)
        events.append(obj)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], state: HecState) -> None:
        super().__init__(address, HecHandler)
        self.state = state


class HecContractServer:
    """Runs the contract server in a thread. `url` is the base (http[s]://127.0.0.1:port)."""

    def __init__(self, tokens: dict[str, dict[str, Any]], *, port: int = 0, ssl_context: Any = None,
                 **state: Any) -> None:
        self.state = HecState(tokens=tokens, **state)
        self.ssl_context = ssl_context
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "HecContractServer":
        self._server = _Server(("127.0.0.1", self._port), self.state)
        if self.ssl_context is not None:
            self._server.socket = self.ssl_context.wrap_socket(self._server.socket, server_side=True)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (the server 'dies'); `start()` again brings it back on the same port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self._port}"

    @property
    def events(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [e.body for e in self.state.events]

    def __enter__(self) -> "HecContractServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
