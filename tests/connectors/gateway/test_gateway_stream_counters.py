"""The stream's write counters, checked on the Hub directly (no socket needed): `Client.sent` is what the
drop_oldest stuck-peer check compares across its grace (a client whose count does not move is dropped), and
`Hub.deliveries` is wia_gateway_stream_messages_sent_total. The sender counts inline in its per-message loop
(a helper coroutine per message cost the fan-out ~5%), so both paths, live events and a resume's replay, are
pinned here."""
from __future__ import annotations

import asyncio

from strategies import event_dicts

from wia_security.connectors.gateway.stream import Client, Hub


def test_every_message_written_is_counted_live_and_replayed():
    hub = Hub(replay_events=100, client_queue=1000, slow_consumer="drop_oldest")
    written: list[str] = []

    async def send_text(text: str) -> None:
        written.append(text)

    async def run() -> tuple[Client, Client]:
        await hub.publish(event_dicts(20, seed=551))            # before anyone listens: only a resume sees them
        live = Client(hub, send_text, client_id="live")
        live.subscribe([{"channel": "events"}], None)
        resuming = Client(hub, send_text, client_id="resuming")
        reply, backlog = resuming.subscribe([{"channel": "events"}], {"stream_id": hub.stream_id, "sequence": 0})
        assert reply["resume"]["replayed"] == 20
        resuming.enqueue(backlog)
        hub.clients.update((live, resuming))
        await hub.publish(event_dicts(30, seed=552))
        for client in (live, resuming):
            client.close_with(1001, lambda: "")
            assert await asyncio.wait_for(client.sender(), 5) is None
        return live, resuming

    live, resuming = asyncio.run(run())
    assert live.sent == 30                       # the live events
    assert resuming.sent == 20 + 30              # the replay, then the live events
    assert hub.deliveries == live.sent + resuming.sent == len(written)
