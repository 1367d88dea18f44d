"""StreamClient under a long outage, an untrusted gateway certificate and a server flooding it with messages
it cannot use. Real `websockets` connections: the gateway (`GatewayServer`, uvicorn in a thread) where it
shows the behaviour, a port where nothing listens, and a small `websockets` server for what the gateway
never does (malformed messages by the thousand)."""
from __future__ import annotations

import asyncio
import socket

import pytest

from wia_security.connectors.websocket_client import StreamClient, StreamError


def closed_port() -> int:
    """A loopback port where nothing listens (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_long_outage_does_not_end_the_stream_with_an_overflow():
    """The backoff ceiling was initial_backoff * 2 ** (attempt - 1): after 1,024 failed attempts in a row (about
    four hours of a gateway away, at the defaults) 2 ** 1024 did not fit a float and events() raised
    OverflowError, ending every consumer at the very moment it should keep trying."""
    async def run() -> None:
        client = StreamClient(f"ws://127.0.0.1:{closed_port()}/v1/stream", token="t" * 20, initial_backoff=1e-5,
                              max_backoff=2e-5, max_attempts=1100)
        with pytest.raises(StreamError, match="gave up after 1100 reconnect attempts"):
            async for _ in client.events():
                pass
    asyncio.run(asyncio.wait_for(run(), 60))
