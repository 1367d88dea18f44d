"""Stand-in for the WIA gateway's feed (docs/connectors/gateway.md) for what the real gateway never does:
serve events that are not valid WIA (it validates on ingest) and fail on cue. The main flows of the
Splunk app and the XSOAR integration are tested against the real gateway (GatewayServer).

  - GET /v1/events?after=<cursor>&limit=<n> -> {"events": [...], "next": <cursor>}: events after the
    cursor in arrival order; the first cursor is "0"; `after` is required here (without it the real
    gateway answers a store query, not the feed);
  - POST /v1/events with one event -> 200 {"accepted": 1, "rejected": 0, "results": [...], "id": ...}.
Auth: `Authorization: Bearer <token>`; missing or wrong -> 401 {"error": {"code": "E2001", ...}}.
Fault injection: `faults` (intel_http.Fault).
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
            if "after" not in req.query:
                return 400, {"error": {"code": "E1001", "message": "this stand-in serves the feed only: pass after="}}, {}
            after = int(req.query["after"][-1])
            limit = int((req.query.get("limit") or ["100"])[-1])
            page = self.events[after:after + limit]
            return 200, {"events": page, "next": str(after + len(page))}, {}
        if req.path == "/v1/events" and req.method == "POST":
            if not isinstance(req.body, dict) or "id" not in req.body:
                return 400, {"error": {"code": "E1001", "name": "INVALID_MESSAGE", "message": "body must be one WIA event"}}, {}
            self.events.append(req.body)
            return 200, {"accepted": 1, "rejected": 0, "results": [{"index": 0, "status": "accepted", "id": req.body["id"]}],
                         "id": req.body["id"]}, {}
        return 404, {"error": {"code": "E3001", "name": "RESOURCE_NOT_FOUND", "message": req.path}}, {}


def plain_stix_page_with_an_unmappable_indicator(day: str) -> Fault:
    """A TAXII objects page (plain STIX, no WIA extension) of three indicators created on `day`
    (YYYY-MM-DD); the second (`/1/pattern`) has a pattern no WIA indicator type fits."""
    def indicator(n: int, pattern: str) -> dict[str, Any]:
        return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{n:08d}-0000-4000-8000-000000000000",
                "created": f"{day}T00:00:00.000Z", "modified": f"{day}T00:00:00.000Z", "name": f"ind {n}",
                "pattern_type": "stix", "valid_from": f"{day}T00:00:00.000Z", "pattern": pattern}

    objects = [indicator(1, "[ipv4-addr:value = '198.51.100.1']"), indicator(2, "[x-unknown:thing = 'zzz']"),
               indicator(3, "[domain-name:value = 'bad.example']")]
    return Fault(200, {"more": False, "objects": objects}, path_prefix="/objects/",
                 headers={"X-TAXII-Date-Added-Last": f"{day}T12:00:00.000000Z",
                          "Content-Type": "application/taxii+json;version=2.1"})
