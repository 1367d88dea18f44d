"""Crash consistency of `wia-security forward`: SIGKILL at seeded random moments, then inspect what is on disk.

The promise: for N events sent, each is delivered or dead-lettered with its reason. A kill -9 can land
anywhere, so after each kill the outputs must be sound (the SQLite store opens and passes
integrity_check, every row whole; NDJSON outputs hold whole records, a torn record only as the last
line), and re-running the same forward must complete the job: every valid event stored exactly once
(idempotent on the event id), every invalid one in the dead-letter file.
"""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from crash_checks import stored_ids
from strategies import event_dicts

N_EVENTS = 30_000
INVALID_EVERY = 97             # one line in 97 is invalid, so the dead-letter file is written all along


def _write_input(path: Path, n: int, seed: int) -> tuple[set[str], set[str]]:
    """n lines: valid events with distinct ids, and every INVALID_EVERY-th one invalid. -> (valid ids, invalid ids)."""
    base = event_dicts(500, seed=seed)
    valid, invalid = set(), set()
    with path.open("w") as fh:
        for i in range(n):
            event = dict(base[i % len(base)], id=str(uuid.UUID(int=i + 1, version=4)))
            if i % INVALID_EVERY == 0:
                event["severity"] = "high"          # not a number: rejected by the schema
                invalid.add(event["id"])
            else:
                valid.add(event["id"])
            fh.write(json.dumps(event) + "\n")
    return valid, invalid


def _forward(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "wia_security", "forward", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_after(proc: subprocess.Popen, delay: float) -> bool:
    """SIGKILL `proc` after `delay` s unless it ended first; True when it was killed."""
    try:
        proc.wait(delay)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        return True


def ndjson_records(path: Path) -> tuple[list[dict], list[bytes]]:
    """(records of the whole lines, torn fragments). A fragment is a line that is not JSON: allowed only
    as the last line, or as a line an earlier crash tore and a later writer closed with a newline."""
    if not path.exists():
        return [], []
    records, torn = [], []
    for line in path.read_bytes().split(b"\n"):
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            torn.append(line)
    return records, torn


def check_store(db_path: Path, universe: set[str]) -> set[str]:
    """The store opens after a kill, passes integrity_check, and holds only whole rows of known events."""
    ids = stored_ids(db_path)
    assert ids <= universe
    return ids


def check_ndjson(path: Path, *, fragments_allowed: int) -> list[dict]:
    records, torn = ndjson_records(path)
    assert len(torn) <= fragments_allowed, torn[:3]
    for fragment in torn:            # a whole record glued onto a torn one would hide in its tail
        assert not any(_parses(fragment[i:]) for i in range(1, len(fragment)) if fragment[i:i + 2] == b'{"'), \
            f"a record was appended onto a torn line: {fragment[:80]!r}..."
    return records


def _parses(text: bytes) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _wait_until_reading(proc: subprocess.Popen, source: Path, timeout: float = 60.0) -> None:
    """Returns once `proc` has read from `source` (its offset there, from /proc, is past 0) or has ended.

    The kill delays count from here, not from the start: on a loaded machine (CI's 2 cores running the
    suite in several workers) Python's start-up alone can outlast every delay, and no kill would land
    mid-run. Off Linux (no /proc) it returns at once."""
    fds = Path(f"/proc/{proc.pid}/fd")
    if not fds.is_dir():
        return
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            for fd in fds.iterdir():
                if os.readlink(fd) == str(source):
                    pos = Path(f"/proc/{proc.pid}/fdinfo/{fd.name}").read_text().split("\n", 1)[0]
                    if int(pos.split()[1]) > 0:
                        return
        except (OSError, ValueError, IndexError):
            pass                                # the process is ending, or an fd closed while listed
        time.sleep(0.002)


def _trials(cmd: list[str], cwd: Path, seed: int, trials: int, inspect, longest: float = 0.7) -> int:
    """Runs `cmd` `trials` times, each SIGKILLed a seeded random delay after it began reading its input
    (cmd[0]), calling inspect() after each."""
    rnd = random.Random(seed)
    kills = 0
    for _ in range(trials):
        proc = _forward(*cmd, cwd=cwd)
        _wait_until_reading(proc, Path(cmd[0]))
        kills += _kill_after(proc, rnd.uniform(0.0, longest - 0.1))
        inspect()
    return kills


def _finish(cmd: list[str], cwd: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "wia_security", "forward", *cmd, "--summary", "json"], cwd=cwd,
                          capture_output=True, timeout=120)
    assert done.returncode == 1, done.stderr.decode()[-2000:]           # 1: the invalid events were rejected
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crash-input")
    valid, invalid = _write_input(folder / "big.ndjson", N_EVENTS, seed=24)
    return folder / "big.ndjson", valid, invalid


@pytest.fixture(scope="module")
def medium(big):
    """The first 10,000 lines of `big`: for outputs that are not idempotent and so grow with each rerun."""
    source, valid, invalid = big
    lines = source.read_text().splitlines(keepends=True)[:10_000]
    path = source.with_name("medium.ndjson")
    path.write_text("".join(lines))
    ids = {json.loads(line)["id"] for line in lines}
    return path, valid & ids, invalid & ids


