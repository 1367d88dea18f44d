"""`wia-security pull taxii+https://...` against medallion: incremental with a checkpoint file."""
from __future__ import annotations

import json
import os

from crash_checks import stored_ids
from servers.medallion import PASSWORD, USER
from strategies import event_dicts
from wia_security.cli import main
from wia_security.connectors.taxii import TaxiiSink
from wia_security.outputs import held_exclusively


def test_pull_from_a_taxii_collection(medallion, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WIA_TAXII_PASSWORD", PASSWORD)
    events = event_dicts(6, seed=62, event_type="threat_intel")
    with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD) as sink:
        assert sink.send(events).merge(sink.flush()).delivered == 6
    url = "taxii+" + medallion.collection_url() + f"?user={USER}&password_env=WIA_TAXII_PASSWORD&settle=0"
    args = ["pull", url, "--to", f"sqlite:///{tmp_path}/s.db", "--checkpoint", str(tmp_path / "cp.json"),
            "--dead-letter", str(tmp_path / "dl.ndjson"), "--summary", "json"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["delivered"] == 6
    assert PASSWORD not in out
    assert main(args) == 0                               # the checkpoint: nothing new the second time
    assert json.loads(capsys.readouterr().out)["read"] == 0


def test_a_second_pull_from_one_checkpoint_stops_before_reading(medallion, tmp_path, capsys, monkeypatch):
    """Two polls from one checkpoint would read the same pages and could save the older position last:
    while one holds the checkpoint, another stops with exit 2, naming the lock, and reads nothing."""
    monkeypatch.setenv("WIA_TAXII_PASSWORD", PASSWORD)
    with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD) as sink:
        assert sink.send(event_dicts(3, seed=63, event_type="threat_intel")).merge(sink.flush()).delivered == 3
    checkpoint = str(tmp_path / "cp.json")
    url = "taxii+" + medallion.collection_url() + f"?user={USER}&password_env=WIA_TAXII_PASSWORD&settle=0"
    args = ["pull", url, "--to", f"sqlite:///{tmp_path}/s.db", "--checkpoint", checkpoint,
            "--dead-letter", str(tmp_path / "dl.ndjson"), "--summary", "json"]
    with held_exclusively(checkpoint, "test"):
        assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{checkpoint}.lock" in err and f"process {os.getpid()}" in err and "another TAXII poll" in err
    assert not (tmp_path / "cp.json").exists() and not stored_ids(tmp_path / "s.db")
    assert main(args) == 0                                # released: the next run reads
    assert json.loads(capsys.readouterr().out)["delivered"] >= 3
