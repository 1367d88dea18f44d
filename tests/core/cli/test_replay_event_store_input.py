"""replay of an event store (given instead of the dead letter, or a sink+sqlite:// dead letter's store) counts the
stored events that are no dead letters apart: they were counted as 'not selected (--reason-match / --sink)', filters
the user never gave, and a run that read only such events replayed nothing with exit 0 and no word why."""
from __future__ import annotations

import json

from strategies import event_dicts


def test_an_event_store_without_dead_letters_is_said_to_be_one(cli, tmp_path):
    events = tmp_path / "in.ndjson"
    events.write_text("".join(json.dumps(e) + "\n" for e in event_dicts(6, seed=97)))
    assert cli("forward", str(events), "--to", "sqlite:///events.db").code == 0
    r = cli("replay", "events.db", "--to", f"file://{tmp_path}/out.ndjson", "--summary", "json")
    assert r.code == 0
    summary = json.loads(r.out)
    assert (summary["records"], summary["not_selected"], summary["not_dead_letters"]) == (0, 0, 6)
    assert "warning: 6 stored events read and no dead-letter record" in r.err
    r = cli("replay", "events.db", "--dry-run")
    assert "not dead letters          6" in r.out and "not selected              0" in r.out
