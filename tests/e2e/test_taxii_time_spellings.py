"""`forward` -> the TAXII sink -> medallion 3.0.0 -> `pull taxii+http://` for threat intel timed in every valid
spelling (tests/e2e/e2e_helpers.time_spellings): STIX `created`/`modified` must be UTC `Z` with at least
milliseconds, so the sink respells each time; pulled back, every event holds the same instant and the rest of the
event unchanged, and a newer version whose time sorts before the older one's as a string (+14:00 against Z,
fewer fraction digits) is still the newer one in the pulled store."""
from __future__ import annotations


import pytest
from e2e_helpers import (OUT_OF_RANGE_SPELLINGS, VERSION_PAIRS, cli_summary, expected, instant, read_ndjson,
                         store_rows, time_spellings, with_times, write_ndjson)
from strategies import event_dicts


pytest.importorskip("taxii2client", reason="the taxii extra is not installed")

from servers.medallion import PASSWORD, USER  # noqa: E402


def run(args: list[str], capsys) -> dict:
    return cli_summary(args, capsys)


def same_but_time(got: dict, sent: dict) -> None:
    want = expected(sent)
    assert instant(got["timestamp"]) == instant(want["timestamp"]), (got["timestamp"], want["timestamp"])
    assert {**got, "timestamp": None} == {**want, "timestamp": None}




def test_every_time_spelling_comes_back_as_the_same_instant(medallion, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("E2E_TAXII_PASSWORD", PASSWORD)
    collection = medallion.collection_url()
    auth = f"user={USER}&password_env=E2E_TAXII_PASSWORD"
    spellings = time_spellings() + OUT_OF_RANGE_SPELLINGS
    intel = with_times(event_dicts(len(spellings), seed=1491, event_type="threat_intel", wild=True), spellings)
    forwarded = run(["forward", str(write_ndjson(tmp_path / "intel.ndjson", intel)), "--to",
                     f"taxii+{collection}?{auth}&max_wait=0", "--dead-letter", str(tmp_path / "dead.ndjson"),
                     "--no-progress"], capsys)
    dead = read_ndjson(tmp_path / "dead.ndjson")
    again = run(["forward", str(tmp_path / "intel.ndjson"), "--to", f"taxii+{collection}?{auth}&max_wait=0",
                 "--dead-letter", str(tmp_path / "dead-again.ndjson"), "--no-progress"], capsys)
    # a re-send: every object is held with that version (the cut time is the version the collection holds)
    assert again["duplicates"] == forwarded["delivered"], again
    pulled = run(["pull", f"taxii+{collection}?{auth}&settle=0", "--to", f"file://{tmp_path}/back.ndjson",
                  "--checkpoint", str(tmp_path / "cp.json"), "--dead-letter", str(tmp_path / "pull-dead.ndjson")],
                 capsys)
    back = {e["id"]: e for e in read_ndjson(tmp_path / "back.ndjson")}
    assert not read_ndjson(tmp_path / "pull-dead.ndjson"), pulled
    # every event counted: delivered and read back as sent, or dead-lettered naming its time
    assert forwarded["delivered"] + len(dead) == len(intel) and pulled["delivered"] == forwarded["delivered"]
    dead_ids = {d["event"]["id"] for d in dead}
    for record in dead:
        assert record["event"]["timestamp"] in OUT_OF_RANGE_SPELLINGS and "timestamp" in record["reason"], record
    for event in intel:
        if event["id"] not in dead_ids:
            same_but_time(back[event["id"]], event)
    assert set(back) == {e["id"] for e in intel} - dead_ids


def test_newer_versions_stay_newer_whatever_their_spelling(medallion, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("E2E_TAXII_PASSWORD", PASSWORD)
    collection = medallion.collection_url()
    auth = f"user={USER}&password_env=E2E_TAXII_PASSWORD"
    older = event_dicts(len(VERSION_PAIRS), seed=1492, event_type="threat_intel")
    for event, (old, _) in zip(older, VERSION_PAIRS):
        event["timestamp"] = old
    newer = [{**e, "timestamp": new, "severity": (int(e["severity"]) + 1) % 10}
             for e, (_, new) in zip(older, VERSION_PAIRS)]
    for name, events in (("older", older), ("newer", newer), ("late", older)):
        summary = run(["forward", str(write_ndjson(tmp_path / f"{name}.ndjson", events)), "--to",
                       f"taxii+{collection}?{auth}&max_wait=0", "--dead-letter", str(tmp_path / "dead.ndjson"),
                       "--no-progress"], capsys)
        # the late older versions are already in the collection: duplicates
        assert summary["delivered" if name != "late" else "duplicates"] == len(events), summary
        pulled = run(["pull", f"taxii+{collection}?{auth}&settle=0", "--to", f"sqlite:///{tmp_path}/pulled.db",
                      "--checkpoint", str(tmp_path / "cp.json"), "--dead-letter",
                      str(tmp_path / "pull-dead.ndjson")], capsys)
        assert pulled["exit"] == 0, pulled
    rows = store_rows(tmp_path / "pulled.db")
    assert all(len(v) == 1 for v in rows.values())
    for event in newer:
        same_but_time(rows[event["id"]][0], event)
    run(["pull", f"taxii+{collection}?{auth}&settle=0", "--to", f"file://{tmp_path}/all.ndjson",
         "--checkpoint", str(tmp_path / "cp-all.json"), "--dead-letter", str(tmp_path / "pull-dead.ndjson")], capsys)
    fresh = {e["id"]: e for e in read_ndjson(tmp_path / "all.ndjson")}
    for event in newer:
        same_but_time(fresh[event["id"]], event)
    assert not read_ndjson(tmp_path / "pull-dead.ndjson")
