"""StreamClient.publish() within the gateway's limits for a connection, as its `subscribed` reply states them
(config.max_message_size, config.rate_limit_per_second). Real gateway (uvicorn in a thread)."""
from __future__ import annotations

import asyncio

import pytest
from gateway_helpers import TOKEN, until
from strategies import event_dicts

from wia_security.connectors.websocket_client import StreamClient, StreamError


async def started(gw) -> tuple[StreamClient, asyncio.Future]:
    client = StreamClient(gw.ws_url, token=TOKEN, initial_backoff=0.05, max_backoff=0.2)

    async def consume() -> None:                                   # events() reads the replies
        async for _ in client.events():
            pass
    consumer = asyncio.ensure_future(consume())
    await until(lambda: client.subscription_ids)
    return client, consumer


def test_a_publish_larger_than_the_gateway_takes_fails_alone_and_the_stream_stays(make_gateway):
    gw = make_gateway()

    async def run() -> tuple[str, StreamClient, dict]:
        client, consumer = await started(gw)
        big = event_dicts(1, seed=951)
        big[0].setdefault("meta", {})["raw"] = "x" * 1_100_000
        with pytest.raises(StreamError) as info:
            await client.publish(big)
        # The connection was not touched: the next publish goes through on it
        reply = await client.publish(event_dicts(1, seed=952))
        await client.close()
        consumer.cancel()
        return str(info.value), client, reply
    message, client, reply = asyncio.run(asyncio.wait_for(run(), 30))
    assert "bytes as JSON; the gateway takes at most 1048576 per message (max_message_size)" in message
    assert reply["accepted"] == 1
    # Before: the gateway closed the connection with 1009 and the caller got 'the connection closed before the reply'
    assert client.stats.close_codes == [1000] and client.stats.reconnects == 0      # 1000: its own close()


def test_publishes_one_at_a_time_keep_to_the_gateways_rate(make_gateway):
    gw = make_gateway(client_rate=10)
    events = event_dicts(35, seed=953)

    async def run() -> tuple[list[dict], StreamClient]:
        client, consumer = await started(gw)
        replies = [await client.publish([e], timeout=5) for e in events]      # each awaited, as a simple caller does
        await client.close()
        consumer.cancel()
        return replies, client
    replies, client = asyncio.run(asyncio.wait_for(run(), 60))
    # Before: past 10 a second the gateway answered E3002 without the request id, so such a publish waited for its
    # whole timeout (TimeoutError), and enough of them closed the connection with 4029
    assert [r["accepted"] for r in replies] == [1] * len(events)
    assert client.stats.errors_total == 0 and client.stats.close_codes == [1000] and client.stats.reconnects == 0
