"""`wia-security pull taxii+http://...` SIGKILLed mid-poll against medallion (the OASIS TAXII 2.1 server).

The checkpoint file is saved after each delivered page. After every kill it must load (never torn),
the store must open whole, and restarts must end with every published event stored: a checkpoint
ahead of the store would make the next poll skip objects, a torn one would stop it.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("taxii2client", reason="the taxii extra is not installed")

from servers.medallion import PASSWORD, USER, WRITABLE  # noqa: E402  (fixtures: taxii/conftest.py)
from crash_checks import stored_ids  # noqa: E402
from strategies import event_dicts  # noqa: E402
from wia_security.connectors.taxii import DEFAULT_SETTLE_SECONDS, Checkpoint, TaxiiClient, TaxiiSink  # noqa: E402

ROUNDS, PER_ROUND, KILLS_PER_ROUND = 3, 30, 3


def test_pull_killed_mid_poll_resumes_from_a_whole_checkpoint_and_skips_nothing(medallion, tmp_path):
    """Rounds: publish events, SIGKILL pulls at seeded moments (during the poll, the store's commit, the
    checkpoint's save), then let one pull finish. Each round starts from the previous round's checkpoint."""
    url = "taxii+" + medallion.collection_url() + f"?user={USER}&password_env=WIA_TAXII_PASSWORD"
    db, checkpoint = tmp_path / "s.db", tmp_path / "cp.json"
    cmd = [sys.executable, "-m", "wia_security", "pull", url, "--to", f"sqlite:///{db}",
           "--checkpoint", str(checkpoint), "--dead-letter", str(tmp_path / "d.ndjson"), "--summary", "json"]
    env = {**os.environ, "WIA_TAXII_PASSWORD": PASSWORD}
    rnd = random.Random(2408)
    published: set[str] = set()
    kills, saved = 0, []
    for round_ in range(ROUNDS):
        events = event_dicts(PER_ROUND, seed=2408 + round_, event_type="threat_intel")
        with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD) as sink:
            report = sink.send(events).merge(sink.flush())
        assert report.delivered == PER_ROUND, report.failed[:1]
        medallion.clock_offset += DEFAULT_SETTLE_SECONDS + 1       # the round's Add has settled (the default window)
        published |= {e["id"] for e in events}
        for _ in range(KILLS_PER_ROUND):
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            try:
                proc.wait(rnd.uniform(0.2, 1.2))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                kills += 1
            else:
                assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
            assert stored_ids(db) <= published
            if checkpoint.exists():
                saved.append(Checkpoint.load(str(checkpoint)).added_after)    # loads: never half a file
        done = subprocess.run(cmd, capture_output=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        assert stored_ids(db) == published                     # nothing skipped across the kills
        saved.append(Checkpoint.load(str(checkpoint)).added_after)
    assert kills >= ROUNDS * KILLS_PER_ROUND // 2, kills
    assert saved == sorted(saved) and len(set(saved)) == ROUNDS    # the position only moves forward
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temporary files left
    again = subprocess.run(cmd, capture_output=True, timeout=120, env=env)
    assert json.loads(again.stdout)["read"] == 0            # the final checkpoint covers everything


def _wait_until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def test_a_pull_overlapping_a_killed_pulls_request_lists_the_whole_collection(medallion, tmp_path):
    """A SIGKILLed pull's request goes on in its medallion thread after the kill, alongside the next
    pull's. medallion's MemoryBackend has no locking, and each Get Objects sorts the collection's
    manifest in place: while `list.sort` runs, the list reads as empty to other threads. The next
    pull's walk over the manifest then stopped at that point, so it stored an event's indicator
    without its malware (under a derived uuid5 id) and missed the later events; its checkpoint moved
    on (test_pull_killed_mid_poll... failed so once in a full-suite run). The interleaving, made
    deterministic: the pull's walk is paused at an event's indicator while another request enters
    the sort and is paused inside it; the harness serves one request at a time
    (servers.medallion.OneRequestAtATime), so the pull lists everything."""
    events = event_dicts(6, seed=2409, event_type="threat_intel")
    with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD) as sink:
        assert sink.send(events).merge(sink.flush()).delivered == len(events)
    walk_reached, walk_go, sort_reached, sort_go = (threading.Event() for _ in range(4))

    class PausingEntry(dict):
        """A manifest entry pausing the first request that reads it in sort_and_paginate's walk over the
        manifest (`man["id"]`), then the first other one reading it in the key function of its
        `manifest.sort` (`x["date_added"]`)."""

        def __getitem__(self, key):
            caller = sys._getframe(1).f_code.co_name
            if key == "id" and caller == "sort_and_paginate" and not walk_reached.is_set():
                walk_reached.set()
                walk_go.wait(60)
            elif key == "date_added" and caller == "<lambda>" and walk_reached.is_set() and not sort_reached.is_set():
                sort_reached.set()
                sort_go.wait(60)
            return dict.__getitem__(self, key)

    backend = medallion.app.medallion_backend
    manifest = next(c for c in backend.data["api1"]["collections"] if c["id"] == WRITABLE)["manifest"]
    at = next(i for i, entry in enumerate(manifest) if entry["id"].startswith("indicator--"))
    manifest[at] = PausingEntry(manifest[at])             # its event's malware comes later in the manifest
    listed = threading.Event()
    get_objects = backend.get_objects

    def get_objects_then_say_so(*args, **kwargs):
        try:
            return get_objects(*args, **kwargs)
        finally:
            listed.set()
    backend.get_objects = get_objects_then_say_so

    url = "taxii+" + medallion.collection_url() + f"?user={USER}&password_env=WIA_TAXII_PASSWORD&settle=0"
    db = tmp_path / "s.db"
    pull = subprocess.Popen([sys.executable, "-m", "wia_security", "pull", url, "--to", f"sqlite:///{db}",
                             "--checkpoint", str(tmp_path / "cp.json"), "--dead-letter", str(tmp_path / "d.ndjson")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "WIA_TAXII_PASSWORD": PASSWORD})
    abandoned: list = []
    try:
        _wait_until(lambda: walk_reached.is_set() or pull.poll() is not None, "the pull's walk reached the indicator")
        assert walk_reached.is_set(), pull.stderr.read().decode()[-2000:]
        client = TaxiiClient(medallion.collection_url(), user=USER, password=PASSWORD)
        other = threading.Thread(target=lambda: abandoned.append(len(list(client.objects(client.collection())))))
        other.start()
        server = medallion.server.app
        _wait_until(lambda: getattr(server, "waiting", 0) or sort_reached.is_set(), "the other request queued or sorted")
        walk_go.set()
        _wait_until(listed.is_set, "the pull's Get Objects returned")
        sort_go.set()
        out, err = pull.communicate(timeout=120)
        other.join(60)
    finally:
        walk_go.set()
        sort_go.set()
        if pull.poll() is None:
            pull.kill()
            pull.wait(10)
    assert pull.returncode == 0, err.decode()[-2000:]
    assert stored_ids(db) == {e["id"] for e in events}      # no derived-id event, none missing
    assert abandoned == [len(manifest)]
