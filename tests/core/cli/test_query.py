"""`wia-security query`: reading the embedded store back with filters."""
from __future__ import annotations

import json
from pathlib import Path

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


def test_bad_time_filter_is_a_usage_error(cli):
    cli("forward", "--lenient", *SAMPLES)
    r = cli("query", "--since", "yesterday-ish")
    assert r.code == 2 and "bad time filter" in r.err
