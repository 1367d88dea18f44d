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


def test_a_bomb_is_refused_whole_even_after_padding_between_members():
    """NUL padding between members (gzip(1) reads it) once took the reading up to the break, which
    delivered the lines up to the limit and dead-lettered the rest without its bytes: the docs promise a
    bomb is dead-lettered whole, raw bytes and all, and so it is now for either layout."""
    bomb = gzip.compress(b" " * (3 * 1024 * 1024))
    for body in (gzip.compress(LINES[0]) + bomb, gzip.compress(LINES[0]) + b"\0\0" + bomb):
        with pytest.raises(GzipBodyError) as caught:
            record_items(body, "kinesis:1", limit=1024 * 1024)
        assert caught.value.too_large


def test_nul_padding_between_and_after_members_reads_every_line():
    body = gzip.compress(b"".join(LINES[:10])) + b"\0" * 7 + gzip.compress(b"".join(LINES[10:])) + b"\0" * 3
    assert [i.value["n"] for i in record_items(body, "sqs:1")] == list(range(20))
