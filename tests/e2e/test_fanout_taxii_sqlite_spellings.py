"""`forward --config` to two destinations at once: the TAXII sink (medallion 3.0.0) and a `sqlite:` store, for events
in every valid time spelling (threat intel and other types). What one destination refuses goes to the dead letter
for that destination only: the two events whose UTC instant leaves 0001-9999 (STIX cannot spell them) are
dead-lettered for TAXII, naming the timestamp, and stored in SQLite; every other event reaches both, and
`pull taxii` and the store give them back as sent. Every event is counted once per destination."""
from __future__ import annotations

import json
import sqlite3

import pytest
from e2e_helpers import (OUT_OF_RANGE_SPELLINGS, expected, read_ndjson, store_rows, time_spellings, with_times,
                         write_ndjson)
from strategies import event_dicts

from wia_security.cli import main

pytest.importorskip("taxii2client", reason="the taxii extra is not installed")

from servers.medallion import PASSWORD, USER  # noqa: E402


def test_one_destination_refusing_leaves_the_other_whole(medallion, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("E2E_TAXII_PASSWORD", PASSWORD)
    collection = medallion.collection_url()
    spellings = time_spellings() + OUT_OF_RANGE_SPELLINGS
    intel = with_times(event_dicts(len(spellings), seed=1502, event_type="threat_intel", wild=True), spellings)
    config = tmp_path / "wia.toml"
    config.write_text(f'''
[forward]
dead_letter = "{tmp_path / 'dead.ndjson'}"

[delivery]
max_wait = 0

[destinations.intel]
url = "taxii+{collection}"
user = "{USER}"
password_env = "E2E_TAXII_PASSWORD"

[destinations.store]
url = "sqlite:///{tmp_path}/store.db"
''')
    code = main(["forward", str(write_ndjson(tmp_path / "in.ndjson", intel)), "--config", str(config),
                 "--no-progress", "--summary", "json"])
    summary = json.loads(capsys.readouterr().out)
    dead = read_ndjson(tmp_path / "dead.ndjson")
    assert code == 1, summary
    assert sorted(d["event"]["timestamp"] for d in dead) == sorted(OUT_OF_RANGE_SPELLINGS), dead
    assert all("timestamp" in d["reason"] and "intel" in json.dumps(d) for d in dead), dead
    rows = store_rows(tmp_path / "store.db")
    assert {i: v for i, v in rows.items()} == {e["id"]: [expected(e)] for e in intel}
    main(["pull", f"taxii+{collection}?user={USER}&password_env=E2E_TAXII_PASSWORD&settle=0", "--to",
          f"file://{tmp_path}/back.ndjson", "--checkpoint", str(tmp_path / "cp.json"), "--dead-letter",
          str(tmp_path / "pull-dead.ndjson"), "--summary", "json"])
    capsys.readouterr()
    back = {e["id"]: e for e in read_ndjson(tmp_path / "back.ndjson")}
    assert back == {e["id"]: expected(e) for e in intel if e["timestamp"] not in OUT_OF_RANGE_SPELLINGS}
    with sqlite3.connect(tmp_path / "store.db") as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == len(intel)
