"""`forward` of a gzip input cut short: every event whose line arrived whole is delivered, the torn line
is dead-lettered with its bytes and a reason naming the file and the line, and the run still says the
input was truncated (exit 1, one unparseable)."""
from __future__ import annotations

import base64
import gzip
import json
import zlib

import pytest

from bad_inputs import VALID

EVENTS = [dict(VALID, id=f"550e8400-e29b-41d4-a716-{i:012d}", severity=1 + i % 9) for i in range(9)]
LINES = [json.dumps(e).encode() + b"\n" for e in EVENTS]
# `cat a.gz b.gz c.gz`, with NUL padding after the second member: (member, padding after it)
MEMBERS = [(gzip.compress(b"".join(LINES[:3]), mtime=0), b""), (gzip.compress(b"".join(LINES[3:5]), mtime=0), b"\0\0"),
           (gzip.compress(b"".join(LINES[5:]), mtime=0), b"")]
WHOLE = b"".join(m + pad for m, pad in MEMBERS)
BOUNDARIES = {sum(len(m + pad) for m, pad in MEMBERS[:k]) for k in range(1, len(MEMBERS) + 1)}


def inflated(cut: int) -> tuple[bytes, bool]:
    """What WHOLE[:cut] holds of the NDJSON (whole members, then what the cut member inflates to), and
    whether the cut falls inside a member rather than at its end or in the padding after it."""
    out, start = [], 0
    for packed, padding in MEMBERS:
        if cut >= start + len(packed):
            out.append(gzip.decompress(packed))
        elif cut > start:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            return b"".join(out) + inflater.decompress(packed[:cut - start]) + inflater.flush(), True
        start += len(packed + padding)
    return b"".join(out), False


def torn_bytes(record: dict) -> bytes:
    return record["raw"].encode() if "raw" in record else base64.b64decode(record["raw_base64"])


def parses(fragment: bytes) -> bool:
    try:
        return isinstance(json.loads(fragment), dict)
    except ValueError:
        return False


@pytest.mark.parametrize("cut", range(2, len(WHOLE)))       # every byte (a cut at 1 leaves no gzip magic)
def test_every_line_that_arrived_is_delivered_or_dead_lettered(cli, tmp_path, cut):
    (tmp_path / "cut.ndjson.gz").write_bytes(WHOLE[:cut])
    r = cli("forward", "cut.ndjson.gz", "--to", f"file://{tmp_path}/out.ndjson", "--dead-letter", "dead.ndjson",
            "--summary", "json")
    data, truncated = inflated(cut)
    *complete, fragment = data.split(b"\n")
    delivered = [json.loads(x) for x in (tmp_path / "out.ndjson").read_bytes().splitlines()] \
        if (tmp_path / "out.ndjson").exists() else []
    dead = [json.loads(x) for x in (tmp_path / "dead.ndjson").read_text().splitlines()] \
        if (tmp_path / "dead.ndjson").exists() else []
    summary = json.loads(r.out)
    if not truncated:                                       # a member's end: a whole (shorter) gzip file
        assert r.code == 0 and dead == [] and len(delivered) == len(complete)
        return
    # Every line that arrived whole is delivered (one missing all but its newline too: a whole object) ...
    whole_fragment = parses(fragment)
    assert [e["id"] for e in delivered] == [e["id"] for e in EVENTS[:len(complete) + whole_fragment]]
    assert summary["delivered"] == len(delivered)
    # ... the torn one is dead-lettered byte for byte ...
    (record,) = dead
    line = len(complete) + 1
    if fragment and not whole_fragment:
        assert torn_bytes(record) == (fragment if line > 1 else fragment.strip())
    else:
        assert "raw" not in record and "raw_base64" not in record
    # ... and the truncation is reported, once, naming the file and the line the cut falls in.
    assert r.code == 1, r.err
    assert summary["unparseable"] == 1 and summary["rejected"] == 1
    assert record["where"] == f"cut.ndjson.gz:{line}"
    assert "the gzip stream is truncated" in record["reason"] and "cut.ndjson.gz" in record["reason"]
    assert f"line {line} of cut.ndjson.gz" in record["reason"] or f"after line {line - 1} of cut.ndjson.gz" \
        in record["reason"] or (line == 1 and "before the first line of cut.ndjson.gz" in record["reason"])

def test_the_whole_file_is_delivered_whole(cli, tmp_path):
    (tmp_path / "all.ndjson.gz").write_bytes(WHOLE)
    r = cli("forward", "all.ndjson.gz", "--to", f"file://{tmp_path}/out.ndjson", "--summary", "json")
    assert r.code == 0, r.err
    assert [json.loads(x)["id"] for x in (tmp_path / "out.ndjson").read_bytes().splitlines()] == \
        [e["id"] for e in EVENTS]
