"""The event store holds whole events and the enrichment cache every indicator looked up: a new one (and
so its -wal and -shm) is readable by its owner only (0600) whatever the umask; an existing file keeps
its owner's mode."""
from __future__ import annotations

import os
import stat

import pytest

from wia_security.connectors.intel.cache import EnrichmentCache
from wia_security.connectors.sqlite import DEFAULT_URL, SqliteSink

EVENT = {"id": "e1", "type": "alert", "timestamp": "2026-01-01T00:00:00Z", "severity": 7,
         "data": {"command_line": "mysql -u root -pS3cretPassw0rd"}}


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def modes(folder) -> dict[str, int]:
    return {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in folder.iterdir()}


def test_the_default_event_store_is_private_to_its_owner(tmp_path, monkeypatch, umask):
    monkeypatch.chdir(tmp_path)
    sink = SqliteSink.from_url(DEFAULT_URL)            # sqlite:///wia-events.db, relative to the folder
    assert sink.send([EVENT]).delivered == 1
    while_open = modes(tmp_path)                       # -wal and -shm exist while the store is open
    sink.close()
    assert {"wia-events.db", "wia-events.db-wal", "wia-events.db-shm"} <= set(while_open)
    assert while_open == {name: 0o600 for name in while_open}
    assert modes(tmp_path) == {name: 0o600 for name in modes(tmp_path)}


def test_an_existing_event_store_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "events.db"
    SqliteSink(str(path)).close()
    os.chmod(path, 0o640)                              # the owner shares it with a group on purpose
    sink = SqliteSink(str(path))
    assert sink.send([EVENT]).delivered == 1
    sink.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_new_enrichment_cache_file_is_private_to_its_owner(tmp_path, umask):
    cache = EnrichmentCache(str(tmp_path / "vt-cache.db"))
    cache.put("virustotal", "domain", "intranet.corp.example", {"found": True, "malicious": 0})
    while_open = modes(tmp_path)
    cache.close()
    assert {"vt-cache.db", "vt-cache.db-wal", "vt-cache.db-shm"} <= set(while_open)
    assert while_open == {name: 0o600 for name in while_open}
    assert EnrichmentCache(str(tmp_path / "vt-cache.db")).get("virustotal", "domain", "intranet.corp.example")


def test_an_existing_enrichment_cache_keeps_its_mode_and_memory_makes_no_file(tmp_path, monkeypatch, umask):
    path = tmp_path / "vt-cache.db"
    EnrichmentCache(str(path)).close()
    os.chmod(path, 0o644)
    EnrichmentCache(str(path)).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    monkeypatch.chdir(tmp_path)
    EnrichmentCache(":memory:").close()
    assert not (tmp_path / ":memory:").exists()
