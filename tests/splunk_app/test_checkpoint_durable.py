"""The modular input's checkpoint is saved durably: a temporary file in the checkpoint folder, fsynced, renamed
over the checkpoint, then the folder fsynced (the rename is durable only then). It fsynced the file and renamed
it but never synced the folder, so a power cut after a run could bring back the previous checkpoint (or none
after the first save) and the pages Splunk had indexed since were indexed a second time. A save that fails
half-way leaves the previous checkpoint whole and no temporary file."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

APP_BIN = Path(__file__).resolve().parents[2] / "splunk_app" / "wia_security" / "bin"


@pytest.fixture
def checkpoint_class():
    sys.path.insert(0, str(APP_BIN))
    try:
        from wia_app.checkpoint import Checkpoint
    finally:
        sys.path.remove(str(APP_BIN))
    return Checkpoint


def _event(n: int) -> dict:
    return {"id": f"00000000-0000-4000-8000-{n:012d}", "type": "alert", "timestamp": "2026-12-01T10:00:00.000Z"}


def test_a_save_fsyncs_the_new_checkpoint_then_renames_it_then_fsyncs_the_folder(checkpoint_class, tmp_path, monkeypatch):
    folder = tmp_path / "modinputs" / "wia_events"
    checkpoint = checkpoint_class(str(folder), "wia_events://feed")
    checkpoint.remember(_event(1))
    checkpoint.save({"cursor": "1"})                    # the first save creates the folder and the file
    steps: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        steps.append(("rename", f"{os.path.abspath(src)} -> {os.path.abspath(dst)}"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    checkpoint.remember(_event(2))
    checkpoint.save({"cursor": "2"})
    monkeypatch.undo()
    assert [kind for kind, _ in steps] == ["fsync", "rename", "fsync"], steps
    (_, temp), (_, moved), (_, synced_folder) = steps
    assert os.path.dirname(temp) == str(folder) and temp != checkpoint.path      # same folder: the rename is atomic
    assert moved == f"{temp} -> {checkpoint.path}"
    assert synced_folder == str(folder)
    assert [p.name for p in folder.iterdir()] == [Path(checkpoint.path).name]     # no temporary file left
    again = checkpoint_class(str(folder), "wia_events://feed")
    assert again.position == {"cursor": "2"} and again.seen(_event(1)) and again.seen(_event(2))


def test_a_save_failing_half_way_leaves_the_previous_checkpoint_whole(checkpoint_class, tmp_path, monkeypatch):
    folder = tmp_path / "wia_events"
    checkpoint = checkpoint_class(str(folder), "wia_events://feed")
    checkpoint.save({"cursor": "1"})
    before = Path(checkpoint.path).read_text()

    def no_space(src, dst) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OSError):
        checkpoint.save({"cursor": "2"})
    monkeypatch.undo()
    assert Path(checkpoint.path).read_text() == before and json.loads(before)["position"] == {"cursor": "1"}
    assert [p.name for p in folder.iterdir()] == [Path(checkpoint.path).name]
