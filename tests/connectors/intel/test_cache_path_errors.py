"""An enrichment cache path that cannot hold a file (its folder is missing, or it is a directory) is one
clear error naming the path: not a "not a usable SQLite database ... moved aside" warning (the folder
cannot be damaged, and a directory was renamed to .corrupt) followed by sqlite3's traceback."""
from __future__ import annotations

import json
import logging

import pytest

from wia_security.cli import main
from wia_security.connectors.intel.cache import EnrichmentCache
from wia_security.errors import ConfigError


def test_a_missing_folder_is_one_error_naming_the_path(tmp_path, caplog):
    path = tmp_path / "no-such-folder" / "vt-cache.db"
    with caplog.at_level(logging.WARNING), pytest.raises(ConfigError) as refused:
        EnrichmentCache(str(path))
    assert str(refused.value) == f"enrichment cache {path}: the folder {path.parent} does not exist"
    assert caplog.text == "" and list(tmp_path.iterdir()) == []


def test_a_directory_is_refused_and_left_where_it_is(tmp_path, caplog):
    folder = tmp_path / "cache"
    folder.mkdir()
    with caplog.at_level(logging.WARNING), pytest.raises(ConfigError, match=f"enrichment cache {folder}: is a directory"):
        EnrichmentCache(str(folder))
    assert caplog.text == "" and sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


@pytest.mark.parametrize("args", [["enrich", "--cache", "{cache}", "in.json"],
                                  ["forward", "--enrich", "virustotal", "--enrich-cache", "{cache}", "--to", "-", "in.json"]])
def test_the_cli_says_it_in_one_line(tmp_path, monkeypatch, capsys, samples, args):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VT_API_KEY", "vt-key-0123456789abcdef")
    (tmp_path / "in.json").write_text(json.dumps(samples["alert-sample"]))
    cache = tmp_path / "missing" / "vt.db"
    code = main([a.replace("{cache}", str(cache)) for a in args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [f"wia-security{' enrich' if args[0] == 'enrich' else ''}: enrichment cache "
                                        f"{cache}: the folder {cache.parent} does not exist"]
