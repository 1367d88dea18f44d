"""A QRadar REST API contract server for `GET /api/siem/offenses`, as IBM's API reference documents it.

- Authentication: the `SEC` header holds an authorized service token; without a valid one the
  API answers 401 with a JSON error body (`http_response`, `code`, `message`, `description`).
- `Version` header: the API version; an unsupported one answers 406 (Not Acceptable).
- Paging: `Range: items=x-y` (inclusive, zero-based) returns that slice with `Content-Range:
  items x-y/total`; a range that starts beyond the end returns no records with `Content-Range: items */total`
  (IBM's "Paging syntax": items=3-5 of fewer than 3 records); no Range returns everything.
- `filter=`: clauses `status = "OPEN"` and `id > N` joined by `and`, each optionally in parentheses (the
  forms used here; QRadar's filter syntax has more); anything else: 422 invalid syntax.
- `sort=+field` / `-field` orders by that field (ascending / descending); without it, by id.
"""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

SUPPORTED_VERSIONS = {"19.0", "20.0", "26.0"}


def _error(status: int, message: str, description: str) -> dict[str, Any]:
    reasons = {401: "Unauthorized", 406: "Not Acceptable", 416: "Requested Range Not Satisfiable",
               422: "Unprocessable Entity"}
    return {"http_response": {"code": status, "message": reasons.get(status, "")}, "code": status,
            "message": message, "description": description, "details": {}}


class QRadarContract:
    def __init__(self, offenses: list[dict[str, Any]], token: str) -> None:
        self.offenses, self.token = offenses, token
        self.requests: list[dict[str, str]] = []
        self.paths: list[str] = []
        contract = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                contract.requests.append({k: v for k, v in self.headers.items()})
                contract.paths.append(self.path)
                status, body, headers = contract.answer(self.path, self.headers)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def answer(self, path: str, headers: Any) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(path)
        if parts.path != "/api/siem/offenses":
            return 404, _error(404, "Not found", "no such endpoint"), {}
        if headers.get("SEC") != self.token:
            return 401, _error(401, "No SEC header present in request. Please provide it and try again.",
                               "Authentication failed"), {}
        if headers.get("Version") not in SUPPORTED_VERSIONS:
            return 406, _error(406, f"Version {headers.get('Version')} is not supported", "unsupported version"), {}
        items = self.offenses
        query = parse_qs(parts.query)
        if "filter" in query:
            for clause in re.split(r"\s+and\s+", query["filter"][0].strip(), flags=re.IGNORECASE):
                clause = clause.strip()
                while clause.startswith("(") and clause.endswith(")"):
                    clause = clause[1:-1].strip()
                status = re.fullmatch(r'status\s*=\s*"?(\w+)"?', clause)
                above = re.fullmatch(r"id\s*>\s*(\d+)", clause)
                if status:
                    items = [o for o in items if o["status"] == status.group(1)]
                elif above:
                    items = [o for o in items if o["id"] > int(above.group(1))]
                else:
                    return 422, _error(422, "Invalid filter syntax", query["filter"][0]), {}
        order = query.get("sort", ["+id"])[0]
        if not re.fullmatch(r"[+-]\w+", order):
            return 422, _error(422, "Invalid sort syntax", order), {}
        items = sorted(items, key=lambda o: (o.get(order[1:]) is None, o.get(order[1:]) or 0),
                       reverse=order.startswith("-"))
        total = len(items)
        wanted = headers.get("Range")
        if not wanted:
            return 200, items, {}
        match = re.fullmatch(r"items=(\d+)-(\d+)", wanted)
        if not match:
            return 422, _error(422, "Invalid Range header", wanted), {}
        first, last = int(match.group(1)), int(match.group(2))
        if first >= total:
            return 200, [], {"Content-Range": f"items */{total}"}
        page = items[first:last + 1]
        return 200, page, {"Content-Range": f"items {first}-{first + len(page) - 1}/{total}"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ScriptedQRadar(QRadarContract):
    """Answers every offenses request with one fixed reply (status, body, headers), for error answers."""

    def __init__(self, reply: tuple[int, Any, dict[str, str]], token: str) -> None:
        super().__init__([], token)
        self.reply = reply

    def answer(self, path: str, headers: Any) -> tuple[int, Any, dict[str, str]]:
        return self.reply


def offenses(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "description": f"Multiple Login Failures for user{i}\n", "status": "OPEN" if i % 3 else "CLOSED",
             "severity": i % 11, "magnitude": i % 10, "credibility": 3, "relevance": 4, "offense_type": 3,
             "offense_source": f"user{i}", "categories": ["Authentication"], "event_count": 10 + i, "flow_count": 0,
             "assigned_to": "admin" if i % 2 else None, "start_time": 1765704600000 + i * 1000,
             "last_updated_time": 1765704700000 + i * 1000, "close_time": 1765704800000 if i % 3 == 0 else None}
            for i in range(1, n + 1)]


@pytest.fixture
def qradar_api() -> Iterator[QRadarContract]:
    server = QRadarContract(offenses(120), token="7e0a1b2c-test-token")
    yield server
    server.close()
