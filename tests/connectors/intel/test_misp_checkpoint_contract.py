"""`wia-security intel pull misp --state PATH`: an incremental MISP pull. The newest MISP `timestamp` of a pull
that read every page and delivered everything is saved (durably) and asked for as `timestamp` next time,
inclusively, so records sharing that second are read again (duplicates), never skipped. A pull that fails
part-way leaves the checkpoint where it was (the next pull re-reads: at-least-once). Before, a MISP pull had
no checkpoint at all (`--state` was refused): each run re-read everything or relied on a guessed `--since`.
The real pymisp against the MISP contract server, through the CLI into the embedded store."""
from __future__ import annotations

import json

import pytest

from misp_contract import MispServer
from wia_security.cli import main
from wia_security.connectors.intel.misp import MispCheckpoint, account_fingerprint
from wia_security.connectors.sqlite import EventStore
from wia_security.errors import ConfigError

KEY = "misp-checkpoint-key"


def _event(server: MispServer, n: int, timestamp: int, attributes: int = 1) -> dict:
    return server.add_event({
        "uuid": f"5e6b3c2a-0000-4000-8000-{n:012d}", "info": f"Event {n}", "timestamp": str(timestamp),
        "Attribute": [{"type": "domain", "category": "Network activity", "value": f"h{n}-{i}.example.net",
                       "to_ids": True, "timestamp": str(timestamp)} for i in range(attributes)]})


def _stored(db) -> list[str]:
    store = EventStore(str(db))
    try:
        return sorted(i["value"] for s in store.query(limit=None) for i in s.event["data"].get("indicators", []))
    finally:
        store.close()


@pytest.fixture
def misp(monkeypatch):
    monkeypatch.setenv("MISP_KEY", KEY)
    with MispServer(key=KEY) as server:
        yield server


def test_contract_the_checkpoint_moves_after_a_whole_pull_and_is_asked_for_next_time(misp, tmp_path, capsys):
    _event(misp, 1, 1767225600)
    _event(misp, 2, 1767312000)
    state, db = tmp_path / "misp.json", tmp_path / "intel.db"
    args = ["intel", "pull", "misp", "--url", misp.url, "--state", str(state), "--to", f"sqlite:///{db}"]
    assert main(args) == 0
    assert json.loads(state.read_text()) == {"search": "events", "tags": [], "timestamp": 1767312000,
                                             "server": misp.url, "account": account_fingerprint(KEY)}
    assert "timestamp" not in misp.calls("/events/restSearch")[0].body
    _event(misp, 3, 1767398400)
    assert main(args) == 0
    assert misp.calls("/events/restSearch")[-1].body["timestamp"] == 1767312000      # inclusive: event 2 again
    assert json.loads(state.read_text())["timestamp"] == 1767398400
    err = capsys.readouterr().err
    assert "misp: 2 delivered, 0 duplicates" in err and "misp: 1 delivered, 1 duplicates" in err
    assert _stored(db) == ["h1-0.example.net", "h2-0.example.net", "h3-0.example.net"]


def test_contract_a_pull_that_fails_part_way_leaves_the_checkpoint_and_the_next_one_reads_the_rest(misp, tmp_path,
                                                                                                  capsys):
    for n in range(1, 6):
        _event(misp, n, 1767225600 + n, attributes=30)             # 150 attributes: pages of 100
    state, db = tmp_path / "misp.json", tmp_path / "intel.db"
    args = ["intel", "pull", "misp", "--url", misp.url, "--attributes", "--state", str(state),
            "--to", f"sqlite:///{db}"]
    assert main(args) == 0
    saved = state.read_text()
    _event(misp, 6, 1767225700, attributes=150)
    # page 2 of the next pull is refused: page 1's events are delivered, the checkpoint does not move

    def refuse_second_page(req, headers, _handle=misp.handle):
        if req.path == "/attributes/restSearch" and req.body.get("page") == 2:
            return 403, {"name": "Forbidden", "message": "page 2 refused", "url": req.path}, {}
        return _handle(req, headers)

    misp.handle = refuse_second_page
    assert main(args) != 0
    assert "page 2 refused" in capsys.readouterr().err
    assert state.read_text() == saved                                 # not moved past what was not read
    del misp.handle
    assert main(args) == 0
    assert json.loads(state.read_text())["timestamp"] == 1767225700
    assert sorted({v for v in _stored(db) if v.startswith("h6-")}) == sorted(f"h6-{i}.example.net" for i in range(150))