def test_sigkill_forward_into_sqlite_then_rerun_completes_without_duplicates(big, tmp_path):
    source, valid, invalid = big
    cmd = [str(source), "--to", "sqlite:///s.db", "--dead-letter", "d.ndjson", "--batch-size", "500"]
    seen_rows = []

    def inspect() -> None:
        stored = check_store(tmp_path / "s.db", valid)
        assert len(stored) >= (seen_rows[-1] if seen_rows else 0)     # committed rows survive later kills
        seen_rows.append(len(stored))
        check_ndjson(tmp_path / "d.ndjson", fragments_allowed=len(seen_rows))

    kills = _trials(cmd, tmp_path, seed=2401, trials=20, inspect=inspect)
    assert kills >= 15                                  # the delays mostly land mid-run
    assert 0 < max(seen_rows) and min(seen_rows) < len(valid)
    summary = _finish(cmd, tmp_path)
    assert summary["delivered"] + summary["duplicates"] == len(valid)
    stored = check_store(tmp_path / "s.db", valid)
    assert stored == valid
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == len(valid)    # id is the key: no duplicates
    db.close()
    records = check_ndjson(tmp_path / "d.ndjson", fragments_allowed=21)
    assert {r["event"]["id"] for r in records} == invalid
    assert all(r["reason"].startswith("invalid: ") for r in records)


def test_sigkill_forward_into_a_file_keeps_whole_lines(medium, tmp_path):
    source, valid, invalid = medium
    cmd = [str(source), "--to", "file://" + str(tmp_path / "out.ndjson"), "--dead-letter", "d.ndjson",
           "--batch-size", "300"]
    counts = []

    def inspect() -> None:
        records = check_ndjson(tmp_path / "out.ndjson", fragments_allowed=len(counts) + 1)
        assert {r["id"] for r in records} <= valid
        counts.append(len(records))
        check_ndjson(tmp_path / "d.ndjson", fragments_allowed=len(counts))

    kills = _trials(cmd, tmp_path, seed=2402, trials=8, inspect=inspect, longest=0.35)
    assert kills >= 5
    _finish(cmd, tmp_path)
    records = check_ndjson(tmp_path / "out.ndjson", fragments_allowed=11)
    assert {r["id"] for r in records} == valid          # at least once (a file is not idempotent)
    assert {r["event"]["id"] for r in check_ndjson(tmp_path / "d.ndjson", fragments_allowed=11)} == invalid


def _dead_letter_rows(path: Path) -> set[str]:
    """Event ids in the SQLite dead-letter store, after checking it opens whole."""
    if not path.exists():
        return set()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'dead_letters'").fetchone():
            return set()
        rows = db.execute("SELECT event_id, record FROM dead_letters").fetchall()
    finally:
        db.close()
    assert all(json.loads(record)["event"]["id"] == event_id for event_id, record in rows)
    return {event_id for event_id, _ in rows}


def test_sigkill_forward_fan_out_to_two_destinations(medium, tmp_path):
    """--config fan-out to the store and a file, rejects to the SQLite dead-letter store."""
    source, valid, invalid = medium
    (tmp_path / "wia.toml").write_text(
        '[forward]\nbatch_size = 400\n'
        '[destinations.store]\nurl = "sqlite:///fan.db"\n'
        f'[destinations.archive]\nurl = "file://{tmp_path / "fan.ndjson"}"\n')
    cmd = [str(source), "--config", "wia.toml", "--dead-letter", "sqlite:///dead.db"]
    trials = []

    def inspect() -> None:
        trials.append(1)
        check_store(tmp_path / "fan.db", valid)
        check_ndjson(tmp_path / "fan.ndjson", fragments_allowed=len(trials))
        assert _dead_letter_rows(tmp_path / "dead.db") <= invalid

    kills = _trials(cmd, tmp_path, seed=2403, trials=6, inspect=inspect, longest=0.4)
    assert kills >= 4
    _finish(cmd, tmp_path)
    assert check_store(tmp_path / "fan.db", valid) == valid
    assert {r["id"] for r in check_ndjson(tmp_path / "fan.ndjson", fragments_allowed=7)} == valid
    assert _dead_letter_rows(tmp_path / "dead.db") == invalid


# --- a torn last line (what a kill in the middle of a write, or a power cut, leaves) -----------------

def _torn(path: Path, record: dict) -> bytes:
    text = json.dumps(record).encode()
    fragment = text[: len(text) // 2]
    path.write_bytes(json.dumps({"earlier": "record"}).encode() + b"\n" + fragment)
    return fragment


@pytest.mark.parametrize("output", ["file", "dead-letter"])
def test_appending_after_a_torn_last_line_starts_a_new_line(big, tmp_path, output):
    """The next run must not glue its first record onto the torn fragment (that would lose it too)."""
    source, valid, invalid = big
    small = tmp_path / "small.ndjson"
    small.write_text("".join(source.read_text().splitlines(keepends=True)[:200]))
    target = tmp_path / ("out.ndjson" if output == "file" else "d.ndjson")
    fragment = _torn(target, {"id": "torn", "type": "alert", "note": "x" * 50})
    done = subprocess.run([sys.executable, "-m", "wia_security", "forward", str(small), "--to",
                           "file://" + str(tmp_path / "out.ndjson"), "--dead-letter", "d.ndjson",
                           "--summary", "json"], cwd=tmp_path, capture_output=True, timeout=60)
    assert done.returncode == 1, done.stderr
    records, torn = ndjson_records(target)
    assert torn == [fragment]                            # the fragment stays a line of its own
    assert records[0] == {"earlier": "record"}
    expected = 200 - len(invalid & {json.loads(x)["id"] for x in small.read_text().splitlines()})
    if output == "file":
        assert len(records) == 1 + expected
    else:
        assert len(records) == 1 + (200 - expected)
    os.unlink(target)
