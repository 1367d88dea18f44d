"""Strict JSON: RFC 8259 only, bounded depth, precise errors, same verdicts with or without orjson."""
from __future__ import annotations

import pytest

from wia_security import jsonio
from wia_security.errors import ParseError


@pytest.fixture(params=["orjson", "stdlib"])
def parser(request, monkeypatch):
    if request.param == "stdlib":
        monkeypatch.setattr(jsonio, "_orjson", None)
    return jsonio.loads


@pytest.mark.parametrize("text, reason", [
    ('{"a": NaN}', "NaN is not valid JSON"),
    ('{"a": Infinity}', "Infinity is not valid JSON"),
    ('{"a": 1', "truncated JSON"),
    ("[" * (jsonio.MAX_DEPTH + 1) + "]" * (jsonio.MAX_DEPTH + 1), "nesting deeper than"),
    ('{"a": 1} x', "Extra data"),
])
def test_rejections(parser, text, reason):
    with pytest.raises(ParseError) as exc:
        parser(text.encode())
    assert reason in exc.value.reason


def test_depth_at_the_limit_is_fine_and_brackets_in_strings_do_not_count(parser):
    deep = "[" * jsonio.MAX_DEPTH + "]" * jsonio.MAX_DEPTH
    assert parser(deep.encode())
    assert parser(('{"s": "' + "[" * 1000 + '"}').encode()) == {"s": "[" * 1000}


def test_utf8_errors_name_the_offset(parser):
    with pytest.raises(ParseError) as exc:
        parser(b'{"a": "\xc3\x28"}', source="f.json", line=7)
    assert exc.value.offset == 7 and exc.value.line == 7 and str(exc.value).startswith("f.json:7")


def test_round_trip_of_unicode(parser):
    value = {"s": "\u00e9\u4e2d\U0001f600\u200f|\\\"\n"}
    assert parser(jsonio.dumpb(value)) == value
