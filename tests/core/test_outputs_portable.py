"""core/outputs.py on a Python without POSIX-only calls (Windows, where the Splunk app's checkpoints and dead-letter
logs are written too): saving a checkpoint opened its folder with os.open, which Windows refuses (PermissionError:
every save failed), and appending to a dead-letter file read its last byte with os.pread, which Windows lacks
(AttributeError). Simulated here by taking those away."""
from __future__ import annotations

import os

import pytest

from wia_security.outputs import open_append, replace_durably


@pytest.fixture
def like_windows(monkeypatch):
    real_open = os.open

    def no_folders(path, flags, *args, **kwargs):     # Windows' os.open of a directory
        if os.path.isdir(path):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.delattr(os, "O_DIRECTORY", raising=False)
    monkeypatch.delattr(os, "pread", raising=False)
    monkeypatch.setattr(os, "open", no_folders)


def test_a_checkpoint_is_replaced_without_a_folder_sync(tmp_path, like_windows):
    path = tmp_path / "checkpoint.json"
    path.write_text('{"old": 1}')
    replace_durably(str(path), '{"new": 2}')
    assert path.read_text() == '{"new": 2}'
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"]        # no temporary file left


def test_a_torn_last_record_is_still_ended_before_the_next(tmp_path, like_windows):
    path = tmp_path / "dead.ndjson"
    path.write_bytes(b'{"whole": 1}\n{"torn": ')
    with open_append(str(path)) as fh:
        fh.write(b'{"next": 2}\n')
    assert path.read_bytes() == b'{"whole": 1}\n{"torn": \n{"next": 2}\n'
