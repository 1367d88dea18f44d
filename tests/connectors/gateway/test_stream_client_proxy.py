"""StreamClient through an HTTP proxy (CONNECT, RFC 9110 section 9.3.6), and URLs it cannot use.

The proxy is a contract test server on the test's event loop: it answers CONNECT with 200 and relays to the
real gateway, or refuses with a status as a proxy's access rules (403) or its authentication (407) do. A refusal
no retry can mend ends the stream at once with an error naming the proxy, never its credentials; a proxy's
5xx is retried. A URL or proxy URL the client cannot use is refused without quoting its credentials."""
from __future__ import annotations

import asyncio
import base64
import logging

import pytest
import requests
from gateway_helpers import AUTH, TOKEN, consume_ids, splice, until
from strategies import event_dicts

from wia_security.connectors.websocket_client import StreamClient, StreamError

PROXY_USER, PROXY_PASSWORD = "proxy-user", "Pr0xy-S3cret-pa55word"


class ConnectProxy:
    """An HTTP proxy that answers CONNECT with `status` (200: a tunnel to the host and port asked for)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[str, str | None]] = []     # (request line, Proxy-Authorization)
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    def url(self, credentials: bool = True) -> str:
        user_info = f"{PROXY_USER}:{PROXY_PASSWORD}@" if credentials else ""
        return f"http://{user_info}127.0.0.1:{self.port}"

    async def start(self) -> "ConnectProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        auth = next((line.split(":", 1)[1].strip() for line in head[1:]
                     if line.lower().startswith("proxy-authorization:")), None)
        self.requests.append((head[0], auth))
        if self.status != 200:
            writer.write(f"HTTP/1.1 {self.status} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            writer.close()
            return
        host, _, port = head[0].split()[1].rpartition(":")
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        await splice(reader, writer, upstream_reader, upstream_writer)


def test_the_stream_goes_through_an_http_proxy_with_its_credentials(make_gateway):
    gw = make_gateway()
    events = event_dicts(5, seed=901)

    async def run() -> ConnectProxy:
        proxy = await ConnectProxy().start()
        client = StreamClient(gw.ws_url, token=TOKEN, proxy=proxy.url())
        got, consumer = consume_ids(client, len(events))
        await until(lambda: client.subscription_ids)
        await asyncio.to_thread(requests.post, gw.url + "/v1/events", json=events, headers=AUTH)
        await asyncio.wait_for(consumer, 15)
        await client.close()
        proxy.close()
        assert got == [e["id"] for e in events]
        return proxy
    proxy = asyncio.run(run())
    basic = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
    assert proxy.requests == [(f"CONNECT 127.0.0.1:{gw.port} HTTP/1.1", f"Basic {basic}")]


@pytest.mark.parametrize("status", [403, 407])
def test_a_proxy_refusing_the_tunnel_ends_the_stream_at_once_without_its_credentials(make_gateway, status, caplog):
    caplog.set_level(logging.DEBUG)
    gw = make_gateway()

    async def run() -> tuple[ConnectProxy, str]:
        proxy = await ConnectProxy(status).start()
        client = StreamClient(gw.ws_url, token=TOKEN, proxy=proxy.url(), initial_backoff=0.01, max_backoff=0.05)
        with pytest.raises(StreamError) as info:
            await asyncio.wait_for(anext(client.events()), 10)     # before the fix: retried until this timeout
        proxy.close()
        return proxy, str(info.value)
    proxy, message = asyncio.run(run())
    assert len(proxy.requests) == 1                                  # asked once, not again and again
    assert f"the HTTP proxy http://127.0.0.1:{proxy.port} refused a tunnel to 127.0.0.1:{gw.port} (HTTP {status})" \
        in message
    for secret in (PROXY_PASSWORD, PROXY_USER, TOKEN):
        assert secret not in message and secret not in caplog.text


def test_a_proxy_whose_upstream_fails_is_retried():
    async def run() -> tuple[ConnectProxy, str]:
        proxy = await ConnectProxy(502).start()
        client = StreamClient("ws://127.0.0.1:9/v1/stream", token=TOKEN, proxy=proxy.url(credentials=False),
                              initial_backoff=0.01, max_backoff=0.02, max_attempts=3)
        with pytest.raises(StreamError) as info:
            await asyncio.wait_for(anext(client.events()), 10)
        proxy.close()
        return proxy, str(info.value)
    proxy, message = asyncio.run(run())
    assert message == "gave up after 3 reconnect attempts" and len(proxy.requests) == 4


def test_a_proxy_url_that_cannot_be_used_is_an_error_without_its_credentials():
    client = StreamClient("ws://127.0.0.1:9/v1/stream", token=TOKEN,
                          proxy=f"http://{PROXY_USER}:{PROXY_PASSWORD}@proxy.example:3128/path")

    async def run() -> str:
        with pytest.raises(StreamError) as info:
            await asyncio.wait_for(anext(client.events()), 10)
        return str(info.value)
    message = asyncio.run(run())
    assert message.startswith("the proxy http://proxy.example:3128/path for ws://127.0.0.1:9/v1/stream cannot be used")
    assert PROXY_PASSWORD not in message


@pytest.mark.parametrize("url, fragment", [
    (f"https://user:{PROXY_PASSWORD}@gw.example/v1/stream", "scheme isn't ws or wss"),
    (f"ws://gw.example:99999/v1/stream?token={PROXY_PASSWORD}", "Port out of range"),
    (f"ws://user:{PROXY_PASSWORD}@[::1/v1/stream", "Invalid IPv6 URL"),
])
def test_a_stream_url_that_cannot_be_used_is_refused_at_once_without_its_secrets(url, fragment):
    # websockets' InvalidURI quoted the URL whole, password and query alike, and came only out of events()
    with pytest.raises(ValueError) as info:
        StreamClient(url, token=TOKEN)
    assert fragment in str(info.value) and PROXY_PASSWORD not in str(info.value)
