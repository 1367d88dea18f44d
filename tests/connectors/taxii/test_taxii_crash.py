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

import pytest

pytest.importorskip("taxii2client", reason="the taxii extra is not installed")

from servers.medallion import PASSWORD, USER  # noqa: E402  (fixtures: taxii/conftest.py)
from crash_checks import stored_ids  # noqa: E402
from strategies import event_dicts  # noqa: E402
from wia_security.connectors.taxii import Checkpoint, TaxiiSink  # noqa: E402

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
