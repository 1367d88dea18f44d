"""The reader: NDJSON, arrays, pretty and concatenated JSON, gzip; every value with its line; bad input isolated."""
from __future__ import annotations

import gzip
import io
import json

import pytest

from wia_security.reader import UTF8_BOM, InputSource, iter_items


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


def test_truncated_gzip_is_one_clear_error_on_the_line_it_cut(tmp_path):
    path = tmp_path / "bad.gz"
    import os
    lines = b"".join(json.dumps({"r": os.urandom(32).hex()}).encode() + b"\n" for _ in range(500))
    whole = gzip.compress(lines)
    path.write_bytes(whole[: len(whole) // 2])
    with InputSource(str(path)) as src:
        result = list(src.items())
    assert all(i.ok for i in result[:-1]) and len(result) > 10
    assert result[-1].error is not None and "unreadable input" in result[-1].error.reason
    last_read = result[-2].line                          # the error says where reading stopped, not line 0
    assert result[-1].line == last_read + 1 and result[-1].where == f"{path}:{last_read + 1}"
    assert f"the gzip stream is truncated in line {last_read + 1} of {path}" in result[-1].error.reason
    assert lines.split(b"\n")[last_read].startswith(result[-1].raw)     # the torn line's bytes, kept


def test_a_gzip_that_cannot_even_start_is_an_error_at_line_1(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with InputSource(str(path)) as src:
        (item,) = list(src.items())
    assert item.line == 1 and item.error.reason.startswith("unreadable input: ")


@pytest.mark.parametrize("layout", [b'[{"a": 1}, {"a": 2}]', b'[\n  {"a": 1},\n  {"a": 2}\n]\n',
                                    b'{"a": 1}\n{"a": 2}\n'])
@pytest.mark.parametrize("stream", ["file", "lines"])
def test_a_byte_order_mark_before_any_layout_is_skipped(layout, stream):
    data = b"\xef\xbb\xbf" + layout
    source = io.BytesIO(data) if stream == "file" else iter(io.BytesIO(data).readlines())
    assert [i.value for i in iter_items(source, "bom.json")] == [{"a": 1}, {"a": 2}]


def test_large_array_streams_element_by_element(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"i": i} for i in range(20_000)], indent=1))
    with InputSource(str(path)) as src:
        values = [i.value["i"] for i in src.items()]
    assert values == list(range(20_000))


# --- lines longer than LONG_LINE_BYTES: read in pieces --------------------------------------------------
def _all(data: bytes, as_stream: bool) -> list[tuple]:
    source = io.BytesIO(data) if as_stream else iter(io.BytesIO(data).readlines())
    return [(i.line, json.dumps(i.value) if i.ok else None, str(i.error) if i.error else None,
             None if i.error and "unexpected" in str(i.error) else i.raw) for i in iter_items(source, "x")]


