"""`wia-security pull taxii+https://...` against medallion: incremental with a checkpoint file."""
from __future__ import annotations

import json

from servers.medallion import PASSWORD, USER
from strategies import event_dicts
from wia_security.cli import main
from wia_security.connectors.taxii import TaxiiSink


def test_pull_from_a_taxii_collection(medallion, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WIA_TAXII_PASSWORD", PASSWORD)
    events = event_dicts(6, seed=62, event_type="threat_intel")
    with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD) as sink:
        assert sink.send(events).merge(sink.flush()).delivered == 6
    url = "taxii+" + medallion.collection_url() + f"?user={USER}&password_env=WIA_TAXII_PASSWORD"
    args = ["pull", url, "--to", f"sqlite:///{tmp_path}/s.db", "--checkpoint", str(tmp_path / "cp.json"),
            "--dead-letter", str(tmp_path / "dl.ndjson"), "--summary", "json"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["delivered"] == 6
    assert PASSWORD not in out
    assert main(args) == 0                               # the checkpoint: nothing new the second time
    assert json.loads(capsys.readouterr().out)["read"] == 0
