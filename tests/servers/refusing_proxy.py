"""A forward HTTP proxy on 127.0.0.1 that refuses every request with 407, for proxy-credential tests.

It answers both forms a client sends a proxy: `CONNECT host:443` (https targets) and an absolute-URI
request (`GET http://host/...`, http targets). Its refusal page quotes the credentials it refused first,
then the request head, as a debugging or misconfigured proxy's page does, so a client that reads the
body (an http target) carries them into its error. `seen` keeps each Proxy-Authorization header it got,
so a test can check the client did send the credentials it is about.
"""
from __future__ import annotations

import base64
import json
import socketserver
import threading
from urllib.parse import quote

#: The credentials the tests put in a proxy URL: characters that must be percent-encoded there, and one
#: outside ASCII, so the encoded, decoded, UTF-8 and Latin-1 forms all differ.
USER = "proxy@corp"
PASSWORD = "S3cr\u00e9t/Pa:ss w0rd!"
#: as it is written in a proxy URL: percent-encoded
USERINFO = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}"
BASIC_UTF8 = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()               # urllib, websockets
BASIC_LATIN1 = base64.b64encode(f"{USER}:{PASSWORD}".encode("latin-1")).decode()    # requests, aiohttp
FORMS = [USERINFO, f"{USER}:{PASSWORD}", quote(PASSWORD, safe=""), PASSWORD, BASIC_UTF8, BASIC_LATIN1]


def leaked(text: str) -> list[str]:
    """The forms of the credentials found in `text`, as is or JSON-escaped (a dead-letter line)."""
    return [form for form in FORMS if form in text or json.dumps(form)[1:-1] in text]


class RefusingProxy:
    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                lines = []
                while True:
                    line = self.rfile.readline(65536)
                    if not line or line in (b"\r\n", b"\n"):
                        break
                    lines.append(line.decode("latin-1").rstrip("\r\n"))
                auth = [ln for ln in lines if ln.lower().startswith("proxy-authorization:")]
                proxy.seen += [ln.split(":", 1)[1].strip() for ln in auth]
                body = ("<html>407 credentials refused: " + "; ".join(auth) + "\n" + "\n".join(lines)
                        + "</html>").encode("latin-1")
                self.wfile.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                 b"Proxy-Authenticate: Basic realm=\"proxy\"\r\nContent-Type: text/html\r\n"
                                 b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        self._server.server_bind()
        self._server.server_activate()
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="refusing-proxy", daemon=True)
        self._thread.start()

    def url(self, userinfo: str) -> str:
        """`http://<userinfo>@127.0.0.1:<port>`; userinfo as it goes into the URL (percent-encoded)."""
        return f"http://{userinfo}@127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
