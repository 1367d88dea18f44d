"""Crash consistency of the files the tools keep: SIGKILL a real process writing them, then open them again.

The SQLite dead-letter store, the enrichment cache and the TAXII checkpoint file, each written in a
tight loop by a child process that is killed at seeded random moments. After each kill the file must
open cleanly and hold only whole records (a checkpoint: exactly one version that was saved). What a
kill cannot show — that the data is on the disk, not only in the page cache, when the tools report it
stored — is checked on the settings and calls that provide it (fsync, synchronous=FULL).
"""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from wia_security.connectors.file import FileSink
from wia_security.connectors.sqlite import SqliteSink


def _writer(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_when_busy(proc: subprocess.Popen, delay: float) -> None:
    """SIGKILL `proc` `delay` s after it said it started writing."""
    assert proc.stdout.readline() == b"writing\n", proc.stderr.read().decode()[-2000:]
    time.sleep(delay)
    assert proc.poll() is None, "the writer ended before it was killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


DEAD_LETTER_WRITER = """
    import sys
    from wia_security.connectors.base import Rejected
    from wia_security.connectors.delivery.dead_letter import SqliteDeadLetter
    store = SqliteDeadLetter(sys.argv[1])
    print("writing", flush=True)
    i = 0
    while True:
        i += 1
        store.put(Rejected(f"refused #{i}", event={"id": f"e-{i}", "pad": "x" * (i % 500)}, sink="test", retryable=True))
"""


def test_sqlite_dead_letter_store_opens_whole_after_kills(tmp_path):
    path = tmp_path / "dead.db"
    rnd = random.Random(2404)
    counts = []
    for _ in range(8):
        _kill_when_busy(_writer(DEAD_LETTER_WRITER, str(path)), rnd.uniform(0.02, 0.3))
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT reason, event_id, record FROM dead_letters ORDER BY seq").fetchall()
        db.close()
        for reason, event_id, record in rows:
            doc = json.loads(record)                         # every row whole
            assert doc["reason"] == reason and doc["event"]["id"] == event_id
        assert len(rows) >= (counts[-1] if counts else 1)    # a put that returned survives the kill
        counts.append(len(rows))
    from wia_security.connectors.delivery.dead_letter import SqliteDeadLetter
    with SqliteDeadLetter(str(path)) as store:                # and the tool itself opens and appends
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2     # FULL: durable when put returns
        assert len(store.records()) == counts[-1]


CACHE_WRITER = """
    import sys
    from wia_security.connectors.intel.cache import EnrichmentCache
    cache = EnrichmentCache(sys.argv[1])
    print("writing", flush=True)
    i = 0
    while True:
        i += 1
        cache.put("virustotal", "ip", f"10.0.{i // 250 % 250}.{i % 250}", {"found": True, "n": i, "pad": "y" * (i % 300)})
"""


def test_enrichment_cache_opens_after_kills(tmp_path):
    from wia_security.connectors.intel.cache import EnrichmentCache
    path = tmp_path / "cache.db"
    rnd = random.Random(2405)
    for _ in range(6):
        _kill_when_busy(_writer(CACHE_WRITER, str(path)), rnd.uniform(0.02, 0.25))
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = db.execute("SELECT count(*) FROM enrichment").fetchone()[0]
        db.close()
        assert n > 0
    cache = EnrichmentCache(str(path))
    try:
        assert cache.get("virustotal", "ip", "10.0.0.1")["n"] >= 1
        assert cache.damaged == 0 and not Path(str(path) + ".corrupt").exists()   # not taken for damage
    finally:
        cache.close()


CHECKPOINT_WRITER = """
    import sys
    from wia_security.connectors.taxii import Checkpoint
    path = sys.argv[1]
    print("writing", flush=True)
    i = 0
    while True:
        i += 1
        Checkpoint(f"2026-01-01T00:00:{i % 60:02d}.{i:06d}Z", [[f"indicator--{i}", "x" * (i % 2000)]]).save(path)
"""


def test_taxii_checkpoint_is_never_torn_by_a_kill(tmp_path):
    from wia_security.connectors.taxii import Checkpoint
    path = tmp_path / "cp.json"
    rnd = random.Random(2406)
    last = 0
    for _ in range(12):
        _kill_when_busy(_writer(CHECKPOINT_WRITER, str(path)), rnd.uniform(0.01, 0.2))
        checkpoint = Checkpoint.load(str(path))             # never half a file: the old or the new one
        [[key, pad]] = checkpoint.seen
        i = int(key.split("--")[1])
        assert checkpoint.added_after.endswith(f".{i:06d}Z") and pad == "x" * (i % 2000)
        assert i >= 1
        last = i
    # a kill during a save leaves at most a temporary file; the next save clears what kills left
    Checkpoint("2026-02-01T00:00:00Z", []).save(str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cp.json"]
    assert Checkpoint.load(str(path)).added_after == "2026-02-01T00:00:00Z" and last


def test_checkpoint_save_syncs_the_file_and_then_its_folder(tmp_path, monkeypatch):
    """The rename is durable only once the directory is synced: without it a power cut can bring back
    the old checkpoint (objects re-read: duplicates) or, on some file systems, an empty file."""
    from wia_security.connectors.taxii import Checkpoint
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    Checkpoint("2026-01-01T00:00:00Z", []).save(str(tmp_path / "cp.json"))
    assert synced == ["file", "dir"]


def test_file_sink_flush_syncs_to_disk(tmp_path, monkeypatch):
    """A source commits its offset/checkpoint after the sink's flush(): that must mean on the disk."""
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), real_fsync(fd)))
    with FileSink(str(tmp_path / "out.ndjson")) as sink:
        assert sink.send([{"id": "a", "type": "alert"}]).delivered == 1
        assert not synced
        sink.flush()
    assert synced and synced[0] == (tmp_path / "out.ndjson").stat().st_ino


def test_sqlite_store_commits_are_durable_not_only_crash_safe(tmp_path):
    """WAL with synchronous=NORMAL survives a killed process but may drop the last commits on power loss,
    after a source has committed its position past them; FULL syncs the WAL at every commit."""
    with SqliteSink(str(tmp_path / "s.db")) as sink:
        assert sink.store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert sink.store._db.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_a_failed_write_does_not_glue_the_next_batch_onto_its_fragment(tmp_path):
    """A write that fails midway (disk full) may leave part of a line; the next batch starts a new one."""
    out = tmp_path / "out.ndjson"
    sink = FileSink(str(out))
    real = sink._fh

    class HalfWrite:
        def write(self, data):
            real.write(bytes(data[: len(data) // 2]))
            raise OSError(28, "No space left on device")

    sink._fh = HalfWrite()
    report = sink.send([{"id": "lost", "type": "alert"}])
    assert report.failed and report.failed[0].retryable
    sink._fh = real
    assert sink.send([{"id": "next", "type": "alert"}]).delivered == 1
    sink.close()
    lines = out.read_bytes().split(b"\n")
    assert json.loads(lines[-2]) == {"id": "next", "type": "alert"}
    with pytest.raises(ValueError):
        json.loads(lines[0])                                  # the fragment is a line of its own
