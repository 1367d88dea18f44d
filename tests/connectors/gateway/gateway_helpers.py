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


def tiny_socket(gw, rcvbuf: int = 4096) -> socket.socket:
    """A client socket whose kernel buffers little, so what the gateway sends stays in its own queue."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((gw.host, gw.port))
    return sock
