"""HTTP plumbing for hand-written connectors, on `requests` (pooled keep-alive connections, TLS verified).

Status classification (RFC 9110): 408, 425, 429 and 5xx except 501/505 are retryable; every other
4xx is a permanent payload or configuration error. `Retry-After` is read from 429 and 503 (and any
other retryable answer that carries it).
"""
from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

from wia_security import __version__ as _version
from wia_security.errors import DeliveryError

from .policy import parse_retry_after

#: (connect, read) timeouts in seconds for one request.
DEFAULT_TIMEOUT = (10.0, 30.0)
#: Connections kept per host: a sink posts from one thread, plus the flush timer.
POOL_SIZE = 4
USER_AGENT = f"wia-security/{_version}"

_RETRYABLE_4XX = frozenset({408, 425, 429})
_PERMANENT_5XX = frozenset({501, 505})


def is_retryable_status(status: int) -> bool:
    return status in _RETRYABLE_4XX or (500 <= status < 600 and status not in _PERMANENT_5XX)


def new_session(*, verify: bool | str = True, headers: dict[str, str] | None = None) -> requests.Session:
    """A Session with TLS verification on (pass a CA bundle path to trust a private CA), no
    automatic retries (the delivery machinery retries) and the project's User-Agent."""
    session = _Session()
    session.verify = verify
    session.trust_env = True            # honour HTTPS_PROXY / REQUESTS_CA_BUNDLE like other tools
    adapter = HTTPAdapter(pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    if headers:
        session.headers.update(headers)
    return session


class _Session(requests.Session):
    """requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a Session's own `verify`
    (psf/requests#3829); here an explicit CA path or False set on the session wins."""

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[override]
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            settings["verify"] = self.verify
        return settings


def error_for_response(response: requests.Response, reason: str | None = None, *, sink: str = "",
                       details: Any = None) -> DeliveryError:
    """A DeliveryError for a non-success response: retryable or not by status, with Retry-After."""
    status = response.status_code
    retryable = is_retryable_status(status)
    text = reason or _short_body(response)
    return DeliveryError(f"HTTP {status}{': ' + text if text else ''}", sink=sink, retryable=retryable,
                         retry_after=parse_retry_after(response.headers.get("Retry-After")) if retryable else None,
                         status=status, details=details)


def _short_body(response: requests.Response, limit: int = 300) -> str:
    try:
        text = response.text
    except Exception:  # noqa: BLE001 - a body we cannot decode is not worth failing over
        return response.reason or ""
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "") if text else (response.reason or "")
