"""Incremental Splunk pull by index time (`SplunkSearchSource.pull`, `wia-security pull --checkpoint`), driven
by the real splunk-sdk against the Splunk REST contract server, which selects by `_indextime` with
`index_earliest`/`index_latest` and by `_time` with `earliest_time`/`latest_time`.

Every test counts: events in Splunk == delivered + dead-lettered, nothing stored twice."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from crash_checks import stored_ids
from servers.splunk_rest_contract import SplunkRestContractServer
from strategies import event_dicts
from wia_security import jsonio
from wia_security.cli import main
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.splunk.search import (CHECKPOINT_FORMAT, DENSE_WINDOW_EVENTS, MAX_WINDOW,
                                                   SPARSE_WINDOW_EVENTS, SplunkSearchSource, next_window)
from wia_security.connectors.sqlite import SqliteSink
from wia_security.errors import ConfigError, DeliveryError

TOKEN = "eyJraWQiOiJzcGx1bmsuc2VjcmV0IiwiYWxnIjoiSFM1MTIifQ.incremental"
T0 = 1_800_000_000                      # the fake clock's "now" of the first run
TEN_DAYS = 10 * 86400


def _index(rest: SplunkRestContractServer, events: list[dict], indextimes: list[int], event_times: list[float]) -> None:
    for e, indexed_at, at in zip(events, indextimes, event_times):
        rest.index({"event": jsonio.dumps(e), "sourcetype": f"wia:security:{e['type']}", "index": "security",
                    "time": at}, indextime=indexed_at)


def _unique(n: int, seed: int) -> list[dict]:
    """n events with distinct ids (the store's key), generated fast."""
    base = event_dicts(min(n, 300), seed=seed)
    out = []
    for i in range(n):
        e = dict(base[i % len(base)])
        e["id"] = str(uuid.UUID(int=seed * 1_000_000 + i + 1, version=4))
        out.append(e)
    return out


def _dead(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_contract_runs_in_sequence_read_late_events_once(tmp_path):
    """Three runs with a fake clock. Between them, events arrive whose `_time` is ten days old (a
    one-shot `-24h` search never sees them) and whose `_indextime` lands exactly on the checkpoint
    (index_latest is exclusive, index_earliest inclusive) or inside the lag margin."""
    events = _unique(130, seed=3)
    db, checkpoint, dl = tmp_path / "s.db", str(tmp_path / "ck.json"), tmp_path / "dl.ndjson"
    with SplunkRestContractServer({TOKEN}, event_time_filter=True) as rest:
        source = SplunkSearchSource(f"http://127.0.0.1:{rest.port}", token=TOKEN)
        # on time: indexed within the last two hours, just after they happened
        first = [T0 - 7000 + 50 * i for i in range(80)] + [T0 - 61]          # T0 - 61: the last second read
        _index(rest, events[:81], first, [t - 5 for t in first])
        rest.index({"event": "Jan 1 00:00:00 fw1 kernel: DROP", "sourcetype": "wia:security:alert"}, indextime=T0 - 500)
        runs = []

        def run(now: int) -> None:
            with SqliteSink(str(db)) as sink, DeadLetterFile(str(dl)) as dead:
                runs.append(source.pull(sink, dead, checkpoint, start="-2h", lag=60, window=900,
                                        now=lambda: now))

        run(T0)
        assert (runs[0].index_from, runs[0].index_to) == (T0 - 7200, T0 - 60)
        assert json.loads(Path(checkpoint).read_text())["index_time"] == T0 - 60
        # late: indexed at/after the checkpoint, happened ten days ago
        late = [T0 - 60, T0 - 60, T0 - 1, T0 + 100] + [T0 + 101 + i for i in range(40)]
        _index(rest, events[81:125], late, [T0 - TEN_DAYS] * len(late))
        rest.index({"event": "not json", "sourcetype": "wia:security:alert"}, indextime=T0 + 5)
        # indexed within run 2's lag margin: left for run 3
        _index(rest, events[125:], [T0 + 250] * 5, [T0 - TEN_DAYS] * 5)
        run(T0 + 300)
        assert (runs[1].index_from, runs[1].index_to) == (T0 - 60, T0 + 240)
        run(T0 + 1000)
        assert (runs[2].index_from, runs[2].index_to) == (T0 + 240, T0 + 940)
        run(T0 + 1000)                                                     # nothing new: nothing read
        assert runs[3].windows == 0 and runs[3].summary.read == 0
        searches = [s for s in rest.searches if "index_earliest" in s]
        # a one-shot search over the last day misses the late events: the server does select by _time
        one_shot = list(source.events(earliest="-24h"))
    windows = [(int(s["index_earliest"]), int(s["index_latest"])) for s in searches]
    assert all(b == c for (_, b), (c, _) in zip(windows, windows[1:]))      # no gap, no overlap
    assert windows[0][0] == T0 - 7200 and windows[-1][1] == T0 + 940
    # sparse windows (fewer than SPARSE_WINDOW_EVENTS) make the next one twice as long; a run starts at --window
    assert [b - a for a, b in windows] == [900, 1800, 3600, 840, 300, 700]
    assert not any("earliest_time" in s or "latest_time" in s for s in searches)   # all event time
    assert not {e["id"] for e in one_shot} & {e["id"] for e in events[81:]}
    assert [r.summary.read for r in runs] == [82, 45, 5, 0]
    delivered = sum(r.summary.delivered for r in runs)
    dead = sum(r.summary.dead_lettered for r in runs)
    assert sum(r.summary.duplicates for r in runs) == 0
    assert stored_ids(db) == {e["id"] for e in events}
    assert delivered == 130 and dead == 2 == len(_dead(dl))
    assert delivered + dead == 132                                         # everything Splunk holds


class FailingStore(SqliteSink):
    """The SQLite store whose disk fails on the `fail_on`-th batch (the destination, not the Splunk client)."""

    def __init__(self, path: str, fail_on: int) -> None:
        super().__init__(path)
        self.calls, self.fail_on = 0, fail_on

    def send_with_bodies(self, events, bodies):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.fail_on:
            raise DeliveryError("disk I/O error", sink=self.name)
        return super().send_with_bodies(events, bodies)


def test_contract_a_destination_failing_mid_run_keeps_the_checkpoint(tmp_path):
    events = _unique(60, seed=4)
    db, checkpoint, dl = tmp_path / "s.db", str(tmp_path / "ck.json"), tmp_path / "dl.ndjson"
    with SplunkRestContractServer({TOKEN}) as rest:
        # 20 events in each of three 600-second windows
        _index(rest, events, [T0 - 1800 + 30 * i for i in range(60)], [T0 - TEN_DAYS] * 60)
        rest.index({"event": "<14>garbage", "sourcetype": "wia:security:alert"}, indextime=T0 - 1700)
        source = SplunkSearchSource(f"http://127.0.0.1:{rest.port}", token=TOKEN)
        with FailingStore(str(db), fail_on=2) as sink, DeadLetterFile(str(dl)) as dead:
            with pytest.raises(DeliveryError, match="disk I/O error"):
                source.pull(sink, dead, checkpoint, start=str(T0 - 1800), lag=0, window=600, now=lambda: T0)
        # window 1 was delivered, window 2 failed: the checkpoint stops at window 1's end
        assert json.loads(Path(checkpoint).read_text())["index_time"] == T0 - 1200
        assert len(stored_ids(db)) == 20
        with SqliteSink(str(db)) as sink, DeadLetterFile(str(dl)) as dead:
            again = source.pull(sink, dead, checkpoint, lag=0, window=600, now=lambda: T0)
    assert (again.index_from, again.index_to) == (T0 - 1200, T0)
    assert again.summary.delivered == 40 and again.summary.duplicates == 0
    assert stored_ids(db) == {e["id"] for e in events}
    assert 20 + again.summary.delivered + len(_dead(dl)) == 61             # events in Splunk


def test_contract_max_events_bounds_a_run_and_the_next_continues(tmp_path):
    events = _unique(90, seed=5)
    db, checkpoint, dl = tmp_path / "s.db", str(tmp_path / "ck.json"), tmp_path / "dl.ndjson"
    with SplunkRestContractServer({TOKEN}) as rest:
        _index(rest, events, [T0 - 2700 + 30 * i for i in range(90)], [T0 - 2700] * 90)   # 10 per 300 s
        source = SplunkSearchSource(f"http://127.0.0.1:{rest.port}", token=TOKEN)
        results, lines = [], []
        for _ in range(4):
            with SqliteSink(str(db)) as sink, DeadLetterFile(str(dl)) as dead:
                results.append(source.pull(sink, dead, checkpoint, start=str(T0 - 2700), lag=0, window=300, max_events=25,
                                           now=lambda: T0, progress=lines.append))
    # a window is finished before the count is checked: 30 per run (a window of 300 s, 10 events, then a sparse
    # window's successor of 600 s, 20 events)
    assert [r.summary.read for r in results] == [30, 30, 30, 0]
    assert [r.caught_up for r in results] == [False, False, True, True]
    assert results[0].index_from == T0 - 2700 and results[1].index_from == T0 - 1800 and results[2].index_to == T0
    assert "not caught up" in results[0].render() and "index time: " in results[0].render()
    assert stored_ids(db) == {e["id"] for e in events} and not _dead(dl)
    assert len(lines) == 6 and "read 20, delivered 20" in lines[-1]


def test_contract_the_checkpoint_is_refused_when_damaged_or_foreign(tmp_path):
    with SplunkRestContractServer({TOKEN}) as rest:
        _index(rest, _unique(5, seed=6), [T0 - 100] * 5, [T0 - 100] * 5)
        source = SplunkSearchSource(f"http://127.0.0.1:{rest.port}", token=TOKEN)
        path = tmp_path / "ck.json"
        good = {"format": CHECKPOINT_FORMAT, "version": 1, "splunk": f"127.0.0.1:{rest.port}",
                "query": 'search sourcetype="wia:security:*"', "index_time": T0 - 3600}
        damaged = {
            "not JSON": '{"format": "wia-security/splunk-se',                    # a torn write (not ours: atomic)
            "not a Splunk search checkpoint": json.dumps({"added_after": None, "seen": []}),   # a TAXII one
            "is not epoch seconds": json.dumps({**good, "index_time": "yesterday"}),
            "belongs to another search": json.dumps({**good, "query": "search index=other"}),
            "unknown Splunk checkpoint version": json.dumps({**good, "version": 7}),
        }
        for why, text in damaged.items():
            path.write_text(text)
            with SqliteSink(str(tmp_path / "s.db")) as sink, DeadLetterFile(str(tmp_path / "dl")) as dead:
                with pytest.raises(ConfigError) as caught:
                    source.pull(sink, dead, str(path), now=lambda: T0)
            message = str(caught.value)
            assert why in message and str(path) in message and "delete" in message, message
            assert path.read_text() == text                                 # left as it was
        assert stored_ids(tmp_path / "s.db") == set()                       # nothing read, nothing skipped


def _cli(rest: SplunkRestContractServer, tmp_path: Path, *extra: str) -> list[str]:
    return ["pull", f"splunk+http://127.0.0.1:{rest.port}?token_env=WIA_SPLUNK_TOKEN",
            "--to", f"sqlite:///{tmp_path}/s.db", "--dead-letter", str(tmp_path / "dl.ndjson"), *extra]


def test_contract_cli_incremental_pull_says_which_index_times_it_read(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WIA_SPLUNK_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    events = _unique(40, seed=7)
    now = int(time.time())
    with SplunkRestContractServer({TOKEN}, event_time_filter=True) as rest:
        _index(rest, events[:30], [now - 5000 + 100 * i for i in range(30)], [now - TEN_DAYS] * 30)
        rest.index({"event": "Jan 1 00:00:00 fw1 kernel: DROP", "sourcetype": "wia:security:alert"}, indextime=now - 4000)
        code = main(_cli(rest, tmp_path, "--checkpoint", "ck.json", "--index-start=-2h", "--window", "1800",
                         "--summary", "json"))
        after = int(time.time())         # the run's own "now" lies between `now` and `after`
        first = json.loads(capsys.readouterr().out)
        _index(rest, events[30:], [first["index_latest"]] * 10, [now - TEN_DAYS] * 10)   # late, on the boundary
        time.sleep(max(0.0, first["index_latest"] + 61 - time.time()))  # run 2 must reach past the boundary
        code2 = main(_cli(rest, tmp_path, "--checkpoint", "ck.json"))
        captured = capsys.readouterr()
        # the incremental flags without --checkpoint, --latest with it: usage errors
        assert main(_cli(rest, tmp_path, "--lag", "5")) == 2
        assert "--lag only applies to an incremental pull" in capsys.readouterr().err     # was "only apply"
        assert main(_cli(rest, tmp_path, "--lag", "5", "--window", "60")) == 2
        assert "--lag, --window only apply to an incremental pull" in capsys.readouterr().err
        assert main(_cli(rest, tmp_path, "--checkpoint", "ck.json", "--latest", "now")) == 2
    assert code == 1 and first["delivered"] == 30 and first["dead_lettered"] == 1
    assert now - 7200 <= first["index_earliest"] <= after - 7200           # -2h of the run's clock
    assert now - 60 <= first["index_latest"] <= after - 60 and first["windows"] == 3
    assert first["index_time_from"].endswith("Z") and TOKEN not in json.dumps(first)
    assert code2 == 0
    assert f"index time: {first['index_time_to']} .. " in captured.out
    assert re.search(r"delivered +10\n", captured.out) and re.search(r"duplicates +0 ", captured.out)
    assert "splunk: index time" in captured.err and "checkpoint saved" in captured.err
    assert stored_ids(tmp_path / "s.db") == {e["id"] for e in events}
    assert 30 + 10 + len(_dead(tmp_path / "dl.ndjson")) == 41


def test_contract_a_corrupt_checkpoint_stops_the_cli_naming_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WIA_SPLUNK_TOKEN", TOKEN)
    (tmp_path / "ck.json").write_text("\x00\x00\x00garbage")
    with SplunkRestContractServer({TOKEN}) as rest:
        _index(rest, _unique(3, seed=8), [int(time.time()) - 600] * 3, [0] * 3)
        code = main(_cli(rest, tmp_path, "--checkpoint", str(tmp_path / "ck.json")))
        assert not [s for s in rest.searches if "index_earliest" in s]       # no search was run
    err = capsys.readouterr().err
    assert code == 2 and str(tmp_path / "ck.json") in err and "delete" in err
    assert (tmp_path / "ck.json").read_text() == "\x00\x00\x00garbage"


def _count_stored(db_path: Path) -> int:
    """Rows in the store right now, read beside the writer (0 before it exists or while it is locked)."""
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.05)
        try:
            return db.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def test_contract_a_killed_pull_loses_nothing(tmp_path):
    """SIGKILL at a random moment while pulling, three times, then a run to the end: every event is
    stored once (the store dedupes a re-read window by event id) or dead-lettered."""
    rng = random.Random(int(os.environ.get("WIA_CRASH_SEED", random.randrange(1 << 30))))
    events = _unique(3000, seed=9)
    now = int(time.time())
    env = {**os.environ, "WIA_SPLUNK_TOKEN": TOKEN}
    with SplunkRestContractServer({TOKEN}) as rest:
        _index(rest, events, [now - 20000 + 6 * i for i in range(3000)], [now - TEN_DAYS] * 3000)
        for k in range(4):
            rest.index({"event": f"<14>not WIA {k}", "sourcetype": "wia:security:alert"}, indextime=now - 17000 + 4000 * k)
        argv = [sys.executable, "-m", "wia_security", *_cli(rest, tmp_path, "--checkpoint", "ck.json",
                                                                 "--index-start=-6h", "--window", "300")]
        kills, mid_run = 0, []
        for _ in range(3):
            proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            # wait until this run has stored something (on a loaded machine one window can take longer than
            # the random delay below), then kill at a random moment of the pull
            stored_before = _count_stored(tmp_path / "s.db")
            deadline = time.monotonic() + 60
            while _count_stored(tmp_path / "s.db") <= stored_before and proc.poll() is None:
                assert time.monotonic() < deadline, "the pull stored nothing in 60 s"
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.4))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.communicate(timeout=60)
            stored = stored_ids(tmp_path / "s.db")                           # the store opens whole
            mid_run.append(0 < len(stored) < 3000)
            json.loads((tmp_path / "ck.json").read_text())                  # the checkpoint is whole
        final = subprocess.run(argv + ["--summary", "json"], cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert kills >= 1 and any(mid_run), f"no kill while pulling ({kills} kills): the test proved nothing"
    print(f"SIGKILLs: {kills}; stores partly written at the kill: {mid_run}")
    assert final.returncode in (0, 1), final.stderr
    summary = json.loads(final.stdout)
    assert summary["caught_up"] and summary["index_latest"] >= now - 61
    assert stored_ids(tmp_path / "s.db") == {e["id"] for e in events}
    dead = {d["raw"] for d in _dead(tmp_path / "dl.ndjson")}
    assert len(stored_ids(tmp_path / "s.db")) + len(dead) == 3004          # events in Splunk


def test_contract_a_signal_ends_the_pull_with_counts_and_the_checkpoint_before_the_unfinished_window(tmp_path):
    """SIGINT (or SIGTERM) while a window is read: what was read is delivered, the summary is printed with
    exit 130 (143), the checkpoint stays at the last finished window, and the next run reads the rest."""
    events = _unique(3000, seed=11)
    now = int(time.time())
    env = {**os.environ, "WIA_SPLUNK_TOKEN": TOKEN}
    with SplunkRestContractServer({TOKEN}) as rest:
        _index(rest, events, [now - 20000 + 6 * i for i in range(3000)], [now - TEN_DAYS] * 3000)
        argv = [sys.executable, "-m", "wia_security", *_cli(rest, tmp_path, "--checkpoint", "ck.json",
                                                                 "--index-start=-6h", "--window", "3000",
                                                                 "--summary", "json")]
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            searches_before = len(rest.searches)
            proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 60
            while len(rest.searches) == searches_before:
                assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
                time.sleep(0.005)
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == code, err
            summary = json.loads(out)
            assert summary["stopped"] and not summary["caught_up"]
            saved = json.loads((tmp_path / "ck.json").read_text())["index_time"]
            assert saved == summary["index_latest"]         # no further than the windows that were finished
            stored = stored_ids(tmp_path / "s.db")
            assert summary["read"] == summary["delivered"] + summary["duplicates"] + summary["dead_lettered"]
            assert len(stored) >= summary["delivered"]
        final = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["caught_up"]
    assert stored_ids(tmp_path / "s.db") == {e["id"] for e in events}


def test_contract_a_second_pull_from_one_checkpoint_stops_until_the_first_ends(tmp_path):
    """Another process pulling from the checkpoint (here a stand-in that only holds its lock): a run
    stops with exit 2 before any search, naming the lock and that process; once the holder is
    SIGKILLed the operating system has released the lock and a run reads everything."""
    env = {**os.environ, "WIA_SPLUNK_TOKEN": TOKEN}
    checkpoint = str(tmp_path / "ck.json")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom wia_security.outputs import held_exclusively\n"
                               f"with held_exclusively({checkpoint!r}, 'Splunk pull'):\n"
                               "    print('held', flush=True)\n    time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with SplunkRestContractServer({TOKEN}) as rest:
            _index(rest, _unique(5, seed=12), [int(time.time()) - 600] * 5, [0] * 5)
            argv = [sys.executable, "-m", "wia_security", *_cli(rest, tmp_path, "--checkpoint", "ck.json",
                                                                     "--summary", "json")]
            blocked = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            assert blocked.returncode == 2, blocked.stderr
            assert f"(lock ck.json.lock held by process {holder.pid})" in blocked.stderr
            assert "another Splunk pull is running" in blocked.stderr and TOKEN not in blocked.stderr
            assert not [s for s in rest.searches if "index_earliest" in s] and not os.path.exists(checkpoint)
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
            after = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.stdout.close()
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["delivered"] == 5 and os.path.exists(f"{checkpoint}.lock")


def test_contract_a_start_years_back_reads_in_growing_windows(tmp_path):
    """A first pull with --index-start three years back read hour by hour: 26,280 export searches, each scanning
    every bucket of all event time (over 5 minutes against this contract server, hours against a real one).
    Sparse windows now double the next one (up to MAX_WINDOW): every event is read once, with no gap or overlap,
    in a few hundred searches."""
    years = 3 * 365 * 86400
    events = _unique(40, seed=21)
    rng = random.Random(21)
    indexed = sorted(rng.randrange(T0 - years, T0 - 60) for _ in events)
    db, checkpoint, dl = tmp_path / "s.db", str(tmp_path / "ck.json"), tmp_path / "dl.ndjson"
    with SplunkRestContractServer({TOKEN}) as rest:
        _index(rest, events, indexed, [t - 5 for t in indexed])
        source = SplunkSearchSource(f"http://127.0.0.1:{rest.port}", token=TOKEN)
        with SqliteSink(str(db)) as sink, DeadLetterFile(str(dl)) as dead:
            result = source.pull(sink, dead, checkpoint, start=str(T0 - years), lag=60, window=3600,
                                 now=lambda: T0)
        searches = [s for s in rest.searches if "index_earliest" in s]
    windows = [(int(s["index_earliest"]), int(s["index_latest"])) for s in searches]
    assert windows[0] == (T0 - years, T0 - years + 3600) and windows[-1][1] == T0 - 60
    assert all(b == c for (_, b), (c, _) in zip(windows, windows[1:]))      # no gap, no overlap
    assert max(b - a for a, b in windows) == MAX_WINDOW
    assert result.windows == len(windows) < 200                              # was 26,280
    assert result.summary.read == result.summary.delivered == 40 and stored_ids(db) == {e["id"] for e in events}


def test_window_sizes_follow_what_each_window_read():
    assert next_window(3600, 0, 3600) == 7200
    assert next_window(MAX_WINDOW, 0, 3600) == MAX_WINDOW                    # never past the cap
    assert next_window(2 * MAX_WINDOW, 0, 2 * MAX_WINDOW) == 2 * MAX_WINDOW   # nor below a longer --window
    assert next_window(7200, SPARSE_WINDOW_EVENTS, 3600) == 7200             # enough: kept
    assert next_window(28800, DENSE_WINDOW_EVENTS + 1, 3600) == 14400        # too many: halved
    assert next_window(3600, DENSE_WINDOW_EVENTS + 1, 3600) == 3600          # never below --window
