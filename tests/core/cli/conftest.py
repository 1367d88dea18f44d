"""Running the CLI in-process (for speed) with captured output."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from wia_security.cli import main


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """cli(*args) -> Run(code, out, err), run in a temporary working directory."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> Run:
        try:
            code = main(list(args))
        except SystemExit as exc:       # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
