"""A VirusTotal API v3 contract server (docs.virustotal.com/reference): the lookups the enricher uses.

What it follows:
  - Every request needs the `x-apikey` header: missing -> 401 AuthenticationRequiredError, unknown key ->
    401 WrongCredentialsError. Errors are `{"error": {"code", "message"}}` with Content-Type application/json.
  - GET /api/v3/files/{md5|sha1|sha256}, /api/v3/urls/{id} (id = URL-safe base64 of the URL without
    padding, or its SHA-256), /api/v3/domains/{domain}, /api/v3/ip_addresses/{ip}: 200
    `{"data": {"type", "id", "links": {"self"}, "attributes": {...}}}`; unknown objects -> 404
    NotFoundError; a malformed file id -> 400 InvalidArgumentError; other methods -> 405.
  - A per-minute request quota (`quota_per_minute`) and a daily one (`quota_per_day`, reset at 00:00 UTC; the
    public API allows 4 a minute and 500 a day) -> 429 QuotaExceededError when exceeded.
  - A key that is known but not allowed the lookups (`forbidden_keys`) -> 403 ForbiddenError.
Fault injection: `faults` (see intel_http.Fault); `down = True` answers 503 TransientError.
"""
from __future__ import annotations

import base64
import hashlib
import re
import time
from typing import Any

from intel_http import ContractServer, Fault, Request  # noqa: F401 - re-exported for tests

API = "/api/v3"


def error(status: int, code: str, message: str) -> tuple[int, Any, dict[str, str]]:
    return status, {"error": {"code": code, "message": message}}, {}


class VirusTotalServer(ContractServer):
    secret_headers = ("x-apikey",)

    def __init__(self, api_key: str = "vt-test-key", quota_per_minute: int | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.quota_per_minute = quota_per_minute
        self.down = False
        self.quota_per_day: int | None = None
        self.forbidden_keys: set[str] = set()
        self._day: tuple[str, int] = ("", 0)          # (UTC date, requests counted that day)
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self._window: list[float] = []

    # -- data ------------------------------------------------------------------------------------------
    def add_file(self, sha256: str, md5: str | None = None, sha1: str | None = None, **attributes: Any) -> None:
        attrs = {"sha256": sha256, "md5": md5, "sha1": sha1, **attributes}
        for h in filter(None, (sha256, md5, sha1)):
            self.objects[("files", h.lower())] = {"type": "file", "id": sha256, "attributes": attrs}

    def add(self, collection: str, key: str, **attributes: Any) -> None:
        kind = {"urls": "url", "domains": "domain", "ip_addresses": "ip_address"}[collection]
        obj_id = hashlib.sha256(key.encode()).hexdigest() if collection == "urls" else key
        obj = {"type": kind, "id": obj_id, "attributes": {**({"url": key} if collection == "urls" else {}), **attributes}}
        self.objects[(collection, key)] = obj

    # -- protocol --------------------------------------------------------------------------------------
    def handle(self, req: Request, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if "x-apikey" not in headers:
            return error(401, "AuthenticationRequiredError", "X-Apikey header is missing")
        if headers["x-apikey"] in self.forbidden_keys:
            return error(403, "ForbiddenError", "You are not allowed to perform the requested operation")
        if headers["x-apikey"] != self.api_key:
            return error(401, "WrongCredentialsError", "Wrong API key")
        if self.down:
            return error(503, "TransientError", "Transient server error. Retry might work.")
        if self.quota_per_minute is not None:
            now = time.monotonic()
            self._window = [t for t in self._window if now - t < 60]
            if len(self._window) >= self.quota_per_minute:
                return error(429, "QuotaExceededError", "Quota exceeded")
            self._window.append(now)
        if self.quota_per_day is not None:
            today = time.strftime("%Y-%m-%d", time.gmtime())
            used = self._day[1] if self._day[0] == today else 0
            if used >= self.quota_per_day:
                return error(429, "QuotaExceededError", "Quota exceeded")
            self._day = (today, used + 1)
        if req.method != "GET":
            return error(405, "MethodNotAllowedError", f"{req.method} not allowed")
        m = re.fullmatch(rf"{API}/(files|urls|domains|ip_addresses)/([^/]+)", req.path)
        if not m:
            return error(404, "NotFoundError", f"Resource {req.path} not found")
        collection, key = m[1], m[2]
        if collection == "files":
            if not re.fullmatch(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}", key):
                return error(400, "InvalidArgumentError", f"Invalid file identifier: {key}")
            key = key.lower()
        if collection == "urls" and not re.fullmatch(r"[0-9a-f]{64}", key):
            try:
                key = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode()
            except ValueError:
                return error(400, "InvalidArgumentError", "Invalid URL identifier")
        obj = self.objects.get((collection, key))
        if obj is None:
            return error(404, "NotFoundError", f"{collection[:-1].capitalize()} \"{key}\" not found")
        return 200, {"data": {**obj, "links": {"self": f"{self.url}{req.path}"}}}, {}
