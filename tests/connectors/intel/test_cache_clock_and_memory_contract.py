"""The enrichment cache's TTL against a clock that moved, and its memory in a long run (vt-py against the
VirusTotal contract server, through the `enrich` command where a run is what matters)."""
from __future__ import annotations

import json
import time

from vt_contract import VirusTotalServer
from wia_security.builders import AlertBuilder
from wia_security.cli import main
from wia_security.connectors.intel.cache import EnrichmentCache

SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
YEAR = 365 * 24 * 3600.0


def test_contract_a_verdict_stored_in_the_future_is_looked_up_again(tmp_path, monkeypatch, capsys):
    """A "not found" written while the clock (or another machine's, sharing the file) was a year ahead was
    served as fresh until a year plus the TTL had passed, though VirusTotal knows the file."""
    path = str(tmp_path / "vt-cache.db")
    src = tmp_path / "in.ndjson"
    src.write_text(json.dumps(AlertBuilder().title("x").indicator("file_hash_sha256", SHA256).build().to_dict()) + "\n")
    with VirusTotalServer(api_key="k") as vt:
        vt.add_file(SHA256, last_analysis_stats={"malicious": 61, "undetected": 9})
        ahead = EnrichmentCache(path, clock=lambda: time.time() + YEAR)
        ahead.put(f"virustotal@{vt.url.rstrip('/').lower()}", "file", SHA256,
                  {"type": "file", "value": SHA256, "found": False})
        ahead.close()
        monkeypatch.setenv("VT_API_KEY", "k")
        assert main(["enrich", str(src), "--vt-url", vt.url, "--cache", path]) == 0
        calls = len(vt.calls())
    [verdict] = json.loads(capsys.readouterr().out)["meta"]["custom"]["enrichment"]["virustotal"]["indicators"]
    assert calls == 1 and verdict["found"] is True and verdict["malicious"] == 61, verdict


def test_memory_is_bounded_and_the_file_keeps_the_rest(tmp_path, monkeypatch):
    """A long run kept every verdict in memory, expired ones too (80 MB per 100,000 indicators, without end)."""
    from wia_security.connectors.intel import cache as cache_module
    monkeypatch.setattr(cache_module, "MEMORY_ENTRIES", 50, raising=False)
    cache = EnrichmentCache(str(tmp_path / "vt-cache.db"))
    try:
        for i in range(200):
            cache.put("virustotal", "domain", f"d{i}.example.org", {"found": True, "malicious": i})
        assert len(cache._memory) == 50
        assert [cache.get("virustotal", "domain", f"d{i}.example.org")["malicious"] for i in range(200)] == list(range(200))
        assert cache.hits == 200 and len(cache._memory) == 50
    finally:
        cache.close()


def test_an_expired_entry_in_memory_gives_way_to_a_fresher_one_another_run_wrote(tmp_path):
    """Two runs sharing the file: the first's own copy expired, the second looked it up again since; the first
    asked VirusTotal once more instead of reading the second's."""
    now = [1000.0]
    path = str(tmp_path / "vt-cache.db")
    first = EnrichmentCache(path, ttl=60, clock=lambda: now[0])
    second = EnrichmentCache(path, ttl=60, clock=lambda: now[0])
    try:
        first.put("virustotal", "ip", "8.8.8.8", {"found": True, "malicious": 0})
        now[0] += 100                                   # first's copy has expired
        second.put("virustotal", "ip", "8.8.8.8", {"found": True, "malicious": 2})
        assert first.get("virustotal", "ip", "8.8.8.8") == {"found": True, "malicious": 2}
    finally:
        first.close()
        second.close()


def test_old_and_future_rows_are_purged_when_the_file_is_opened(tmp_path):
    """Rows no run reads again stayed for ever: the file grew with every indicator ever looked up and kept the
    list of them (hosts, URLs, files seen) without end."""
    import sqlite3
    from wia_security.connectors.intel.cache import RETENTION
    now = 10 * RETENTION
    path = str(tmp_path / "vt-cache.db")
    EnrichmentCache(path, clock=lambda: now).close()
    db = sqlite3.connect(path, isolation_level=None)
    for stored_at, value in ((now - RETENTION - 1, "old.example.org"), (now - 3600, "recent.example.org"),
                             (now + YEAR, "future.example.org")):
        db.execute("INSERT INTO enrichment VALUES ('virustotal', 'domain', ?, ?, 1, '{\"found\": true}')",
                   (value, stored_at))
    db.close()
    EnrichmentCache(path, clock=lambda: now).close()
    db = sqlite3.connect(path)
    try:
        assert [v for (v,) in db.execute("SELECT value FROM enrichment")] == ["recent.example.org"]
    finally:
        db.close()
