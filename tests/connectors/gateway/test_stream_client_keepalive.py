"""StreamClient's keepalive on the real gateway: a connection whose gateway stops answering (the path between
them frozen: a NAT or a proxy that dropped the flow without a FIN) is closed with 1011 within ping_interval +
ping_timeout and the client reconnects and resumes, nothing lost. A relay on the test's event loop stands for
the path; it can freeze the connections it carries."""
from __future__ import annotations

import asyncio

import pytest
import requests
from gateway_helpers import AUTH, TOKEN, consume_ids, until
from strategies import event_dicts

from wia_security.connectors.websocket_client import StreamClient


class FreezingRelay:
    """Relays TCP to 127.0.0.1:`target`; freeze() stops moving bytes on every connection open now (they stay open,
    as a silently dropped flow does), while connections made afterwards are relayed again."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.frozen: list[asyncio.Event] = []
        self.port = 0
        self._stop = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> "FreezingRelay":
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def freeze(self) -> None:
        for flag in self.frozen:
            flag.set()

    async def close(self) -> None:
        """Ends every relayed connection and lets its task finish (a task cancelled at the loop's end is logged)."""
        self._server.close()
        self._stop.set()
        for writer in self._writers:
            writer.close()
        await asyncio.sleep(0.2)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers += [writer, upstream_writer]
        frozen = asyncio.Event()
        self.frozen.append(frozen)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    if frozen.is_set():
                        await self._stop.wait()           # nothing more goes through, nothing is closed
                        return
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


def test_a_gateway_that_stops_answering_is_left_and_the_stream_resumes(make_gateway, caplog):
    caplog.set_level("INFO", logger="wia_security.connectors.websocket_client")
    gw = make_gateway()
    events = event_dicts(20, seed=961)

    async def run() -> tuple[list[str], StreamClient]:
        relay = await FreezingRelay(gw.port).start()
        client = StreamClient(f"ws://127.0.0.1:{relay.port}/v1/stream", token=TOKEN, initial_backoff=0.05,
                              max_backoff=0.2, ping_interval=0.5, ping_timeout=0.5)
        got, consumer = consume_ids(client, len(events))
        await until(lambda: client.subscription_ids)
        await asyncio.to_thread(requests.post, gw.url + "/v1/events", json=events[:10], headers=AUTH)
        await until(lambda: len(got) == 10)
        relay.freeze()
        await asyncio.to_thread(requests.post, gw.url + "/v1/events", json=events[10:], headers=AUTH)
        await asyncio.wait_for(consumer, 20)        # before: read from the frozen path until the gateway's own
        await client.close()                        # keepalive dropped it (40 s at its defaults), then for ever
        await relay.close()
        return got, client
    got, client = asyncio.run(asyncio.wait_for(run(), 40))
    assert got == [e["id"] for e in events]
    # None: no close frame came back from the frozen path (the client sent 1011, 'keepalive ping timeout')
    assert client.stats.close_codes[0] is None and client.stats.reconnects == 1 and client.stats.replayed == 10
    assert "keepalive ping timeout" in caplog.text


@pytest.mark.parametrize("value", [None, 0, -1, float("inf"), True])
def test_the_clients_keepalive_cannot_be_turned_off(value):
    with pytest.raises(ValueError, match="above 0"):
        StreamClient("ws://127.0.0.1:9/v1/stream", token=TOKEN, ping_interval=value)