def test_contract_attributes_sharing_the_newest_second_are_never_skipped(misp, tmp_path):
    _event(misp, 1, 1767225600, attributes=250)                       # more than two pages share one second
    state, db = tmp_path / "misp.json", tmp_path / "intel.db"
    args = ["intel", "pull", "misp", "--url", misp.url, "--attributes", "--state", str(state),
            "--to", f"sqlite:///{db}"]
    assert main(args) == 0 and len(_stored(db)) == 250
    # another attribute written in the same second, after the pull read it
    misp.events[0]["Attribute"].append({"id": "999", "uuid": "0f9c1d2e-0000-4000-8000-000000000999", "event_id": "1",
                                        "type": "domain", "category": "Network activity", "value": "late.example.net",
                                        "to_ids": True, "timestamp": "1767225600"})
    assert main(args) == 0
    # the last page's group now holds one more attribute: another event beside the earlier one
    assert len(set(_stored(db))) == 251 and "late.example.net" in _stored(db)
    assert json.loads(state.read_text())["timestamp"] == 1767225600


def test_a_checkpoint_of_another_pull_or_a_damaged_one_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "misp.json"
    MispCheckpoint("events", ["tlp:green"], 1767225600).save(str(path))
    assert MispCheckpoint.load(str(path), "events", ["tlp:green"]).timestamp == 1767225600
    for search, tags in (("attributes", ["tlp:green"]), ("events", [])):
        with pytest.raises(ConfigError, match="belongs to another pull") as err:
            MispCheckpoint.load(str(path), search, tags)
        assert err.value.source == str(path)
    for text in ("{", '{"search": "events", "tags": [], "timestamp": "soon"}', "[]",
                 '{"search": "events", "tags": [], "timestamp": -1}'):
        path.write_text(text)
        with pytest.raises(ConfigError) as err:
            MispCheckpoint.load(str(path), "events", [])
        assert err.value.source == str(path)
    assert MispCheckpoint.load(str(tmp_path / "none.json"), "events", []).timestamp is None


@pytest.mark.parametrize("odd", ["1767312000000", "4102444800"], ids=["milliseconds", "year-2100"])
def test_contract_a_timestamp_far_ahead_of_the_clock_never_becomes_the_checkpoint(misp, tmp_path, odd):
    # taken as the cursor, milliseconds (or a MISP clock decades ahead) would skip every later record
    _event(misp, 1, 1767225600)
    misp.add_event({"uuid": "5e6b3c2a-0000-4000-8000-000000000099", "info": "Odd clock", "timestamp": odd,
                    "Attribute": [{"type": "domain", "category": "Network activity", "value": "odd.example.net",
                                   "timestamp": odd}]})
    state, db = tmp_path / "misp.json", tmp_path / "intel.db"
    args = ["intel", "pull", "misp", "--url", misp.url, "--state", str(state), "--to", f"sqlite:///{db}"]
    assert main(args) == 0
    assert json.loads(state.read_text())["timestamp"] == 1767225600
    _event(misp, 2, 1767312000)
    assert main(args) == 0
    assert "h2-0.example.net" in _stored(db) and "odd.example.net" in _stored(db)


