"""Where the reader says a bad value is (file:line:column) is where it is in the file, in every layout.

Values read by bracket depth (a JSON array, pretty or concatenated documents) were parsed as text cut out of
their line and stripped of the blanks before them, so an error on a value's first line had its column counted
from the value, not the line: in `[{"a":1}, {"b": x}]` (jq -c output) the `x` at column 19 was reported at 7.
"""
from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wia_security.reader as reader
from wia_security.reader import iter_items

MARK = "@"          # never valid JSON outside a string: the error is exactly here


def _errors(data: bytes) -> list[tuple[int, int | None]]:
    return [(i.error.line, i.error.column) for i in iter_items(io.BytesIO(data), "f.json") if i.error is not None]


def _mark_position(text: str) -> tuple[int, int]:
    at = text.index(MARK)
    return text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)


@pytest.mark.parametrize("text", [
    '[{"a":1}, {"b": @}]',                                   # one-line array, second element
    '  [{"a":1}, {"b": @}]\n',                               # the same, indented
    '[\n  {"a":1, "b": @},\n  {"c":2}\n]\n',                 # pretty array, error on the element's first line
    '[\n  1,\n  @\n]\n',                                     # a scalar element
    '{\n  "a": 1\n}\n  {"a": @}\n',                          # concatenated, indented second document
    '{\n  "a": 1\n}  {"a": @}\n',                            # a document starting after another's end
    '{"a": 1} @ {"b": 2}\n',                                 # garbage between one-line documents
    '{\n"a": 1\n}\n{"b": 2} {"c": @}\n',                     # concatenated after a pretty one
    '{"ok":1} {"x": @\n{"c":3}\n',                           # a broken line read again as NDJSON
])
def test_an_error_is_reported_at_its_line_and_column(text):
    assert _errors(text.encode())[:1] == [_mark_position(text)]


def test_columns_count_characters_not_bytes():
    text = '[{"é": "ü"}, {"ß": @}]'
    assert _errors(text.encode())[:1] == [_mark_position(text)]


@st.composite
def layouts_with_one_bad_value(draw):
    values = draw(st.lists(st.one_of(st.integers(-5, 5), st.text("abc é", max_size=3),
                                     st.dictionaries(st.text("xyz", min_size=1, max_size=2), st.integers(0, 9),
                                                     max_size=3)), min_size=1, max_size=5))
    texts = [json.dumps(v, indent=draw(st.sampled_from([None, 1, 2]))) for v in values]
    bad = draw(st.integers(0, len(texts) - 1))
    texts[bad] = draw(st.sampled_from([MARK, '{"k": ' + MARK + "}", '{"k": [1, ' + MARK + "]}",
                                       '{\n  "k": ' + MARK + "\n}", '[\n ' + MARK + "\n]"]))
    layout = draw(st.sampled_from(["ndjson", "array", "pretty-array", "concatenated", "one-line"]))
    pad = draw(st.sampled_from(["", " ", "  ", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    if layout == "ndjson":
        text = "".join(t.replace("\n", " ") + newline for t in texts)
    elif layout == "array":
        text = "[" + ", ".join(t.replace("\n", " ") for t in texts) + "]"
    elif layout == "pretty-array":
        text = "[" + newline + ("," + newline).join(pad + t.replace("\n", newline) for t in texts) + newline + "]"
    elif layout == "concatenated":
        text = newline.join(pad + t.replace("\n", newline) for t in texts) + newline
    else:       # scalars wrapped: "0 {...}" on one line is one value (with extra data), not two
        text = pad + " ".join(t.replace("\n", " ") if t[0] in "{[" + MARK else '{"v": %s}' % t for t in texts)
    return text


@settings(max_examples=400, deadline=None)
@given(text=layouts_with_one_bad_value(), window=st.sampled_from([None, 1, 3, 7, 64]))
def test_any_layout_read_whole_or_in_pieces_names_the_bad_values_position(text, window):
    with pytest.MonkeyPatch.context() as patch:
        if window is not None:          # lines longer than this are read in pieces
            patch.setattr(reader, "LONG_LINE_BYTES", window)
        got = _errors(text.encode())
    assert got and got[0] == _mark_position(text), text


@pytest.mark.parametrize("space", ["\f", "\v", "\u00a0", "\u2028", "\u001e", "\u0085"])
@pytest.mark.parametrize("layout", ["[{space}{{\"a\": 1}}]", "[{{\"a\": 1}},{space}2]",
                                    "{{\n\"a\": 1\n}}\n{space}{{\"b\": 2}}\n",
                                    "{{\n\"a\": 1\n}}{space}\n",
                                    "{{\"a\": 1}}\n{space}{{\"b\": 2}}\n", "{{\"a\": 1}}\n{space}\n{{\"b\": 2}}\n"])
def test_only_json_whitespace_separates_values(layout, space):
    """RFC 8259 whitespace is space, tab, CR and LF. A value with a form feed, NBSP, U+2028 or an RS (RFC 7464
    json-seq) beside it was read as if they were blanks in arrays and pretty documents, while the same text
    in an NDJSON line was an error: now it is an error in every layout, at the character's position."""
    text = layout.format(space=space)
    items = list(iter_items(io.BytesIO(text.encode()), "f.json"))
    errors = [(i.error.line, i.error.column) for i in items if i.error is not None]
    at = text.index(space)
    assert errors and errors[0][0] == text.count("\n", 0, at) + 1, (text, errors)
    assert "truncated" not in str([i.error for i in items if i.error is not None][0])


def test_after_a_broken_line_read_again_the_next_lines_columns_start_at_their_line():
    text = '{"ok":1} {"x": 1\n{"good": 2}\n{"y": @}\n'
    assert _errors(text.encode()) == [(1, 17), _mark_position(text)]
