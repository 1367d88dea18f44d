"""A `file://` destination holds the same events as the event store and the dead letters (0600): a file it
creates is readable by its owner only whatever the umask; a file that exists keeps its owner's mode."""
from __future__ import annotations

import os
import stat

import pytest

from wia_security.connectors import open_sink
from wia_security.connectors.file import FileSink

EVENT = {"$schema": "https://wia.live/security/v1/schema.json", "version": "1.0.0",
         "id": "0b7c2f7e-3b51-4c8e-9a4b-6f1d2e3c4b5a", "type": "alert", "timestamp": "2025-01-01T00:00:00Z",
         "severity": 5, "source": {"type": "custom", "name": "t"},
         "data": {"alert_id": "a1", "title": "mysql -u root -pS3cretPassw0rd", "category": "other",
                  "status": "new", "priority": "medium"}}


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("opens", [lambda p: open_sink(f"file://{p}"), lambda p: open_sink(f"file://{p}?format=cef"),
                                   lambda p: FileSink(str(p), append=False)], ids=["append", "cef", "truncate"])
def test_a_new_output_file_is_private_to_its_owner(tmp_path, umask, opens):
    path = tmp_path / "out.ndjson"
    sink = opens(path)
    report = sink.send([EVENT])
    sink.flush()
    sink.close()
    assert report.delivered == 1 and b"S3cretPassw0rd" in path.read_bytes()
    assert mode(path) == 0o600


@pytest.mark.parametrize("append", [True, False])
def test_an_existing_output_file_keeps_its_mode(tmp_path, umask, append):
    path = tmp_path / "shared.ndjson"
    path.write_bytes(b"")
    os.chmod(path, 0o644)                              # its owner chose to share it
    sink = FileSink(str(path), append=append)
    assert sink.send([EVENT]).delivered == 1
    sink.close()
    assert mode(path) == 0o644
