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


@pytest.mark.parametrize("text, pointer, line, column", [
    ("1e400", "", 1, 1),
    ('{"a": {"b/c~": [1, -1e400]}}', "/a/b~1c~0/1", 1, 20),
    ('{\n  "s": "1e400",\n  "y": 2.5E999\n}', "/y", 3, 8),
    ('[1.0, 1e308, {"x": 1e309}]', "/2/x", 1, 20),
])
def test_a_number_beyond_a_double_is_refused_with_line_column_and_pointer(parser, text, pointer, line, column):
    # Read as infinity it would be written back as null (orjson) or not at all (json): a silent change.
    with pytest.raises(ParseError) as exc:
        parser(text.encode(), source="f.ndjson")
    assert (exc.value.path, exc.value.line, exc.value.column) == (pointer, line, column)
    assert str(exc.value).startswith(f"f.ndjson:{line}:{column}: number ")
    assert f"is beyond a 64-bit float's range (at {pointer or '/'})" in exc.value.reason


def test_overflow_position_counts_from_the_documents_first_line(parser):
    with pytest.raises(ParseError) as exc:
        parser(b'{\n"a": 1e400}', source="f.json", line=10)
    assert (exc.value.line, exc.value.column, exc.value.path) == (11, 6, "/a")


def test_overflow_before_a_syntax_error_still_names_its_position(parser):
    with pytest.raises(ParseError) as exc:
        parser(b'{"a": 1e400, "b": }')
    assert (exc.value.line, exc.value.column, exc.value.path) == (1, 7, None)
    assert exc.value.reason == "number 1e400 is beyond a 64-bit float's range"


def test_infinity_opt_in_reads_overflow_as_inf_for_callers_that_check_values(parser):
    assert parser(b'{"a": [1e400, -1e400]}', infinity=True) == {"a": [float("inf"), float("-inf")]}
    with pytest.raises(ParseError, match="NaN is not valid JSON"):
        parser(b'{"a": NaN}', infinity=True)


def test_the_largest_finite_doubles_and_numbers_in_strings_are_fine(parser):
    assert parser(b'[1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 1e-400, "1e400"]') == \
        [1.7976931348623157e308, -1.7976931348623157e308, 5e-324, 0.0, "1e400"]


@pytest.mark.parametrize("with_orjson", [True, False])
def test_integers_beyond_64_bits_are_written_exactly(monkeypatch, with_orjson):
    if not with_orjson:
        monkeypatch.setattr(jsonio, "_orjson", None)
    doc = {"big": 2 ** 70, "neg": -(2 ** 64), "list": [10 ** 30]}
    assert jsonio.dumps(doc) == '{"big":1180591620717411303424,"neg":-18446744073709551616,"list":[' + "1" + "0" * 30 + "]}"
    assert jsonio.dumpb(doc) == jsonio.dumps(doc).encode()
    with pytest.raises(TypeError):
        jsonio.dumpb({"x": object()})


@pytest.mark.parametrize("text, pointer, line, column, char", [
    ('"\\ud800"', "", 1, 1, "d800"),
    ('{"a": ["ok", "x\\udc00y"]}', "/a/1", 1, 14, "dc00"),
    ('{"k\\uDBFF": 1}', "/k\\udbff", 1, 2, "dbff"),                 # in a key; the pointer stays printable
    ('{\n"a":\n "\\ud800 and \\ud83d\\ude00"}', "/a", 3, 2, "d800"),
])
def test_a_lone_surrogate_is_refused_with_line_column_and_pointer(parser, text, pointer, line, column, char):
    # Half of a UTF-16 pair is not Unicode text: orjson refuses it, and no UTF-8 writer downstream could write it.
    with pytest.raises(ParseError) as exc:
        parser(text.encode(), source="f.ndjson")
    assert (exc.value.path, exc.value.line, exc.value.column) == (pointer, line, column)
    assert f"lone surrogate \\u{char} in a string (at {pointer or '/'})" in str(exc.value)
    str(exc.value).encode("utf-8")                                   # the message itself is writable


def test_surrogate_pairs_and_escaped_backslashes_are_fine(parser):
    assert parser(b'["\\ud83d\\ude00", "\\\\ud800", "\\\\uD800"]') == ["\U0001F600", "\\ud800", "\\uD800"]


