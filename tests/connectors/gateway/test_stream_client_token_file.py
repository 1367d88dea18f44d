"""StreamClient(token_file=...) across a token rotation on the real gateway (its --token-file re-read).

A consumer whose token is rotated in its file goes on without a restart: the gateway closes the stream of the
removed token with 4001, the client reconnects with the file's new token and resumes, nothing lost or doubled.
A 401 while the file still holds the refused token (a secret volume that has not caught up) is waited out;
a file that never changes ends in StreamAuthError naming it, never the token."""
from __future__ import annotations

import asyncio
import os

import pytest
import requests
from gateway_helpers import consume_ids, until
from strategies import event_dicts

from wia_security.connectors.websocket_client import StreamAuthError, StreamClient, StreamError

ADMIN = "rotation-admin-token-6c1e9b3f7a"
OLD = "rotation-client-old-4a8d2f6e0b"
NEW = "rotation-client-new-9e3b7c1d5f"


def replace_file(path, text: str) -> None:
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def post(gw, events) -> None:
    r = requests.post(gw.url + "/v1/events", json=events, headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200, r.text


def refused(gw, token: str) -> bool:
    return requests.get(gw.url + "/v1/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize("client_file_first", [True, False], ids=["client-file-first", "client-file-late"])
def test_a_token_rotated_in_the_clients_file_keeps_the_stream_without_loss(make_gateway, tmp_path, caplog,
                                                                            client_file_first):
    caplog.set_level("INFO", logger="wia_security")
    gateway_tokens, client_token = tmp_path / "gateway.tokens", tmp_path / "client.token"
    gateway_tokens.write_text(f"{ADMIN}\n{OLD}\n")
    client_token.write_text(f"# the stream's token\n{OLD}\n")
    gw = make_gateway(tokens=[], token_file=str(gateway_tokens))
    events = event_dicts(30, seed=931)

    async def run() -> tuple[list[str], StreamClient]:
        client = StreamClient(gw.ws_url, token_file=client_token, initial_backoff=0.05, max_backoff=0.2)
        got, consumer = consume_ids(client, len(events))
        await until(lambda: client.subscription_ids)
        await asyncio.to_thread(post, gw, events[:10])
        await until(lambda: len(got) == 10)
        if client_file_first:                 # as the rotation should go: the client's file, then the gateway's
            replace_file(client_token, f"{NEW}\n")
        replace_file(gateway_tokens, f"{ADMIN}\n{NEW}\n")
        await until(lambda: refused(gw, OLD), timeout=10)
        await until(lambda: client.stats.close_codes == [4001])
        await asyncio.to_thread(post, gw, events[10:20])          # while the client is away or waiting
        if not client_file_first:
            await until(lambda: "for the file to hold another" in caplog.text, timeout=10)   # refused with 401
            await asyncio.sleep(0.5)
            assert len(got) == 10 and client.stats.reconnects == 0
            replace_file(client_token, f"{NEW}\n")
        await until(lambda: len(got) == 20)
        await asyncio.to_thread(post, gw, events[20:])
        await asyncio.wait_for(consumer, 20)
        await client.close()
        return got, client
    got, client = asyncio.run(asyncio.wait_for(run(), 60))
    assert got == [e["id"] for e in events]                  # every event once, in order
    assert client.stats.reconnects == 1 and not client.stats.gaps
    if not client_file_first:                                # published while it waited: replayed on its resume
        assert client.stats.replayed == 10
        assert "changed after HTTP 401; reconnecting with it" in caplog.text
    assert not any(token in caplog.text for token in (ADMIN, OLD, NEW))


def test_a_refused_token_file_that_does_not_change_ends_naming_the_file(make_gateway, tmp_path):
    gw = make_gateway(tokens=[ADMIN])
    client_token = tmp_path / "client.token"
    client_token.write_text(f"{OLD}\n")

    async def run() -> str:
        client = StreamClient(gw.ws_url, token_file=client_token, token_file_wait=1.0)
        with pytest.raises(StreamAuthError) as info:
            await asyncio.wait_for(anext(client.events()), 15)
        assert info.value.status == 401
        return str(info.value)
    message = asyncio.run(run())
    assert f"refused the token (HTTP 401); read from {client_token}, which held no other token within 1 s" in message
    assert OLD not in message


def test_a_token_file_that_cannot_be_used_at_the_start_is_an_error_naming_it(tmp_path):
    missing, empty = tmp_path / "missing.token", tmp_path / "empty.token"
    empty.write_text("# nothing yet\n\n")

    async def first(path) -> str:
        client = StreamClient("ws://127.0.0.1:9/v1/stream", token_file=path)
        with pytest.raises(StreamError) as info:
            await asyncio.wait_for(anext(client.events()), 10)
        return str(info.value)
    assert asyncio.run(first(missing)) == f"the stream's token file {missing} cannot be read: No such file or directory"
    assert asyncio.run(first(empty)) == (f"the stream's token file {empty} holds no token "
                                         "(blank lines and # comments only)")
    with pytest.raises(ValueError, match="token or token_file, not both"):
        StreamClient("ws://127.0.0.1:9/v1/stream", token=OLD, token_file=empty)
