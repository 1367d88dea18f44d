"""`wia-security forward --config`: fan-out to every destination, per-destination summary, dead letters
naming the destination; events failing at one destination are neither lost nor re-sent to the others."""
from __future__ import annotations

import json
import sqlite3
import textwrap

from servers.hec_contract import Fault, HecContractServer  # noqa: E402
from strategies import event_dicts  # noqa: E402

from wia_security.cli import main

GOOD = "11111111-2222-4333-8444-555555555555"


def test_contract_forward_config_fans_out_and_dead_letters_per_destination(tmp_path, monkeypatch, capsys):
    events = event_dicts(120, seed=5)
    events[7] = {"not": "an event"}                                  # invalid input: dead-lettered once
    inputs = tmp_path / "in.ndjson"
    inputs.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    monkeypatch.setenv("GOOD_HEC_TOKEN", GOOD)
    monkeypatch.setenv("BAD_HEC_TOKEN", "unknown-token")
    with HecContractServer({GOOD: {}}) as primary, HecContractServer({GOOD: {}}) as backup:
        backup.state.faults.append(Fault("invalid_event", code=6, index=4))
        config = tmp_path / "wia.toml"
        config.write_text(textwrap.dedent(f"""
            [forward]
            dead_letter = "sqlite:///{tmp_path}/dead.db"
            batch_size = 50

            [delivery]
            max_wait = 0
            initial_backoff = 0.001
            max_backoff = 0.002

            [destinations.primary]
            url = "splunk+{primary.url}"
            token_env = "GOOD_HEC_TOKEN"
            index = "security"

            [destinations.backup]
            url = "splunk+{backup.url}"
            token_env = "GOOD_HEC_TOKEN"
            gzip = true

            [destinations.wrong-token]
            url = "splunk+{primary.url}"
            token_env = "BAD_HEC_TOKEN"

            [destinations.archive]
            url = "file://{tmp_path}/archive.ndjson"
        """))
        code = main(["forward", str(inputs), "--config", str(config), "--summary", "json"])
        out = json.loads(capsys.readouterr().out)
        primary_ids = [e["event"]["id"] for e in primary.events]
        backup_ids = [e["event"]["id"] for e in backup.events]
    valid_ids = [e["id"] for i, e in enumerate(events) if i != 7]
    assert code == 1                                                  # some events rejected
    assert primary_ids == valid_ids                                   # each exactly once, in order
    assert sorted(backup_ids) == sorted(set(valid_ids) - {valid_ids[4]})
    archived = [json.loads(line)["id"] for line in (tmp_path / "archive.ndjson").read_text().splitlines()]
    assert archived == valid_ids
    dests = out["destinations"]
    assert dests["primary"]["delivered"] == 119 and dests["primary"]["failed"] == 0
    assert dests["backup"]["delivered"] == 118 and dests["backup"]["failed"] == 1
    assert dests["wrong-token"]["failed"] == 119 and dests["wrong-token"]["reasons"] == {"HEC 403 code 4": 119}
    assert dests["archive"]["delivered"] == 119
    db = sqlite3.connect(tmp_path / "dead.db")
    rows = db.execute("SELECT sink, reason, event_id FROM dead_letters").fetchall()
    by_sink: dict = {}
    for sink, reason, event_id in rows:
        by_sink.setdefault(sink, []).append((reason, event_id))
    assert len(by_sink[None]) == 1 and by_sink[None][0][0].startswith("invalid")     # the invalid input
    assert [e for _, e in by_sink["backup"]] == [valid_ids[4]]
    assert "invalid-event-number 4" in by_sink["backup"][0][0]
    assert sorted(e for _, e in by_sink["wrong-token"]) == sorted(valid_ids)
    assert set(by_sink) == {None, "backup", "wrong-token"}
    assert out["dead_lettered"] == 1 + 1 + 119
    assert GOOD not in json.dumps(out) and "unknown-token" not in json.dumps(out)


def test_forward_config_errors_are_reported_without_secrets(tmp_path, capsys):
    config = tmp_path / "wia.toml"
    config.write_text('[destinations.x]\nurl = "splunk+https://h:8088"\ntoken = "literal-secret-value"\n')
    inputs = tmp_path / "in.ndjson"
    inputs.write_text("{}\n")
    assert main(["forward", str(inputs), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "token_env" in err and "literal-secret-value" not in err


def test_forward_to_url_keeps_working(tmp_path, capsys, samples):
    inputs = tmp_path / "in.ndjson"
    inputs.write_text("\n".join(json.dumps(e) for e in samples.values()) + "\n")
    code = main(["forward", str(inputs), "--to", f"sqlite:///{tmp_path}/store.db", "--dead-letter", str(tmp_path / "dl"), "--lenient"])
    assert code == 0 and "delivered" in capsys.readouterr().out
    assert not (tmp_path / "dl").exists()
