"""An NDJSON input with a pretty-printed value after its first line (`cat a.ndjson b.json`, or `jq .` output
appended to a log) is read value by value: a line that is a lone `{` or `[` can be no NDJSON line, so reading
goes on by bracket depth from there. Each line of the pretty value used to be an error of its own (a 20-line
event gave 19 unparseable dead letters and was lost as an event)."""
from __future__ import annotations

import io
import json

from wia_security.reader import iter_items

A, B, C = {"id": "a", "n": 1}, {"id": "b", "nested": {"k": [1, 2]}}, {"id": "c"}


def _read(text: str) -> list[tuple[int, object]]:
    return [(i.line, i.value if i.ok else "ERR") for i in iter_items(io.BytesIO(text.encode()), "mixed.json")]


def test_a_pretty_object_between_ndjson_lines_is_one_value_at_its_first_line():
    pretty = json.dumps(B, indent=2)
    text = f"{json.dumps(A)}\n{pretty}\n{json.dumps(C)}\n"
    assert _read(text) == [(1, A), (2, B), (2 + pretty.count("\n") + 1, C)]


def test_a_pretty_array_after_ndjson_lines_gives_its_elements():
    text = f"{json.dumps(A)}\n{json.dumps([B, C], indent=2)}\n"
    assert [value for _, value in _read(text)] == [A, B, C]


def test_crlf_and_a_pretty_value_last():
    text = f"{json.dumps(A)}\r\n" + json.dumps(B, indent=4).replace("\n", "\r\n") + "\r\n"
    assert [value for _, value in _read(text)] == [A, B]


def test_a_lone_brace_that_never_closes_is_one_error_and_the_lines_after_it_are_read():
    text = f"{json.dumps(A)}\n{{\n{json.dumps(B)}\n{json.dumps(C)}\n"
    assert _read(text) == [(1, A), (2, "ERR"), (3, B), (4, C)]


def test_a_torn_ndjson_line_is_still_one_error():
    text = f'{json.dumps(A)}\n{{"id": "b", "tr\n{json.dumps(C)}\n'
    assert _read(text) == [(1, A), (2, "ERR"), (3, C)]