def test_dumps_of_a_lone_surrogate_still_fails_as_a_type_error_with_orjson():
    assert jsonio._orjson is not None                                # part of the test install
    with pytest.raises(TypeError, match="surrogates"):
        jsonio.dumpb({"a": "\ud800"})


@pytest.mark.parametrize("text, expected", [
    ("[18446744073709551616]", [2 ** 64]),                           # one past orjson's widest integer
    ('{"a": {"b": -9223372036854775809}}', {"a": {"b": -(2 ** 63) - 1}}),
    ("[" + "9" * 40 + "]", [10 ** 40 - 1]),
    ("[18446744073709551615, -9223372036854775808]", [2 ** 64 - 1, -(2 ** 63)]),   # still orjson's
])
def test_integers_beyond_64_bits_are_read_exactly(parser, text, expected):
    # orjson reads them as rounded floats (1.8446744073709552e+19): a silent change of the value.
    value = parser(text)
    assert value == expected
    assert jsonio.dumps(value) == text.replace(" ", "")
    assert parser(text.encode()) == expected


def test_wide_digits_finds_20_digit_runs_and_negative_19_digit_runs_only():
    assert jsonio.wide_digits(b'{"n": 12345678901234567890}')
    assert jsonio.wide_digits('{"n": 12345678901234567890}')
    assert jsonio.wide_digits(bytearray(b"1" * 25))
    assert not jsonio.wide_digits(b'{"n": 1234567890123456789, "m": 0.1234567890123456789}')
    assert not jsonio.wide_digits(b"1234567890 1234567890")
    assert jsonio.wide_digits(b"[-9223372036854775809]") and jsonio.wide_digits("[-9223372036854775809]")
    assert not jsonio.wide_digits(b"[-922337203685477580]")


def test_an_integer_longer_than_python_converts_is_refused_with_line_column_and_pointer(parser):
    text = '{"s": "' + "1" * 5000 + '",\n "b": [0, -' + "9" * 4301 + "]}"      # digits in a string do not count
    with pytest.raises(ParseError) as exc:
        parser(text, source="f.json", line=3)
    assert (exc.value.line, exc.value.column, exc.value.path) == (4, 11, "/b/1")
    assert exc.value.reason == "integer of 4,301 digits is longer than the 4,300 digits a number may have (at /b/1)"
    assert parser("[" + "9" * 4300 + "]") == [int("9" * 4300)]


def test_a_long_exponent_float_before_the_long_integer_is_not_taken_for_it(parser):
    # 1 and 4,300 zeros times 10**-4290 is 1e10: a float (no digit limit), 4,307 characters long without a
    # "." (helper 62: the scan named it, at column 2 with no pointer and "4,307 digits")
    long_float = "1" + "0" * 4300 + "e-4290"
    text = "[" + long_float + ", " + "9" * 4301 + "]"
    with pytest.raises(ParseError) as exc:
        parser(text)
    assert (exc.value.line, exc.value.column, exc.value.path) == (1, len(long_float) + 4, "/1")
    assert exc.value.reason == "integer of 4,301 digits is longer than the 4,300 digits a number may have (at /1)"
    assert parser("[" + long_float + "]") == [1e10]


@pytest.mark.parametrize("text, pointer, line, column", [
    ('"\ud800"', "", 1, 1),
    ('{"a": ["ok", "x\udc00y"]}', "/a/1", 1, 14),
    ('{\n"k\udbff": 1}', "/k\\udbff", 2, 1),
])
def test_a_lone_surrogate_in_str_input_is_refused_as_in_bytes(parser, text, pointer, line, column):
    """A Python str can hold a lone surrogate as a character, not only as a \\u escape: orjson refuses such a
    str, and the standard-library fallback accepted it (the check looked for escapes only), so
    Event.parse(text) gave an event that no UTF-8 writer can write (jsonio.dumps raised TypeError later)."""
    with pytest.raises(ParseError) as exc:
        parser(text, source="f.ndjson")
    assert (exc.value.path, exc.value.line, exc.value.column) == (pointer, line, column)
    assert "lone surrogate" in exc.value.reason
    str(exc.value).encode("utf-8")
