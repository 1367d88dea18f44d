"""`wia-security query`: reading the embedded store back with filters."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

SAMPLES = sorted(str(p) for p in Path(__file__).resolve().parents[3].joinpath("samples").glob("*.json"))


def test_query_filters_and_formats(cli):
    cli("forward", "--lenient", *SAMPLES)
    everything = [json.loads(x) for x in cli("query", "--format", "ndjson").out.splitlines()]
    assert len(everything) == 7
    assert [e["timestamp"] for e in everything] == sorted((e["timestamp"] for e in everything), reverse=True)
    assert cli("query", "--count", "--type", "alert", "--type", "incident").out.strip() == "2"
    high = json.loads(cli("query", "--format", "json", "--min-severity", "9").out)
    assert {e["type"] for e in high} == {e["type"] for e in everything if e["severity"] >= 9}
    assert cli("query", "--count", "--since", "2025-12-14T09:00:00Z").out.strip() == str(
        sum(e["timestamp"] >= "2025-12-14T09:00:00" for e in everything))
    assert cli("query", "--count", "--since", "1h").out.strip() == "0"        # relative: nothing that recent
    table = cli("query", "--limit", "2").out.splitlines()
    assert len(table) == 3 and table[0].startswith("timestamp")
    one = cli("query", "--format", "ndjson", "--id", "550e8400-e29b-41d4-a716-446655440003").out
    assert json.loads(one)["data"]["vuln_id"].startswith("CVE-")


def test_query_without_a_store_is_a_usage_error(cli):
    r = cli("query")
    assert r.code == 2 and "no event store" in r.err


@pytest.mark.parametrize("args, says", [
    (["--since", "yesterday-ish"], "--since: 'yesterday-ish' is neither an RFC 3339 time"),
    (["--until", "2025-13-45T00:00:00Z"], "--until: '2025-13-45T00:00:00Z' is neither"),
    (["--since", "99999999w"], "--since: '99999999w' reaches back before the year 1"),     # was a traceback
    (["--since", "5" * 5000 + "d"], "is neither an RFC 3339 time"),          # not Python's int-limit message
    # no offset: it was taken as UTC, hours off wherever the user is not on UTC
    (["--since", "2025-12-14T09:30:00"], "--since: '2025-12-14T09:30:00' has no UTC offset: add Z for UTC"),
    (["--until", "2025-12-14"], "--until: '2025-12-14' has no UTC offset"),
    (["--type", "alerts"], "--type: unknown event type 'alerts' (did you mean 'alert'?); known: alert, threat_intel"),
    (["--limit", "-1"], "--limit: must be 0 (no limit) or more"),
    (["--min-severity", "8", "--max-severity", "2"], "--min-severity is above --max-severity"),
])
def test_a_filter_that_cannot_match_anything_is_a_usage_error_not_an_empty_answer(cli, args, says):
    cli("forward", "--lenient", *SAMPLES)
    r = cli("query", *args)
    assert r.code == 2 and says in r.err
    assert r.out == ""                       # no table header before the error


def test_a_store_path_that_is_a_directory_is_a_usage_error(cli, tmp_path):
    (tmp_path / "adir").mkdir()
    for command in ("query", "compliance"):
        r = cli(command, "--db", "adir")
        assert r.code == 2 and "cannot open the SQLite store" in r.err and "the path is a directory" in r.err
