"""The LEEF delimiter option takes only a character no key and no fixed value of a line holds, and the
header options (CEF and LEEF vendor, product) only text.

Keys are never escaped: with `delimiter=$` the key `wia.$schema` was cut in two and the event came
back without its `$schema`, silently (105 of the 108 corpus events differed); `.` cut every
`wia.<path>` key, so a line lost `wia.id` and read back as a foreign `alert`; a letter, digit or `_`
cut `devTime`, `srcPort` or `alert_id`. A delimiter in the devTime/devTimeFormat values every line
holds (`-`, `:`, `+`, `'`) was escaped with this module's backslash, which QRadar does not undo. A
non-printable character above U+FFFF was written as `xE0001`, which the header's 1-4 hex digits
cannot hold (the reader refused the module's own line). `--option vendor:=5` made the CLI die with
an AttributeError traceback."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from wia_security.cli import main
from wia_security.errors import ConversionError
from wia_security.formats import get_format

from wia_corpus import all_events

LEEF = get_format("leef")
SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "alert-sample.json"
CORPUS = [event for _, event in all_events()]


@pytest.mark.parametrize("delimiter", [".", "$", "_", "a", "T", "Z", "0", "9", "-", ":", "+", "'",
                                       "\v", "\f", "\x1c", "\x85", "\u2028", "\u2029", "\U000E0001"])
def test_a_delimiter_that_keys_or_fixed_values_hold_is_refused(delimiter: str) -> None:
    with pytest.raises(ConversionError) as info:
        LEEF.from_wia(CORPUS[0], delimiter=delimiter)
    assert info.value.path == "delimiter"
    assert LEEF.option_problem("delimiter", delimiter)


@pytest.mark.parametrize("delimiter", ["^", "\t", " ", "~", ",", ";", "#", "!", "*", "/", "@", "%", "&", "?",
                                       '"', "{", "]", "\x00", "\x01", "\u00a6", "\u00e9", "\U0001F600"])
def test_every_delimiter_still_taken_gives_every_corpus_event_back(delimiter: str) -> None:
    assert LEEF.option_problem("delimiter", delimiter) is None
    for event in CORPUS:
        line = LEEF.from_wia(event, delimiter=delimiter)
        assert LEEF.to_wia(line) == [event], (delimiter, line[:200])


@pytest.mark.parametrize("fmt", ["cef", "leef"])
@pytest.mark.parametrize("key", ["vendor", "product"])
def test_a_header_option_that_is_not_text_is_refused_by_name(fmt: str, key: str) -> None:
    with pytest.raises(ConversionError) as info:
        get_format(fmt).from_wia(CORPUS[0], **{key: 5})
    assert info.value.path == key and "must be text" in info.value.reason
    assert get_format(fmt).option_problem(key, 5) == "must be text (got int)"
    assert get_format(fmt).option_problem(key, "Acme") is None


@pytest.mark.parametrize("fmt,option", [("cef", "vendor:=5"), ("leef", "product:=[1]"), ("leef", "delimiter=."),
                                        ("leef", "delimiter=$")])
def test_the_cli_refuses_such_an_option_before_reading_anything(fmt: str, option: str, tmp_path, capsys) -> None:
    out, dead = tmp_path / "out.txt", tmp_path / "dead.ndjson"
    code = main(["convert", "--to", fmt, "--option", option, str(SAMPLE), "-o", str(out), "--dead-letter", str(dead)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"--option {option.split(':')[0].split('=')[0]}:" in err and "Traceback" not in err
    assert not dead.exists() or dead.read_text() == ""
    assert not out.exists() or out.read_text() == ""
