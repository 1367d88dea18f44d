"""The in-process medallion (tests/servers/medallion.py) gives each test a fresh collection without leaving a
file behind: its reset wrote a data file into a new wia-medallion-* folder in /tmp per test and never removed it
(about 3,900 such folders on this machine after a day of runs)."""
from __future__ import annotations

import tempfile

import requests

from servers.medallion import PASSWORD, USER, WRITABLE


def test_a_reset_leaves_no_folder_and_empties_the_collection(medallion_server, tmp_path, monkeypatch):
    medallion_server.load(WRITABLE, [{"type": "indicator", "spec_version": "2.1", "id": "indicator--"
                                      "0b3c2f0e-93a3-4c4a-9d7e-5f0b7a1c2d3e", "created": "2026-01-01T00:00:00.000Z",
                                      "modified": "2026-01-01T00:00:00.000Z", "pattern": "[ipv4-addr:value = '198.51.100.7']",
                                      "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"}],
                          "2026-01-01T00:00:00.000000Z")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    medallion_server.reset()
    assert list(tmp_path.iterdir()) == []
    r = requests.get(medallion_server.collection_url() + "objects/", auth=(USER, PASSWORD),
                     headers={"Accept": "application/taxii+json;version=2.1"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json().get("objects", []) == []
