"""Dead letters hold whole events and undecodable input: a new dead-letter file or store is readable by
its owner only (0600) whatever the umask; a file that exists keeps its owner's mode."""
from __future__ import annotations

import os
import stat

import pytest

from wia_security.connectors.base import Rejected
from wia_security.connectors.delivery.dead_letter import open_dead_letter

REJECTED = Rejected("refused", event={"id": "e1", "data": {"command_line": "mysql -u root -pS3cretPassw0rd"}},
                    raw=None)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("spec", ["dead.ndjson", "file://{dir}/dead.ndjson", "sqlite:///{dir}/dead.db"])
def test_a_new_dead_letter_is_private_to_its_owner(tmp_path, umask, spec):
    spec = spec.format(dir=tmp_path) if "{dir}" in spec else str(tmp_path / spec)
    dead = open_dead_letter(spec)
    dead.put(REJECTED)
    open_files = {p.name: mode(p) for p in tmp_path.iterdir()}          # SQLite's -wal and -shm included
    dead.close()
    files = sorted(p for p in tmp_path.iterdir())
    assert open_files and open_files == {name: 0o600 for name in open_files}
    assert files and {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert any("S3cretPassw0rd" in p.read_bytes().decode("utf-8", "replace") for p in files)   # it was written


def test_an_existing_dead_letter_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "dead.ndjson"
    path.write_text("")
    os.chmod(path, 0o640)                       # the owner shares it with a group on purpose
    dead = open_dead_letter(str(path))
    dead.put(REJECTED)
    dead.close()
    assert mode(path) == 0o640 and path.read_text().count("\n") == 1
