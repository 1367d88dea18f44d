"""The command-line examples in README.md, as written: every one parses, and every one that needs no server or
API key runs against the bundled samples with the exit code the README promises (0, or 1 for the two samples
that are invalid in strict mode)."""
from __future__ import annotations

import glob
import gzip
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from wia_security.cli import build_parser

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = sorted(ROOT.joinpath("samples").glob("*.json"))


def readme_examples() -> list[list[str]]:
    text = ROOT.joinpath("README.md").read_text()
    section = text.split("## The command line", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    examples = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        while words and re.match(r"^[A-Z_]+=", words[0]):      # VAR=value before the command
            words.pop(0)
        if words:
            assert words[0] == "wia-security", line
            examples.append(words[1:])
    return examples


EXAMPLES = readme_examples()
#: Examples that reach a server or need an API key: checked to parse, not run.
NEEDS_A_SERVER = ("splunk+", "--config", "--enrich", "pull", "serve", "enrich", "intel")


def test_the_readme_has_examples_for_every_command():
    assert {argv[0] for argv in EXAMPLES} >= {"validate", "forward", "convert", "query", "attack", "pull", "serve",
                                              "report", "compliance", "enrich", "intel"}


@pytest.mark.parametrize("argv", EXAMPLES, ids=" ".join)
def test_every_example_parses(argv):
    build_parser().parse_args(argv)            # SystemExit(2) on an option the command does not have


RUNNABLE = [argv for argv in EXAMPLES if not any(word.startswith(NEEDS_A_SERVER) for word in argv)]


@pytest.mark.parametrize("argv", RUNNABLE, ids=" ".join)
def test_every_offline_example_runs_on_the_samples(tmp_path, argv):
    events = b"".join(json.dumps(json.loads(p.read_text())).encode() + b"\n" for p in SAMPLES)
    for name in ("events.ndjson", "in.ndjson"):
        (tmp_path / name).write_bytes(events)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "today.json.gz").write_bytes(gzip.compress(events))
    run = [sys.executable, "-m", "wia_security"]
    store = subprocess.run([*run, "forward", "--lenient", "in.ndjson"], cwd=tmp_path, capture_output=True)
    assert store.returncode == 0                     # the store that query, report and compliance read
    expanded = [match for word in argv for match in (sorted(glob.glob(word, root_dir=tmp_path)) or [word])]
    r = subprocess.run([*run, *expanded], cwd=tmp_path, input=events, capture_output=True, timeout=120)
    err = r.stderr.decode()
    assert "Traceback" not in err
    assert r.returncode in (0, 1), (argv, err)
    if argv[0] == "convert":                         # the five valid samples convert, whatever the format
        assert "7 events read: 5 documents written" in err, err


def test_urls_with_shell_metacharacters_are_quoted():
    """Unquoted, `?` is a glob (zsh stops with "no matches found") and `&` ends the command."""
    text = ROOT.joinpath("README.md").read_text().split("## The command line", 1)[1]
    block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    for line in block.splitlines():
        for word in shlex.split(line, comments=True):
            if "?" in word or "&" in word:
                assert f"'{word}'" in line or f'"{word}"' in line, line