def _shapes() -> list[bytes]:
    from strategies import event_dicts
    events = event_dicts(5, seed=61, wild=True)
    events[0].setdefault("meta", {})["note"] = 'a[b]{c},"d" \\"]} ünï'
    texts = ["\n".join(json.dumps(e) for e in events) + "\n", json.dumps(events), json.dumps(events, indent=2),
             "".join(json.dumps(e) for e in events), "1 2 [3] ,e {\"a\": [1,2]} \"x\" null\n" + json.dumps(events[:2]),
             json.dumps(events[0], indent=1) + "\n" + "\n".join(json.dumps(e) for e in events[1:])]
    out = []
    for text in texts:
        data = text.encode()
        out += [data, data[: len(data) // 3], data[:50] + b"]" + data[50:], data[:80] + b'"open ' + data[80:],
                data[:120] + b"\xff" + data[120:]]
    return out


@pytest.mark.parametrize("as_stream", [True, False], ids=["stream", "lines"])
def test_long_lines_read_in_pieces_give_exactly_what_whole_lines_give(monkeypatch, as_stream):
    """Differential: pieces cut after brackets and commas outside strings, down to 1-byte windows,
    yield the same values, errors (with line and column) and raw text as reading each line whole."""
    import wia_security.reader as reader
    for data in _shapes():
        expected = _all(data, as_stream)
        for window in (1, 2, 5, 13, 64, 300):
            monkeypatch.setattr(reader, "LONG_LINE_BYTES", window)
            assert _all(data, as_stream) == expected, (window, data[:100])
            monkeypatch.setattr(reader, "LONG_LINE_BYTES", 1024 * 1024)


def test_a_json_array_on_one_line_streams_in_flat_memory(tmp_path, monkeypatch):
    import tracemalloc

    import wia_security.reader as reader
    from strategies import event_dicts
    monkeypatch.setattr(reader, "LONG_LINE_BYTES", 64 * 1024)     # 1 MiB by default; smaller keeps the test quick
    path = tmp_path / "one-line.json"
    events = event_dicts(200, seed=62)
    path.write_text("[" + ",".join(json.dumps(e) for e in events * 25) + "]")     # ~5 MB, no newline
    size = path.stat().st_size
    tracemalloc.start()
    with InputSource(str(path)) as src:
        count = sum(1 for i in src.items() if i.ok)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 5_000 and size > 4_000_000
    # Read whole, the line alone would be `size` bytes; in pieces the peak is a few windows.
    assert peak < 16 * 64 * 1024 < size / 4, (peak, size)


def test_an_ndjson_line_over_the_document_limit_is_one_error_and_reading_goes_on(monkeypatch):
    import wia_security.reader as reader
    monkeypatch.setattr(reader, "LONG_LINE_BYTES", 64)
    monkeypatch.setattr(reader, "MAX_DOCUMENT_BYTES", 1000)
    data = b'{"a":1}\n{"big": "' + b"x" * 5000 + b'"}\n{"b":2}\n'
    assert items(data) == [(1, {"a": 1}), (2, "ERR"), (3, {"b": 2})]
    [bad] = [i for i in iter_items(io.BytesIO(data), "x") if not i.ok]
    assert bad.where == "x:2" and "line longer than" in bad.error.reason


@pytest.mark.parametrize("data, line", [
    (b'{"id": 1}\n{"id": 2, "x": 1e400}\n{"id": 3}\n', 2),                  # NDJSON
    (b'[\n  {"id": 1},\n  {"id": 2,\n   "x": 1e400},\n  {"id": 3}\n]\n', 4),  # a pretty-printed array
])
def test_a_number_beyond_a_double_rejects_its_value_alone_naming_line_and_pointer(data, line):
    items = list(iter_items(io.BytesIO(data), "in.json"))
    assert [i.value["id"] for i in items if i.error is None] == [1, 3]
    [bad] = [i for i in items if i.error is not None]
    assert bad.error.line == line and bad.error.path == "/x"
    assert str(bad.error).startswith(f"in.json:{line}:") and "1e400 is beyond a 64-bit float's range" in str(bad.error)


def test_integers_beyond_64_bits_in_ndjson_keep_every_digit():
    # The fast path (orjson) would read 2**64 as 1.8446744073709552e+19; such a line takes the exact parser.
    data = b'{"n":18446744073709551616,"s":"x"}\n{"n":' + b"7" * 30 + b'}\n{"n":18446744073709551615}\n'
    got = items(data)
    assert got == [(1, {"n": 2 ** 64, "s": "x"}), (2, {"n": int("7" * 30)}), (3, {"n": 2 ** 64 - 1})]
    assert all(type(value["n"]) is int for _, value in got)


@pytest.mark.parametrize("before", [b"", b'{"a":1}\n'], ids=["at the start", "after a good line"])
def test_broken_ndjson_lines_are_one_error_each_at_the_start_as_after_a_good_line(before):
    """Five broken lines at the very start were one error naming line 1 (all five as its bytes), while
    after a good line they were one error each: the start now reads like the rest."""
    data = before + b"{bad\n" * 5 + b'{"b":1}\n'
    got = list(iter_items(io.BytesIO(data), "in.ndjson"))
    first = 2 if before else 1
    bad = [i for i in got if not i.ok]
    assert [i.where for i in bad] == [f"in.ndjson:{n}" for n in range(first, first + 5)]
    assert all(i.raw == b"{bad" and i.error.line == i.line and i.error.source == "in.ndjson" for i in bad)
    assert [(i.line, i.value) for i in got if i.ok][-1] == (first + 5, {"b": 1})


def test_broken_lines_before_ndjson_keep_their_own_numbers_and_bytes():
    data = b'{"ok":1} {bad\n{"x":\r\n\n{"c":3}\n{"d":4}\n'
    assert items(data) == [(1, {"ok": 1}), (1, "ERR"), (2, "ERR"), (4, {"c": 3}), (5, {"d": 4})]
    raws = [i.raw for i in iter_items(io.BytesIO(data), "x") if not i.ok]
    assert raws == [b" {bad", b'{"x":']


@pytest.mark.parametrize("layout", ["one-line array", "ndjson"])
@pytest.mark.parametrize("as_stream", [True, False], ids=["stream", "lines"])
def test_a_byte_order_mark_before_a_long_first_line_changes_nothing(monkeypatch, layout, as_stream):
    """The first read of a line takes LONG_LINE_BYTES + 1 bytes; the BOM was stripped before telling whether
    that was the whole line, so with a BOM a first line longer than LONG_LINE_BYTES was cut after its first
    piece, as if a line ended there: every line after was numbered one too far, and where the cut fell inside
    a string the rest of the line was scanned with strings and structure swapped (a one-line array of 2,000
    events over 1 MiB lost ~550 of them to 'Extra data' / "unexpected '}'" errors)."""
    import wia_security.reader as reader
    from strategies import event_dicts
    monkeypatch.setattr(reader, "LONG_LINE_BYTES", 2048)
    events = event_dicts(40, seed=63)
    for pad in range(0, 120, 7):               # the cut at many places: inside strings and between them
        events[0]["pad"] = "p" * pad
        if layout == "ndjson":
            data = b"".join(json.dumps(e).encode() + b"\n" for e in [{"first": events}] + events[1:])
        else:
            data = json.dumps(events).encode() + b"\n" + json.dumps(events[1]).encode() + b"\n"
        source = (lambda d: io.BytesIO(d)) if as_stream else (lambda d: iter(io.BytesIO(d).readlines()))
        plain = [(i.line, i.value if i.ok else str(i.error)) for i in iter_items(source(data), "x")]
        assert all(not isinstance(v, str) for _, v in plain)
        with_bom = [(i.line, i.value if i.ok else str(i.error)) for i in iter_items(source(UTF8_BOM + data), "x")]
        assert with_bom == plain, pad


@pytest.mark.parametrize("window", [1, 2, 3, 4])
def test_a_byte_order_mark_is_skipped_when_pieces_are_narrower_than_it(monkeypatch, window):
    import wia_security.reader as reader
    monkeypatch.setattr(reader, "LONG_LINE_BYTES", window)
    for layout in (b'[{"a": 1}, {"a": 2}]', b'{"a": 1}\n{"a": 2}\n', b'{\n"a": 1\n}\n{"a": 2}'):
        assert [value for _, value in items(layout)] == [{"a": 1}, {"a": 2}]
        assert items(UTF8_BOM + layout) == items(layout), layout
