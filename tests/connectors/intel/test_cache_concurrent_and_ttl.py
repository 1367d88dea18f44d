"""The enrichment cache shared by runs: a cache another process holds locked is left alone (it was renamed
to .corrupt with its WAL, taking a live cache away from the run using it), and `--ttl` bounds "not found"
too (`enrich --ttl 0` still reused a "not found" for an hour). vt-py against the VirusTotal contract server."""
from __future__ import annotations

import json
import logging
import sqlite3
import time

from vt_contract import VirusTotalServer
from wia_security.builders import AlertBuilder
from wia_security.cli import main
from wia_security.connectors.intel.cache import EnrichmentCache

UNKNOWN = "0" * 63 + "1"


def test_a_cache_locked_by_another_process_is_left_alone_and_the_run_goes_on_in_memory(tmp_path, caplog):
    path = str(tmp_path / "vt-cache.db")
    first = EnrichmentCache(path)
    first.put("virustotal", "ip", "8.8.8.8", {"found": True, "malicious": 0})
    first.close()
    other = sqlite3.connect(path, isolation_level=None)        # another run, holding the file exclusively
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    other.execute("INSERT INTO enrichment VALUES ('virustotal', 'ip', '1.1.1.1', ?, 1, '{\"found\": true}')",
                  (time.time(),))
    with caplog.at_level(logging.WARNING):
        cache = EnrichmentCache(path)          # waits out SQLite's 5 s busy timeout, then gives up on the file
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []
    assert cache.unavailable and cache.damaged == 0
    assert f"enrichment cache {path} cannot be used now (database is locked)" in caplog.text
    cache.put("virustotal", "domain", "example.org", {"found": False})
    assert cache.get("virustotal", "domain", "example.org") == {"found": False}        # in memory
    cache.close()
    other.execute("COMMIT")
    other.close()
    reopened = EnrichmentCache(path)           # the other run's file and its write are intact
    assert reopened.get("virustotal", "ip", "8.8.8.8") is not None
    assert reopened.get("virustotal", "ip", "1.1.1.1") is not None
    reopened.close()


def test_a_file_that_is_not_a_database_is_still_moved_aside(tmp_path):
    path = tmp_path / "vt-cache.db"
    path.write_bytes(b"not a database " * 100)
    cache = EnrichmentCache(str(path))
    assert cache.damaged == 1 and not cache.unavailable and (tmp_path / "vt-cache.db.corrupt").exists()
    cache.close()


def test_not_found_is_never_kept_longer_than_the_ttl():
    now = [1000.0]
    cache = EnrichmentCache(ttl=60, clock=lambda: now[0])
    cache.put("virustotal", "file", UNKNOWN, {"found": False})
    now[0] += 61
    assert cache.get("virustotal", "file", UNKNOWN) is None


def test_enrich_ttl_0_looks_up_a_not_found_indicator_again(tmp_path, monkeypatch, capsys):
    event = AlertBuilder().title("x").indicator("file_hash_sha256", UNKNOWN).build().to_dict()
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(event) + "\n")
    with VirusTotalServer(api_key="k") as vt:
        monkeypatch.setenv("VT_API_KEY", "k")
        for _ in range(2):
            assert main(["enrich", str(src), "--vt-url", vt.url, "--cache", str(tmp_path / "c.db"), "--ttl", "0"]) == 0
        asked = len(vt.calls("/api/v3/files/"))
    assert asked == 2
    assert capsys.readouterr().err.count("1 VirusTotal request,") == 2
