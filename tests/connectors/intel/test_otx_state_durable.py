"""The OTX cursor is saved crash-safely: a temporary file in the state file's folder, fsynced, renamed over the
state file, then the folder fsynced. It was renamed without any fsync, so a power cut after commit() could
leave an empty or missing state file (the next poll re-reads everything, or stops on an unreadable state),
or the old cursor after events past it were already counted delivered. Driven against the OTX contract server."""
from __future__ import annotations

import json
import os

from otx_contract import OtxServer
from wia_security.connectors.intel.otx import OtxSource, account_fingerprint

KEY = "otx-test-key"
PULSE = {"id": "65a1b2c3d4e5f6a7b8c9d001", "name": "Pulse 1", "author_name": "AlienVault", "tlp": "white",
         "created": "2026-01-01T00:00:00.000000", "modified": "2026-02-07T10:00:00.000000", "revision": 1,
         "indicators": [{"id": 1, "indicator": "198.51.100.1", "type": "IPv4", "created": "2026-01-01T00:00:00"}]}


def test_commit_fsyncs_the_new_state_then_renames_it_then_fsyncs_the_folder(tmp_path, monkeypatch):
    state = tmp_path / "otx-state.json"
    steps: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        steps.append(("rename", f"{os.path.abspath(src)} -> {os.path.abspath(dst)}"))
        real_replace(src, dst)

    with OtxServer(api_key=KEY) as otx:
        otx.pulses = [PULSE]
        source = OtxSource(KEY, base_url=otx.url, state_path=str(state))
        assert len(list(source.poll())) == 1
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        source.commit()
    assert json.loads(state.read_text()) == {"modified_since": "2026-02-07T10:00:00.000000", "server": otx.url,
                                             "account": account_fingerprint(KEY)}
    assert len(steps) == 3, steps
    (sync_file, temp), (rename, moved), (sync_dir, folder) = steps
    assert (sync_file, rename, sync_dir) == ("fsync", "rename", "fsync")
    assert os.path.dirname(temp) == str(tmp_path) and temp != str(state)       # same folder: rename is atomic
    assert moved == f"{temp} -> {state}"
    assert folder == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["otx-state.json"]      # no temporary file left
