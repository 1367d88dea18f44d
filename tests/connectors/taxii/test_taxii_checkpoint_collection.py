"""A TAXII checkpoint holds a position in one collection's date_added sequence. It recorded no collection, so
`pull` of a second collection with the same file (the default wia-taxii-checkpoint.json in one working directory,
or a copied command line) resumed there and skipped, without a word, every object the second collection had added
before that date. The checkpoint now records its collection, and another collection's poll is refused naming both
(exit 2, nothing read); a checkpoint written before (no collection) is taken and records it. Against medallion."""
from __future__ import annotations

import json

from crash_checks import stored_ids
from servers.medallion import PASSWORD, READ_ONLY, USER, WRITABLE
from strategies import event_dicts
from wia_security.cli import main
from wia_security.connectors.taxii import Checkpoint


def _pull(medallion, collection: str, tmp_path, store: str) -> list[str]:
    url = "taxii+" + medallion.collection_url(collection) + f"?user={USER}&password_env=WIA_TAXII_PASSWORD&settle=0"
    return ["pull", url, "--to", f"sqlite:///{tmp_path}/{store}", "--checkpoint", str(tmp_path / "cp.json"),
            "--dead-letter", str(tmp_path / "dl.ndjson"), "--summary", "json"]


def _seed(medallion, collection: str, events: list[dict], date_added: str) -> None:
    from wia_security import convert
    objects = [o for e in events for o in convert(e, to="stix")["objects"]
               if o["type"] != "extension-definition"]          # its `version` breaks medallion (taxii.md)
    medallion.load(collection, objects, date_added)


def test_a_checkpoint_of_one_collection_is_refused_for_another(medallion, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WIA_TAXII_PASSWORD", PASSWORD)
    older = event_dicts(3, seed=71, event_type="threat_intel")
    newer = event_dicts(2, seed=72, event_type="threat_intel")
    _seed(medallion, READ_ONLY, older, "2025-01-01T00:00:00.000000Z")       # added before the other's position
    _seed(medallion, WRITABLE, newer, "2025-06-01T00:00:00.000000Z")
    assert main(_pull(medallion, WRITABLE, tmp_path, "a.db")) == 0
    assert json.loads(capsys.readouterr().out)["delivered"] == 2
    saved = json.loads((tmp_path / "cp.json").read_text())
    assert saved["collection"] == medallion.collection_url(WRITABLE)

    assert main(_pull(medallion, READ_ONLY, tmp_path, "b.db")) == 2     # before: exit 0, 0 events read
    err = capsys.readouterr().err
    assert f"holds the position in {medallion.collection_url(WRITABLE)}" in err
    assert medallion.collection_url(READ_ONLY) in err and "its own --checkpoint" in err
    assert not stored_ids(tmp_path / "b.db") and json.loads((tmp_path / "cp.json").read_text()) == saved

    (tmp_path / "cp.json").unlink()                                       # its own checkpoint: every object
    assert main(_pull(medallion, READ_ONLY, tmp_path, "b.db")) == 0
    assert json.loads(capsys.readouterr().out)["delivered"] == 3


def test_a_checkpoint_written_before_collections_were_recorded_is_taken_and_records_it(medallion, tmp_path, capsys,
                                                                                       monkeypatch):
    monkeypatch.setenv("WIA_TAXII_PASSWORD", PASSWORD)
    _seed(medallion, WRITABLE, event_dicts(2, seed=73, event_type="threat_intel"), "2025-06-01T00:00:00.000000Z")
    (tmp_path / "cp.json").write_text(json.dumps({"added_after": "2025-01-01T00:00:00.000000Z", "seen": []}))
    assert main(_pull(medallion, WRITABLE, tmp_path, "a.db")) == 0
    assert json.loads(capsys.readouterr().out)["delivered"] == 2
    loaded = Checkpoint.load(str(tmp_path / "cp.json"))
    assert loaded.collection == medallion.collection_url(WRITABLE) and loaded.added_after.startswith("2025-06-01")
    # the same collection spelt without the final slash, or with the host in capitals, is the same collection
    loaded.check_collection(medallion.collection_url(WRITABLE).rstrip("/").replace("127.0.0.1", "127.0.0.1"), "cp")
    loaded.check_collection(medallion.collection_url(WRITABLE).replace("http://", "HTTP://"), "cp")
