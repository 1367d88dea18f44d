"""A CEF key cut to its dictionary length (proto: 31 UTF-16 units) must not end in half a surrogate pair: the line
must still be UTF-8 (a file, syslog or `wia-security convert --to cef` writes it as such). Found by the chained
convert path (tests/e2e/test_convert_chain.py) with generated unicode strings."""
from __future__ import annotations

import pytest
from e2e_helpers import expected, write_ndjson
from strategies import event_dicts

from wia_security import convert, parse
from wia_security.cli import main

# 30 code points, 2 of them outside the BMP: 32 UTF-16 units, cut to 31 inside the second emoji
PROTOCOL = "\U0001F600" + "a" * 28 + "\U0001F600"


def alert() -> dict:
    event = expected(event_dicts(1, seed=1470, event_type="alert")[0])
    event.setdefault("context", {}).setdefault("network", {})["protocol"] = PROTOCOL
    return event


def test_a_cut_cef_value_is_still_utf8_and_reads_back():
    line = convert(alert(), to="cef")
    line.encode("utf-8")                          # UnicodeEncodeError: surrogates not allowed
    assert parse(line, from_="cef")[0].to_dict()["context"]["network"]["protocol"] == PROTOCOL


def test_convert_to_cef_on_the_command_line_writes_it(tmp_path, capsys):
    src = write_ndjson(tmp_path / "in.ndjson", [alert()])
    assert main(["convert", str(src), "--to", "cef", "-o", str(tmp_path / "out.cef"),
                 "--dead-letter", str(tmp_path / "dl"), "--no-progress"]) == 0
