"""An AlienVault OTX DirectConnect API v1 contract server (otx.alienvault.com/api): subscribed pulses.

What it follows:
  - `X-OTX-API-KEY` header required: missing or unknown -> 403 `{"detail": "Authentication credentials were
    not provided."}` / `{"detail": "Invalid API key"}` (Django REST framework style, as OTX answers).
  - GET /api/v1/pulses/subscribed?limit=N&page=P&modified_since=ISO: pulses whose `modified` is after
    `modified_since`, ordered by `modified` ascending; `{"count", "next", "previous", "results"}` where
    `next`/`previous` are absolute URLs of the neighbouring pages (null at the ends). `limit` 1..100
    (default 10 here); a bad `modified_since` or `limit` -> 400 `{"detail": ...}`.
  - Throttling -> 429 with `Retry-After` (via faults).
Fault injection: `faults` (see intel_http.Fault); `next_host` rewrites `next` links to another origin.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from intel_http import ContractServer, Fault, Request  # noqa: F401 - re-exported for tests

PATH = "/api/v1/pulses/subscribed"


def _parse(value: str) -> datetime:
    """OTX times are UTC; accept them with or without a zone, compare as naive UTC."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt


class OtxServer(ContractServer):
    secret_headers = ("x-otx-api-key",)

    def __init__(self, api_key: str = "otx-test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.pulses: list[dict[str, Any]] = []
        self.next_host: str | None = None

    def handle(self, req: Request, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        key = headers.get("x-otx-api-key")
        if key is None:
            return 403, {"detail": "Authentication credentials were not provided."}, {}
        if key != self.api_key:
            return 403, {"detail": "Invalid API key"}, {}
        if req.method != "GET" or req.path != PATH:
            return 404, {"detail": "Not found."}, {}
        q = {k: v[-1] for k, v in req.query.items()}
        try:
            limit = int(q.get("limit", 10))
            page = int(q.get("page", 1))
            if not 1 <= limit <= 100 or page < 1:
                raise ValueError
        except ValueError:
            return 400, {"detail": "Invalid limit or page."}, {}
        pulses = sorted(self.pulses, key=lambda p: _parse(p["modified"]))
        if "modified_since" in q:
            try:
                since = _parse(q["modified_since"])
            except ValueError:
                return 400, {"detail": "Invalid modified_since."}, {}
            pulses = [p for p in pulses if _parse(p["modified"]) > since]
        chunk = pulses[(page - 1) * limit: page * limit]
        base = (self.next_host or self.url) + PATH

        def link(n: int) -> str | None:
            if n < 1 or (n - 1) * limit >= len(pulses):
                return None
            return base + "?" + urlencode({**{k: v for k, v in q.items() if k != "page"}, "page": n})

        return 200, {"count": len(pulses), "next": link(page + 1), "previous": link(page - 1) if page > 1 else None,
                     "results": chunk}, {}
