"""Path 1: `forward` NDJSON -> the gateway's HEC endpoint (splunk+http://, gzip, indexer acks) -> the gateway's
store -> the WebSocket stream (a consumer that stops and resumes from its saved position) -> `forward` again into
a `sqlite:` store. Some events are updated twice on the way, a newer version sometimes in the same batch as the
older one, older versions and re-sends arrive after newer ones: every reader must end with the newest version of
each event, once, and every event sent is counted (delivered or dead-lettered with its reason)."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import requests
from e2e_helpers import AUTH, TOKEN, expected, instant, newer, read_ndjson, store_rows, write_ndjson
from strategies import event_dicts

from wia_security.cli import main

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("websockets", reason="the server extra is not installed")

from wia_security.connectors.gateway import GatewaySettings  # noqa: E402
from wia_security.connectors.gateway.server import GatewayServer  # noqa: E402
from wia_security.connectors.websocket_client import StreamClient  # noqa: E402


def forward(files: list[Path], to: str, dead: Path, capsys) -> dict:
    code = main(["forward", *map(str, files), "--to", to, "--dead-letter", str(dead), "--summary", "json",
                 "--no-progress"])
    summary = json.loads(capsys.readouterr().out)
    summary["exit"] = code
    return summary


async def consume_until(client: StreamClient, marker: str, got: list[dict], position: list) -> None:
    async for item in client.events():
        got.append(item.event)
        position[:] = [item.stream_id, item.sequence]      # saved after handling: at least once
        if item.event["id"] == marker:
            return


@pytest.mark.parametrize("wild", [False, True], ids=["plain", "unicode"])
def test_newest_version_once_through_hec_store_stream_and_sqlite(wild, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("E2E_HEC_TOKEN", TOKEN)
    gw = GatewayServer(GatewaySettings(tokens=[TOKEN], store=f"sqlite:///{tmp_path}/gateway.db",
                                       dead_letter=str(tmp_path / "gateway-dead.ndjson"), taxii=False)).start()
    hec_url = f"splunk+http://127.0.0.1:{gw.port}?token_env=E2E_HEC_TOKEN&gzip=1&ack=1&max_events=7"
    events = event_dicts(20, seed=1400, wild=wild)           # wild: arbitrary unicode in every free string
    markers = event_dicts(3, seed=1401)
    v2 = {i: newer(events[i], 10) for i in range(8)}
    v3 = {i: newer(events[i], 20) for i in range(4)}
    invalid = {**event_dicts(1, seed=1402)[0], "severity": 99}
    # batch A: v1 of 0-9, v2 of 0-1 after them (the same HEC batches), then v1 of 0 again (older), an invalid one
    batch_a = [*events[:10], v2[0], v2[1], events[0], invalid, markers[0]]
    # batch B (no consumer running): the rest, v2 of 4-7, v3 of 0-3, then v2 of 2-3 again (older than v3)
    batch_b = [*events[10:], v2[4], v2[5], v2[6], v2[7], v3[0], v3[1], v3[2], v3[3], v2[2], v2[3], markers[1]]
    # batch C (consumer resumed, live): an old version and a re-send of the newest
    batch_c = [events[0], v3[0], v2[1], markers[2]]
    newest = {e["id"]: e for e in [*events, *v2.values(), *v3.values(), *markers]}
    newest.update({v3[i]["id"]: v3[i] for i in v3})

    streamed: list[dict] = []
    position: list = []
    summaries: list[dict] = []

    async def run() -> None:
        first = StreamClient(gw.ws_url, token=TOKEN)
        consumer = asyncio.ensure_future(consume_until(first, markers[0]["id"], streamed, position))
        for _ in range(1500):
            if first.subscription_ids:
                break
            await asyncio.sleep(0.01)
        summaries.append(await asyncio.to_thread(
            forward, [write_ndjson(tmp_path / "a.ndjson", batch_a)], hec_url, tmp_path / "dead-a.ndjson", capsys))
        await asyncio.wait_for(consumer, 20)
        await first.close()
        summaries.append(await asyncio.to_thread(
            forward, [write_ndjson(tmp_path / "b.ndjson", batch_b)], hec_url, tmp_path / "dead-b.ndjson", capsys))
        second = StreamClient(gw.ws_url, token=TOKEN, resume_from=(position[0], position[1]))
        await asyncio.wait_for(consume_until(second, markers[1]["id"], streamed, position), 20)
        consumer = asyncio.ensure_future(consume_until(second, markers[2]["id"], streamed, position))
        summaries.append(await asyncio.to_thread(
            forward, [write_ndjson(tmp_path / "c.ndjson", batch_c)], hec_url, tmp_path / "dead-c.ndjson", capsys))
        await asyncio.wait_for(consumer, 20)
        assert second.stats.gaps == []
        await second.close()

    try:
        asyncio.run(asyncio.wait_for(run(), 50))
        feed = requests.get(gw.url + "/v1/events", params={"after": 0, "limit": 1000}, headers=AUTH).json()["events"]
    finally:
        gw.stop()

    # every event sent is counted: delivered (re-sends and older versions count as delivered to HEC) or dead-lettered
    sent = [batch_a, batch_b, batch_c]
    for summary, batch in zip(summaries, sent):
        assert summary["read"] == len(batch), summary
    assert summaries[0]["invalid"] == 1 and summaries[0]["exit"] == 1
    assert summaries[0]["delivered"] == len(batch_a) - 1
    assert summaries[1]["delivered"] == len(batch_b) and summaries[2]["delivered"] == len(batch_c)
    [dead] = read_ndjson(tmp_path / "dead-a.ndjson")
    assert dead["event"]["id"] == invalid["id"] and "severity" in json.dumps(dead["reason"])
    assert not read_ndjson(tmp_path / "gateway-dead.ndjson")

    # the gateway's store: one row per id, the newest version
    gateway_rows = store_rows(tmp_path / "gateway.db")
    assert {i: len(v) for i, v in gateway_rows.items() if len(v) != 1} == {}
    assert {i: v[0] for i, v in gateway_rows.items()} == {i: expected(e) for i, e in newest.items()}

    # the arrival-order feed, read once from the start: each id once, in its newest version
    assert sorted(e["id"] for e in feed) == sorted(newest)
    assert {e["id"]: e for e in feed} == {i: expected(e) for i, e in newest.items()}

    # the stream: only what the store kept (never an older version after a newer one); last seen is the newest
    last: dict[str, dict] = {}
    for event in streamed:
        previous = last.get(event["id"])
        # instants, not strings: '...T14:46:09.000-15:28' is later than '...t14:36:09-15:28' but sorts first
        assert previous is None or instant(event["timestamp"]) > instant(previous["timestamp"]), \
            f"{event['id']} went back in time"
        last[event["id"]] = event
    assert last == {i: expected(e) for i, e in newest.items()}

    # forwarded again from the stream into a sqlite: store: the newest version once per id
    final = forward([write_ndjson(tmp_path / "streamed.ndjson", streamed)], f"sqlite:///{tmp_path}/final.db",
                    tmp_path / "dead-final.ndjson", capsys)
    assert final["exit"] == 0 and final["read"] == len(streamed)
    final_rows = store_rows(tmp_path / "final.db")
    assert {i: v for i, v in final_rows.items() if len(v) != 1} == {}
    assert {i: v[0] for i, v in final_rows.items()} == {i: expected(e) for i, e in newest.items()}
