"""A CEF or LEEF line that is a quoted string (`"CEF:0|...",`: a line of a pretty-printed JSON list of
lines, which `convert --from cef` reads one line of text at a time, or a CSV cell) is refused at `line`.
Before, the quote was taken for a syslog prefix and the last key's value kept the closing `"` (and `,`),
with JSON escapes left in: a Check Point line gave `origin: '10.0.0.1"'` silently. Each test builds its
own documents (no shared state)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from wia_security.cli import main
from wia_security.errors import ConversionError
from wia_security.formats import get_format

FOREIGN = Path(__file__).parent / "foreign"
LINES = {"cef": "checkpoint-very-high.log", "leef": "leef2-caret-delimiter.log"}


def _line(fmt: str) -> str:
    return next(line for line in (FOREIGN / fmt / LINES[fmt]).read_text().splitlines() if line.strip())


@pytest.mark.parametrize("fmt", ["cef", "leef"])
@pytest.mark.parametrize("quoted", ['  "{}",', '"{}"', '\t"{}" '])
def test_a_quoted_line_is_refused_at_line(fmt: str, quoted: str) -> None:
    line = _line(fmt)
    assert get_format(fmt).to_wia(line)                  # the line itself reads
    with pytest.raises(ConversionError) as info:
        get_format(fmt).to_wia(quoted.format(line))
    assert info.value.path == "line"
    assert f"the line is a quoted string (a line of a JSON list of lines, or of a CSV export?), not a " \
           f"{fmt.upper()} line" in info.value.reason


@pytest.mark.parametrize("fmt", ["cef", "leef"])
def test_a_quote_in_a_syslog_prefix_or_at_the_end_of_a_value_alone_is_read(fmt: str) -> None:
    line = _line(fmt)
    assert get_format(fmt).to_wia(f'<134>1 2024-03-27T11:25:15Z fw "edge" {line}')
    assert get_format(fmt).to_wia(line + '"')             # no quote before the header: a value's own quote


@pytest.mark.parametrize("fmt", ["cef", "leef"])
def test_convert_refuses_every_quoted_line_of_a_text_input(fmt: str, tmp_path, capsys) -> None:
    """Lines copied out of a JSON list (`"CEF:...",`): a text input, each line refused as a quoted string. (A
    whole JSON list, starting with `[`, is read as JSON: tests/core/cli/test_convert_line_lists.py.)"""
    src = tmp_path / f"list.{fmt}.txt"
    src.write_text("\n".join(json.dumps(_line(fmt)) + "," for _ in range(2)) + "\n")   # two quoted lines
    out, dead = tmp_path / "out.ndjson", tmp_path / "dead.ndjson"
    assert main(["convert", str(src), "--from", fmt, "-o", str(out), "--dead-letter", str(dead)]) == 1
    err = capsys.readouterr().err
    assert out.read_text() == ""                          # nothing read wrong
    assert f"{src}:1: cannot convert from {fmt}: {fmt} at line: the line is a quoted string" in err
    assert f"{src}:2: cannot convert from {fmt}: {fmt} at line: the line is a quoted string" in err
    assert len(dead.read_text().splitlines()) == 2
