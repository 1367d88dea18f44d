"""Constants and small helpers the gateway tests share (a uniquely named module: every test folder has its own
conftest)."""
import asyncio
import json
import socket

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def recv_json(ws, timeout: float = 5) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until(predicate, timeout: float = 15) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def consume_ids(client, count: int) -> tuple[list[str], asyncio.Future]:
    """Start reading `client`'s stream (call from a running loop): (the event ids received, in order; the task,
    done once `count` have arrived)."""
    got: list[str] = []

    async def consume() -> None:
        async for item in client.events():
            got.append(item.event["id"])
            if len(got) == count:
                return
    return got, asyncio.ensure_future(consume())


def tiny_socket(gw, rcvbuf: int = 4096) -> socket.socket:
    """A client socket whose kernel buffers little, so what the gateway sends stays in its own queue."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((gw.host, gw.port))
    return sock


async def splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 upstream_reader: asyncio.StreamReader, upstream_writer: asyncio.StreamWriter) -> None:
    """Copy bytes both ways between a client's connection and its upstream until each side ends."""
    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()
    await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


class Gate:
    """A TCP relay on 127.0.0.1 in front of a gateway, run on the test's event loop: a client given `url(path)`
    reaches the gateway through it. `shut()` stops taking connections (the client's reconnects are refused;
    relayed ones go on) and `open_to(port)` takes them again for a gateway at `port`, so a test decides when a
    client can come back after a restart. (The client's own wait cannot be relied on: a close asking for 5 s is
    capped at its max_backoff.)"""

    def __init__(self) -> None:
        self.port = 0
        self._target = 0
        self._server: asyncio.AbstractServer | None = None

    def url(self, path: str = "/v1/stream") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def open_to(self, target_port: int) -> None:
        self._target = target_port
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def shut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.close()
            return

        await splice(reader, writer, upstream_reader, upstream_writer)
