"""replay --sink NAME that no record has (a misspelt destination) says so and names the destinations the records
have: it replayed nothing, exit 0, the only sign a 'not selected' count in the summary."""
from __future__ import annotations

import json

import pytest

from strategies import event_dicts


@pytest.fixture
def dead_letter(tmp_path):
    path = tmp_path / "dl.ndjson"
    records = [{"reason": "gave up: HTTP 503", "sink": "splunk-prod", "event": e, "where": f"in:{i}"}
               for i, e in enumerate(event_dicts(3, seed=91), 1)]
    records.append({"reason": "invalid: /version", "event": {"x": 1}, "where": "in:9"})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def test_a_sink_no_record_has_is_named_with_those_the_records_have(cli, dead_letter, tmp_path):
    r = cli("replay", dead_letter, "--sink", "splunkprod", "--to", f"file:///{tmp_path}/out.ndjson")
    assert r.code == 0
    assert ("warning: --sink splunkprod: no record read was refused by a destination of that name; the records "
            "name: splunk-prod (3), (none: not refused by a destination) (1)") in r.err


def test_only_the_names_that_matched_nothing_are_named(cli, dead_letter, tmp_path):
    r = cli("replay", dead_letter, "--sink", "splunk-prod", "--sink", "elastic", "--dry-run")
    assert r.code == 0 and "replayed                  3" in r.out
    assert "warning: --sink elastic: no record read" in r.err and "splunk-prod" not in r.err


def test_no_warning_when_every_sink_matched(cli, dead_letter, tmp_path):
    r = cli("replay", dead_letter, "--sink", "splunk-prod", "--to", f"file:///{tmp_path}/out.ndjson")
    assert r.code == 0 and "warning" not in r.err
