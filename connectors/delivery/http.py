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
#: Headers given to new_session that carry no credential; every other one is dropped on a redirect
#: that leaves the origin (see _Session.rebuild_auth).
PLAIN_HEADERS = frozenset({"accept", "content-type", "user-agent", "version"})

_RETRYABLE_4XX = frozenset({408, 425, 429})
_PERMANENT_5XX = frozenset({501, 505})


def is_retryable_status(status: int) -> bool:
    return status in _RETRYABLE_4XX or (500 <= status < 600 and status not in _PERMANENT_5XX)


def new_session(*, verify: bool | str = True, headers: dict[str, str] | None = None) -> requests.Session:
    """A Session with TLS verification on (pass a CA bundle path to trust a private CA), no
    automatic retries (the delivery machinery retries) and the project's User-Agent. Headers other
    than PLAIN_HEADERS are taken for credentials: a redirect to another origin does not carry them."""
    session = _Session()
    session.verify = verify
    session.trust_env = True            # honour HTTPS_PROXY / REQUESTS_CA_BUNDLE like other tools
    # ...but not ~/.netrc: requests adds Basic auth from it to any request without an auth of its own, which
    # replaces a header credential (HEC's "Authorization: Splunk <token>") or sends a user's password beside an
    # API key. The configured credentials are the only ones sent; a connector that uses Basic sets its own auth.
    session.auth = configured_credentials_only
    adapter = HTTPAdapter(pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    if headers:
        session.headers.update(headers)
        session.credential_headers = frozenset(k.lower() for k in headers) - PLAIN_HEADERS
    return session


def configured_credentials_only(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """A requests auth that adds nothing (the credentials are in the session's headers): keeps .netrc out."""
    return request


class _Session(requests.Session):
    """requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a Session's own `verify`
    (psf/requests#3829); here an explicit CA path or False set on the session wins.

    requests drops only `Authorization` when a redirect leaves the host (or goes from https to http);
    an API key in a header of its own (X-OTX-API-KEY, ph-auth-token, QRadar's SEC) went on to wherever
    a Location header pointed. Those are dropped too."""

    credential_headers: frozenset[str] = frozenset()

    def rebuild_auth(self, prepared_request, response):  # type: ignore[override]
        # requests' own rebuild_auth strips Authorization as below, then adds ~/.netrc's credentials for the
        # redirect's host (with trust_env), which replaced a token header even on a same-host 307: not called.
        if self.should_strip_auth(response.request.url, prepared_request.url):
            for name in [n for n in prepared_request.headers
                         if n.lower() == "authorization" or n.lower() in self.credential_headers]:
                del prepared_request.headers[name]

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
