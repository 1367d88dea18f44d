"""Requests a web page makes are refused: the gateway serves no page, so a browser's cross-site request is an attack.

A page on any site can make the browser POST to the gateway (a form or `fetch` with a "simple" content type needs
no CORS preflight) and open a WebSocket to it (no same-origin policy at all), and the browser adds what it holds
for the gateway's origin: Basic credentials typed into its TAXII 401 prompt, or nothing when `--allow-anonymous`
needs nothing. So a page could inject events, add TAXII objects, or read the whole event stream of a gateway on
the user's machine or network (cross-site request forgery, cross-site WebSocket hijacking). Forwarders, SDKs and
`curl` send neither `Origin` nor `Sec-Fetch-Site`; browsers send them on exactly these requests. Refused here:
a WebSocket handshake or a request with another method than GET/HEAD/OPTIONS (the reads: a page cannot see
their answers) whose `Sec-Fetch-Site` is `cross-site` or `same-site`, or whose `Origin` is not the gateway's
own (scheme, host and port of the request, either scheme: TLS may end at a proxy in front).

A page the browser takes for the gateway's own origin is refused too, reads included: the gateway serves no page,
so a script whose origin is the gateway's (`Sec-Fetch-Site: same-origin` on a fetch, XHR or WebSocket, not a
navigation) comes from a DNS-rebinding page: a site whose name its DNS first points at its own server, then at
the gateway's address, so that the browser sends the page's requests to the gateway as same-origin ones, answers
readable. With `--allow-anonymous` such a page could read and write every event; the name it uses is its own, so
the browser holds no credentials for it. A user's own navigation (typing a TAXII URL) stays open.
"""
from __future__ import annotations

import json
from typing import Any, Callable

#: Methods whose answers a page cannot read and that change nothing: never refused here.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: `Sec-Fetch-Site` values of a request a page on another site made.
CROSS_SITE = frozenset({b"cross-site", b"same-site"})
MESSAGE = ("a request from a web page on another site (Origin or Sec-Fetch-Site says so) is refused: the gateway "
           "serves no page, so only a cross-site attack makes one; send from a forwarder, an SDK or curl")


def cross_site(scope: dict[str, Any]) -> bool:
    """Whether the request came from a page of another site, or from a script of a page taken for the gateway's own
    (see the module docstring)."""
    headers = dict(scope.get("headers") or ())
    if headers.get(b"sec-fetch-site", b"").strip().lower() == b"same-origin" \
            and headers.get(b"sec-fetch-mode", b"").strip().lower() != b"navigate":
        return True
    if scope["type"] == "http" and scope.get("method", "GET") in SAFE_METHODS:
        return False
    if headers.get(b"sec-fetch-site", b"").strip().lower() in CROSS_SITE:
        return True
    origin = headers.get(b"origin")
    if origin is None:
        return False
    host = headers.get(b"host", b"").strip().lower()
    own = {b"http://" + host, b"https://" + host}
    return not host or origin.strip().lower() not in own


class RefuseCrossSite:
    """ASGI middleware: 403 (E2002) for a cross-site request, counted by `on_refused(path)` before the route runs."""

    def __init__(self, app: Any, on_refused: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.on_refused = on_refused

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or not cross_site(scope):
            await self.app(scope, receive, send)
            return
        if self.on_refused is not None:
            self.on_refused(scope.get("path", ""))
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})      # before accept: the handshake gets 403
            return
        body = json.dumps({"error": {"code": "E2002", "message": MESSAGE}}).encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
