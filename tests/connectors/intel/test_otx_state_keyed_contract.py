"""The OTX state file belongs to one server and one API key (account). It held only the cursor, so a pull of
another OTX server, or with another account's key, given the same state file (one cron script looping over keys, a
copied command) asked for modified_since = the first one's newest, and every pulse it changed before that was never
read, with exit 0. Now the state records the server and a fingerprint of the key (never the key), and another's pull
is refused before any request, naming both; a state written before they were recorded is taken and records them.
MISP's checkpoint (39917e0) and TAXII's (per collection) are keyed the same way. Against the OTX contract server."""
from __future__ import annotations

import json

import pytest

from otx_contract import OtxServer
from wia_security.cli import main
from wia_security.connectors.intel.otx import OtxSource, account_fingerprint
from wia_security.errors import ConfigError

KEY, OTHER_KEY = "otx-key-of-account-a", "otx-key-of-account-b"


def pulse(n: int, modified: str) -> dict:
    return {"id": f"65a1b2c3d4e5f6a7b8c9d{n:03d}", "name": f"Pulse {n}", "modified": modified,
            "indicators": [{"indicator": f"198.51.100.{n}", "type": "IPv4"}]}


def _pull_and_commit(key: str, url: str, state: str) -> list[dict]:
    source = OtxSource(key, base_url=url, state_path=state)
    events = list(source.poll())
    source.commit()
    source.close()
    return events


def test_another_servers_pull_is_refused_before_any_request(tmp_path):
    state = str(tmp_path / "otx-state.json")
    with OtxServer(api_key=KEY) as first, OtxServer(api_key=KEY) as second:
        first.pulses = [pulse(1, "2026-03-01T00:00:00")]
        second.pulses = [pulse(2, "2026-02-01T00:00:00")]           # older than the first server's cursor
        assert len(_pull_and_commit(KEY, first.url, state)) == 1
        saved = open(state).read()
        with pytest.raises(ConfigError) as caught:
            OtxSource(KEY, base_url=second.url, state_path=state)    # before the fix: took the cursor, read nothing
        assert second.calls() == []
    message = str(caught.value)
    assert first.url in message and second.url in message and "another server" in message
    assert open(state).read() == saved                               # the state is left as it was


def test_another_accounts_pull_is_refused_and_names_no_key(tmp_path):
    state = str(tmp_path / "otx-state.json")
    with OtxServer(api_key=KEY) as otx:
        otx.pulses = [pulse(1, "2026-03-01T00:00:00")]
        _pull_and_commit(KEY, otx.url, state)
        calls = len(otx.calls())
        with pytest.raises(ConfigError) as caught:
            OtxSource(OTHER_KEY, base_url=otx.url, state_path=state)
        assert len(otx.calls()) == calls
    message = str(caught.value) + repr(caught.value)
    assert "another API key" in message and account_fingerprint(OTHER_KEY) in message
    assert KEY not in message and OTHER_KEY not in message and KEY not in open(state).read()


def test_the_same_server_spelled_otherwise_and_the_same_key_take_the_cursor(tmp_path):
    state = str(tmp_path / "otx-state.json")
    with OtxServer(api_key=KEY) as otx:
        otx.pulses = [pulse(1, "2026-03-01T00:00:00")]
        _pull_and_commit(KEY, otx.url, state)
        otx.pulses.append(pulse(2, "2026-03-02T00:00:00"))
        again = OtxSource(KEY, base_url=otx.url.upper().replace("HTTP://", "http://") + "/", state_path=state)
        assert again.cursor == "2026-03-01T00:00:00"
        assert [e["data"]["report_id"] for e in again.poll()] == [f"otx:{pulse(2, '')['id']}"]


def test_a_state_written_before_records_them_on_the_next_commit(tmp_path):
    state = tmp_path / "otx-state.json"
    state.write_text(json.dumps({"modified_since": "2026-03-01T00:00:00"}))
    with OtxServer(api_key=KEY) as otx:
        otx.pulses = [pulse(1, "2026-03-01T00:00:00"), pulse(2, "2026-03-05T00:00:00")]
        assert len(_pull_and_commit(KEY, otx.url, str(state))) == 1
    assert json.loads(state.read_text()) == {"modified_since": "2026-03-05T00:00:00", "server": otx.url,
                                             "account": account_fingerprint(KEY)}


@pytest.mark.parametrize("member", ["server", "account"])
@pytest.mark.parametrize("value", [5, "", ["x"]])
def test_a_damaged_server_or_account_member_is_refused(tmp_path, member, value):
    state = tmp_path / "otx-state.json"
    state.write_text(json.dumps({"modified_since": "2026-03-01T00:00:00", member: value}))
    with pytest.raises(ConfigError, match="the OTX state file must be"):
        OtxSource(KEY, base_url="http://127.0.0.1:9", state_path=str(state))


def test_cli_pull_of_another_server_with_the_same_state_exits_2(tmp_path, monkeypatch, capsys):
    state, db = tmp_path / "state.json", tmp_path / "intel.db"
    monkeypatch.setenv("OTX_API_KEY", KEY)
    with OtxServer(api_key=KEY) as first, OtxServer(api_key=KEY) as second:
        first.pulses, second.pulses = [pulse(1, "2026-03-01T00:00:00")], [pulse(2, "2026-02-01T00:00:00")]
        for server, code in ((first, 0), (second, 2)):
            assert main(["intel", "pull", "otx", "--url", server.url, "--state", str(state),
                         "--to", f"sqlite:///{db}"]) == code
        assert second.calls() == []
    err = capsys.readouterr().err
    assert "another server" in err and KEY not in err
    assert json.loads(state.read_text())["server"] == first.url