def test_contract_a_checkpoint_that_cannot_be_saved_is_reported_after_delivery(misp, tmp_path, monkeypatch, capsys):
    import errno

    from wia_security.connectors.intel import misp as misp_module

    def disk_full(path: str, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    _event(misp, 1, 1767225600)
    monkeypatch.setattr(misp_module, "replace_durably", disk_full)
    state, db = tmp_path / "misp.json", tmp_path / "intel.db"
    rc = main(["intel", "pull", "misp", "--url", misp.url, "--state", str(state), "--to", f"sqlite:///{db}"])
    assert rc == 2 and f"cannot save the MISP checkpoint {state}: No space left on device" in capsys.readouterr().err
    assert _stored(db) == ["h1-0.example.net"] and not state.exists()      # delivered; re-read next time


def test_contract_a_checkpoint_of_another_misp_is_refused(misp, tmp_path, capsys):
    """The checkpoint named its search and tags but not its MISP: a pull of a second server with the same --state
    asked it for `timestamp` >= the first server's newest, and whatever the second had changed before that was
    never read (exit 0). Now it records the server, and another server's pull is refused naming both."""
    _event(misp, 1, 1767225600)
    state, db = tmp_path / "misp.json", tmp_path / "intel.db"
    assert main(["intel", "pull", "misp", "--url", misp.url, "--state", str(state), "--to", f"sqlite:///{db}"]) == 0
    saved = state.read_text()
    with MispServer(key=KEY) as other:
        _event(other, 7, 1767000000)                      # changed before the first server's newest record
        args = ["intel", "pull", "misp", "--url", other.url, "--state", str(state), "--to", f"sqlite:///{db}"]
        assert main(args) == 2                            # before: exit 0, event 7 never read
        assert not other.calls("/events/restSearch")
    err = capsys.readouterr().err
    assert f"the checkpoint belongs to another MISP ({misp.url}), not {other.url}" in err
    assert state.read_text() == saved and _stored(db) == ["h1-0.example.net"]
    # the same server spelt with a final slash or the host in capitals is the same server
    assert MispCheckpoint.load(str(state), "events", [], misp.url + "/").timestamp == 1767225600
    assert MispCheckpoint.load(str(state), "events", [], misp.url.replace("http://", "HTTP://")).timestamp == 1767225600


def test_contract_a_checkpoint_written_before_servers_were_recorded_is_taken_and_records_it(misp, tmp_path):
    _event(misp, 1, 1767225600)
    state, db = tmp_path / "misp.json", tmp_path / "intel.db"
    state.write_text(json.dumps({"search": "events", "tags": [], "timestamp": 1767000000}))
    assert main(["intel", "pull", "misp", "--url", misp.url, "--state", str(state), "--to", f"sqlite:///{db}"]) == 0
    assert misp.calls("/events/restSearch")[0].body["timestamp"] == 1767000000
    assert json.loads(state.read_text()) == {"search": "events", "tags": [], "timestamp": 1767225600,
                                             "server": misp.url, "account": account_fingerprint(KEY)}


def test_contract_a_checkpoint_of_another_api_key_is_refused(misp, tmp_path, monkeypatch, capsys):
    """MISP shows each user its own events (distribution, sharing groups): a checkpoint written with one key, taken by
    a pull with another key of the same MISP, asked for `timestamp` >= the first key's newest and never read what
    only the second key sees from before it (exit 0). The checkpoint records a fingerprint of the key (never the
    key) and another key's pull is refused before any request, naming both fingerprints."""
    _event(misp, 1, 1767225600)
    state, db = tmp_path / "misp.json", tmp_path / "intel.db"
    args = ["intel", "pull", "misp", "--url", misp.url, "--state", str(state), "--to", f"sqlite:///{db}"]
    assert main(args) == 0
    saved = state.read_text()
    assert json.loads(saved)["account"] == account_fingerprint(KEY) and KEY not in saved
    calls = len(misp.calls("/events/restSearch"))
    monkeypatch.setenv("MISP_KEY", "another-users-key")
    assert main(args) == 2                                    # before: exit 0 from the first key's position
    assert len(misp.calls("/events/restSearch")) == calls
    err = capsys.readouterr().err
    assert f"another MISP API key (account {account_fingerprint(KEY)}, this key is " \
           f"{account_fingerprint('another-users-key')})" in err and "another-users-key" not in err
    assert state.read_text() == saved
    monkeypatch.setenv("MISP_KEY", f" {KEY}\n")                # the same key read from a file with a newline
    assert main(args) == 0
