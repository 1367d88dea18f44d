"""`forward --enrich virustotal` checks what enrichment needs (the cache path, the API key) before it opens the
destination: opening one creates it (a SQLite store, an output file), so a refused --enrich-cache left a new, empty
destination behind."""
from __future__ import annotations

import json

import pytest


@pytest.fixture
def one_event(tmp_path, samples):
    (tmp_path / "in.json").write_text(json.dumps(samples["alert-sample"]))
    return "in.json"


DESTINATIONS = [([], "wia-events.db"), (["--to", "sqlite:///out.db"], "out.db"),
                (["--to", "file:///{tmp}/out.ndjson"], "out.ndjson")]


@pytest.mark.parametrize("to, created", DESTINATIONS)
@pytest.mark.parametrize("cache, says", [
    ("missing/vt.db", "enrichment cache {cache}: the folder {tmp}/missing does not exist"),
    ("a-folder", "enrichment cache {cache}: is a directory (give a file path)"),
])
def test_a_bad_cache_path_is_refused_before_the_destination_is_created(cli, tmp_path, monkeypatch, one_event,
                                                                        to, created, cache, says):
    monkeypatch.setenv("VT_API_KEY", "vt-key-0123456789abcdef")
    (tmp_path / "a-folder").mkdir()
    cache_path = str(tmp_path / cache)
    before = sorted(p.name for p in tmp_path.iterdir())
    run = cli("forward", one_event, *[a.format(tmp=tmp_path) for a in to], "--enrich", "virustotal",
              "--enrich-cache", cache_path)
    assert run.code == 2
    assert run.err.strip().splitlines() == [f"wia-security: {says.format(cache=cache_path, tmp=tmp_path)}"]
    assert not (tmp_path / created).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before        # no dead-letter file either


def test_a_missing_api_key_is_refused_before_the_destination_is_created(cli, tmp_path, monkeypatch, one_event):
    monkeypatch.delenv("VT_API_KEY", raising=False)
    run = cli("forward", one_event, "--to", "sqlite:///out.db", "--enrich", "virustotal")
    assert run.code == 2 and "set the VirusTotal API key in $VT_API_KEY" in run.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]


@pytest.mark.parametrize("refused, says", [
    (["--to", "nosuch://x"], "nosuch"),                                              # open_sink refuses it
    (["--to", "sqlite:///out.db", "--dead-letter", "no-such-folder/dead.ndjson"], "dead-letter"),
])
def test_a_destination_refused_after_the_enricher_was_made_closes_it(cli, tmp_path, monkeypatch, one_event,
                                                                      refused, says):
    """The enricher is made first now: a refusal after it lets its thread and its cache go."""
    import threading
    monkeypatch.setenv("VT_API_KEY", "vt-key-0123456789abcdef")
    run = cli("forward", one_event, *refused, "--enrich", "virustotal", "--enrich-cache", str(tmp_path / "vt.db"))
    assert run.code == 2 and says in run.err
    assert not [t for t in threading.enumerate() if t.name == "vt-enricher" and t.is_alive()]


def test_a_good_cache_path_still_enriches_and_delivers(cli, tmp_path, monkeypatch, one_event):
    monkeypatch.setenv("VT_API_KEY", "vt-key-0123456789abcdef")
    monkeypatch.setenv("VT_API_URL", "http://127.0.0.1:9")        # nothing listens: enrichment skipped, delivered
    run = cli("forward", one_event, "--to", "sqlite:///out.db", "--enrich", "virustotal",
              "--enrich-cache", str(tmp_path / "vt.db"))
    assert run.code == 0, run.err
    assert (tmp_path / "out.db").exists() and (tmp_path / "vt.db").exists()
