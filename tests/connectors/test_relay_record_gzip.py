"""`record_items`: a queue or stream record's body whose gzip is cut short or corrupt keeps the values of
its whole lines; a gzip bomb is still refused whole (GzipBodyError), however its members are laid out."""
from __future__ import annotations

import gzip
import json

import pytest

from wia_security.connectors.relay import GzipBodyError, record_items

LINES = [json.dumps({"n": i, "pad": "x" * 40}).encode() + b"\n" for i in range(20)]
BODY = gzip.compress(b"".join(LINES[:10])) + gzip.compress(b"".join(LINES[10:]))


def test_a_whole_body_reads_as_before():
    assert [i.value["n"] for i in record_items(BODY, "sqs:1")] == list(range(20))


@pytest.mark.parametrize("cut", range(len(BODY) // 2 - 30, len(BODY) - 1, 7))
def test_a_body_cut_short_keeps_its_whole_lines(cut):
    items = list(record_items(BODY[:cut], "sqs:1"))
    *values, error = items
    assert [i.value["n"] for i in values] == list(range(len(values)))
    assert error.line == len(values) + 1 and error.where == f"sqs:1:{len(values) + 1}"
    assert "the gzip stream is truncated" in error.error.reason and "of sqs:1" in error.error.reason
    assert not error.raw or LINES[len(values)].startswith(error.raw)      # the torn line's bytes, if any


def test_a_bomb_is_refused_whole_even_after_padding_the_strict_reading_stops_at():
    bomb = gzip.compress(b" " * (3 * 1024 * 1024))
    with pytest.raises(GzipBodyError) as caught:
        record_items(gzip.compress(LINES[0]) + bomb, "kinesis:1", limit=1024 * 1024)
    assert caught.value.too_large
    # NUL padding between members: the strict reading refuses it as not gzip, the reading up to the
    # break reads on, and stops at the limit all the same
    items = list(record_items(gzip.compress(LINES[0]) + b"\0\0" + bomb, "kinesis:1", limit=1024 * 1024))
    assert [i.value for i in items if i.ok] == [json.loads(LINES[0])]
    (error,) = [i for i in items if not i.ok]
    assert "the gzip data inflates beyond 1,048,576 bytes in line 2 of kinesis:1" in error.error.reason
