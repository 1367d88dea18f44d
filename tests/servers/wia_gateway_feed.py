"""Stand-in for the WIA gateway's event feed, as the Splunk app's modular input and the XSOAR integration consume it.

Until the gateway (`wia-security serve`) lands, this pins the two calls they make:
  - GET /v1/events?after=<cursor>&limit=<n> -> {"events": [...], "next": <cursor>}: events after the
    cursor in arrival order, at most `limit`; the cursor is opaque (here the position as a string);
  - POST /v1/events with one WIA event as the JSON body -> 202 {"accepted": 1, "id": <event id>}.
Auth: `Authorization: Bearer <token>`; missing or wrong -> 401 {"error": {"code": "E2001", ...}}
(the WIA Phase-3 error codes). Fault injection: `faults` (intel_http.Fault).
"""
from __future__ import annotations

from typing import Any

from intel_http import ContractServer, Fault, Request  # noqa: F401 - re-exported for tests


class GatewayFeed(ContractServer):
    secret_headers = ("authorization",)

    def __init__(self, token: str = "gateway-test-token") -> None:
        super().__init__()
        self.token = token
        self.events: list[dict[str, Any]] = []

    def handle(self, req: Request, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error": {"code": "E2001", "name": "AUTH_REQUIRED", "message": "a valid bearer token is required"}}, {}
        if req.path == "/v1/events" and req.method == "GET":
            after = int((req.query.get("after") or ["0"])[-1])
            limit = int((req.query.get("limit") or ["100"])[-1])
            page = self.events[after:after + limit]
            return 200, {"events": page, "next": str(after + len(page))}, {}
        if req.path == "/v1/events" and req.method == "POST":
            if not isinstance(req.body, dict) or "id" not in req.body:
                return 400, {"error": {"code": "E1001", "name": "INVALID_MESSAGE", "message": "body must be one WIA event"}}, {}
            self.events.append(req.body)
            return 202, {"accepted": 1, "id": req.body["id"]}, {}
        return 404, {"error": {"code": "E3001", "name": "RESOURCE_NOT_FOUND", "message": req.path}}, {}
