"""Findings of a review of `record_items` (helper 54): a queue or stream record is gone once it is settled,
so the bytes of it that could not be read must reach the dead letter, not only the reason."""
from __future__ import annotations

import gzip
import json

from wia_security.connectors.relay import record_items

LINES = [json.dumps({"n": i}).encode() + b"\n" for i in range(3)]


def test_bytes_after_the_gzip_data_reach_the_dead_letter():
    """Plain NDJSON appended after a gzip member (a producer that concatenated the wrong way): the member's
    events are read and the appended bytes, which may be events, are the error item's raw bytes. They were
    dropped: the dead letter said 'incorrect header check' and kept nothing of them."""
    tail = b'{"plain": 1}\n{"plain": 2}\n'
    items = list(record_items(gzip.compress(b"".join(LINES)) + tail, "sqs:1"))
    assert [i.value["n"] for i in items if i.ok] == [0, 1, 2]
    (error,) = [i for i in items if not i.ok]
    assert error.line == 4 and "corrupt gzip data after line 3 of sqs:1" in error.error.reason
    assert error.raw == tail


def test_a_second_member_whose_header_is_corrupt_reaches_the_dead_letter_whole():
    first, second = gzip.compress(LINES[0]), bytearray(gzip.compress(b"".join(LINES[1:])))
    second[3] |= 0xE0                             # reserved FLG bits set: zlib refuses the header
    items = list(record_items(first + bytes(second), "kinesis:1"))
    assert [i.value["n"] for i in items if i.ok] == [0]
    (error,) = [i for i in items if not i.ok]
    assert error.raw == bytes(second)
    # what the whole bytes hold can be read back from the dead letter
    fixed = bytearray(error.raw)
    fixed[3] &= 0x1F
    assert gzip.decompress(bytes(fixed)) == b"".join(LINES[1:])

