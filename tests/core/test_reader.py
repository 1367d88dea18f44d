"""The reader: NDJSON, arrays, pretty and concatenated JSON, gzip; every value with its line; bad input isolated."""
from __future__ import annotations

import gzip
import io
import json

import pytest

from wia_security.reader import InputSource, iter_items


def items(data: bytes):
    return [(i.line, i.value if i.ok else "ERR") for i in iter_items(io.BytesIO(data), "x")]


@pytest.mark.parametrize("data, expected", [
    (b'{"a":1}\n{"b":2}\n', [(1, {"a": 1}), (2, {"b": 2})]),
    (b'\n\n{"a":1}\n\n{"b":2}', [(3, {"a": 1}), (5, {"b": 2})]),
    (b'{"a":1}\r\n{"b":2}\r\n', [(1, {"a": 1}), (2, {"b": 2})]),
    (b'{\n "a": 1,\n "b": {"c": [1, 2]}\n}\n', [(1, {"a": 1, "b": {"c": [1, 2]}})]),
    (b'{\n "a": 1\n}\n{\n "b": 2\n}\n', [(1, {"a": 1}), (4, {"b": 2})]),
    (b'[{"a":1},{"b":2}]', [(1, {"a": 1}), (1, {"b": 2})]),
    (b'[\n {"a":1},\n {\n  "b":2\n },\n 3\n]\n', [(2, {"a": 1}), (3, {"b": 2}), (6, 3)]),
    (b'{"a": "x}]\\"{"}\n', [(1, {"a": 'x}]"{'})]),
    (b"[]", []),
    (b"", []),
    (b'\xef\xbb\xbf{"a":1}\n', [(1, {"a": 1})]),
])
def test_shapes(data, expected):
    assert items(data) == expected


@pytest.mark.parametrize("data, expected", [
    (b'{"a":1}\n{"b":2\n{"c":3}\n', [(1, {"a": 1}), (2, "ERR"), (3, {"c": 3})]),
    (b'{"b":2\n{"c":3}\n{"d":4}\n', [(1, "ERR"), (2, {"c": 3}), (3, {"d": 4})]),
    (b'[\n {"a":1},\n {\n  "b":2\n ', [(2, {"a": 1}), (3, "ERR")]),
    (b'{\n"a":1\n}}\n{"b":1}\n', [(1, {"a": 1}), (3, "ERR"), (4, {"b": 1})]),
    (b'{"a":"\xff"}\n{"b":1}\n', [(1, "ERR"), (2, {"b": 1})]),
])
def test_bad_values_are_isolated(data, expected):
    assert items(data) == expected


def test_errors_name_source_line_and_reason():
    [bad] = [i for i in iter_items(io.BytesIO(b'{"a":1}\n{"a": NaN}\n'), "in.ndjson") if not i.ok]
    assert bad.where == "in.ndjson:2" and "NaN" in bad.error.reason and bad.raw == b'{"a": NaN}'


def test_gzip_is_detected_by_content(tmp_path):
    path = tmp_path / "events.log"
    path.write_bytes(gzip.compress(b'{"a":1}\n{"b":2}\n'))
    with InputSource(str(path)) as src:
        assert src.compressed
        assert [i.value for i in src.items()] == [{"a": 1}, {"b": 2}]


def test_corrupt_gzip_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.gz"
    import os
    lines = b"".join(json.dumps({"r": os.urandom(32).hex()}).encode() + b"\n" for _ in range(500))
    whole = gzip.compress(lines)
    path.write_bytes(whole[: len(whole) // 2])
    with InputSource(str(path)) as src:
        result = list(src.items())
    assert all(i.ok for i in result[:-1]) and len(result) > 10
    assert result[-1].error is not None and "unreadable input" in result[-1].error.reason


def test_large_array_streams_element_by_element(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"i": i} for i in range(20_000)], indent=1))
    with InputSource(str(path)) as src:
        values = [i.value["i"] for i in src.items()]
    assert values == list(range(20_000))
