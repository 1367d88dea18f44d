"""Path 2b: `forward` -> the TAXII sink -> medallion 3.0.0 (the OASIS reference TAXII server) -> `pull taxii+http://`
(checkpoint) -> a `sqlite:` store and an NDJSON file. Threat intel updated on the way (a newer version, then a late
re-send of the older one): the pulled store ends with the newest version of each event once, a re-poll reads
nothing, and every event is counted."""
from __future__ import annotations


import pytest
from e2e_helpers import cli_summary, expected, newer, read_ndjson, store_rows, write_ndjson
from strategies import event_dicts


pytest.importorskip("taxii2client", reason="the taxii extra is not installed")

from servers.medallion import PASSWORD, USER  # noqa: E402


def run(args: list[str], capsys) -> dict:
    return cli_summary(args, capsys)


def test_taxii_sink_to_medallion_to_pull_keeps_the_newest_version(medallion, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("E2E_TAXII_PASSWORD", PASSWORD)
    collection = medallion.collection_url()
    sink = f"taxii+{collection}?user={USER}&password_env=E2E_TAXII_PASSWORD&max_wait=0"
    source = f"taxii+{collection}?user={USER}&password_env=E2E_TAXII_PASSWORD&settle=0"
    intel = event_dicts(6, seed=1495, event_type="threat_intel")
    updated = [newer(e, 5, severity=(e["severity"] + 1) % 11) for e in intel[:3]]

    def forward(name: str, events: list[dict]) -> dict:
        return run(["forward", str(write_ndjson(tmp_path / f"{name}.ndjson", events)), "--to", sink,
                    "--dead-letter", str(tmp_path / f"{name}-dead.ndjson"), "--no-progress"], capsys)

    def pull(checkpoint: str, to: str) -> dict:
        return run(["pull", source, "--to", to, "--checkpoint", str(tmp_path / checkpoint),
                    "--dead-letter", str(tmp_path / "pull-dead.ndjson")], capsys)

    assert forward("first", intel)["delivered"] == 6
    assert pull("cp.json", f"sqlite:///{tmp_path}/pulled.db")["delivered"] == 6
    assert forward("updates", updated)["exit"] == 0
    assert forward("late", intel[:3])["exit"] == 0                    # the older versions again, late
    later = pull("cp.json", f"sqlite:///{tmp_path}/pulled.db")
    assert pull("cp.json", f"sqlite:///{tmp_path}/pulled.db")["read"] == 0
    scratch = pull("cp-file.json", f"file://{tmp_path}/all.ndjson")  # a reader from the start, to a file

    newest = {e["id"]: expected(e) for e in [*intel, *updated]}
    rows = store_rows(tmp_path / "pulled.db")
    assert {i: v[0] for i, v in rows.items()} == newest and all(len(v) == 1 for v in rows.values())
    assert later["exit"] == 0, later
    # the file reader takes what the collection serves: each event once, in its newest version
    from_file = read_ndjson(tmp_path / "all.ndjson")
    assert scratch["exit"] == 0 and sorted(e["id"] for e in from_file) == sorted(newest)
    assert {e["id"]: e for e in from_file} == newest
    assert not read_ndjson(tmp_path / "pull-dead.ndjson")

