"""A gzip input cut short or corrupt: every line whose bytes arrived whole is read as usual, the line the
stream broke in is one error item naming the file and the line (its torn bytes kept as raw), and
multi-member gzip (with NUL padding) reads as gzip(1) and gzip.GzipFile read it."""
from __future__ import annotations

import gzip
import json
import zlib

import pytest

from wia_security.reader import GZIP_READ_BYTES, InputSource

# Lines of uneven length, one with multi-byte characters, so a cut falls anywhere in a line or a character.
LINES = [json.dumps({"n": i, "pad": "x" * (i * 7 % 23), "who": "Zoë ☃" if i % 5 == 2 else "a"},
                    ensure_ascii=False).encode() + b"\n" for i in range(12)]
# Three members (`cat a.gz b.gz c.gz`), NUL padding between the second and third and after the last.
MEMBERS = [gzip.compress(b"".join(LINES[:4]), mtime=0), gzip.compress(b"".join(LINES[4:7]), mtime=0),
           b"\0" * 3, gzip.compress(b"".join(LINES[7:]), mtime=0), b"\0" * 2]
WHOLE = b"".join(MEMBERS)


def present(cut: int) -> tuple[bytes, bool]:
    """The inflated bytes of WHOLE[:cut] (each member inflated on its own, in one go) and whether the cut
    falls inside a member (a truncated stream) rather than at its end or in padding."""
    out, start = [], 0
    for part in MEMBERS:
        end = start + len(part)
        if part.strip(b"\0"):
            if cut >= end:
                out.append(gzip.decompress(part))
            elif cut > start:
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                out.append(inflater.decompress(part[:cut - start]) + inflater.flush())
                return b"".join(out), True
        start = end
    return b"".join(out), False


def read(path) -> list:
    with InputSource(str(path)) as src:
        assert src.compressed
        return list(src.items())


def test_a_multi_member_gzip_with_padding_reads_whole_as_gzip_does():
    assert gzip.decompress(WHOLE) == b"".join(LINES)      # the file is one gzip(1) and GzipFile accept


def parses(fragment: bytes) -> bool:
    try:
        return isinstance(json.loads(fragment), dict)
    except ValueError:
        return False


@pytest.mark.parametrize("cut", range(2, len(WHOLE) + 1))
def test_a_cut_at_any_byte_loses_only_the_line_it_tears(tmp_path, cut):
    path = tmp_path / "cut.ndjson.gz"
    path.write_bytes(WHOLE[:cut])
    items = read(path)
    data, truncated = present(cut)
    *complete, fragment = data.split(b"\n")
    values = [i.value for i in items if i.ok]
    errors = [i for i in items if not i.ok]
    whole_fragment = parses(fragment)              # every byte of the line but its newline arrived
    expected = [json.loads(line) for line in complete] + ([json.loads(fragment)] if whole_fragment else [])
    assert values == expected                              # every complete line, in order, nothing else
    assert [i.line for i in items if i.ok] == list(range(1, len(expected) + 1))
    if not truncated:                                      # the cut fell at the end of a member or in padding
        assert errors == []
        return
    (error,) = errors                                      # the truncation is reported, once
    assert error.line == len(complete) + 1 and error.where == f"{path}:{len(complete) + 1}"
    reason = error.error.reason
    assert "the gzip stream is truncated" in reason and str(path) in reason
    line = len(complete) + 1
    if fragment and not whole_fragment:                    # the torn line: its bytes kept for the dead letter
        assert f"in line {line} of {path}" in reason
        # (a first line cut short is read as the start of a pretty-printed document: kept trimmed)
        assert error.raw == (fragment if line > 1 else fragment.strip())
    else:
        assert error.raw is None
        assert (f"after line {line - 1} of {path}" if line > 1 else f"before the first line of {path}") in reason \
            or (whole_fragment and f"in line {line} of {path}" in reason)
    # Accounting: every line whose bytes arrived is either delivered or carried, as raw, by the error.
    carried = [json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in values]
    assert len(carried) + (1 if error.raw else 0) == len(complete) + (1 if fragment else 0)


def test_a_cut_in_a_big_file_keeps_every_line_across_read_chunks(tmp_path):
    lines = [json.dumps({"i": i, "text": "ab" * (i % 300)}).encode() + b"\n" for i in range(40_000)]
    packed = gzip.compress(b"".join(lines), compresslevel=1)
    assert len(packed) > 4 * GZIP_READ_BYTES                  # many compressed reads and buffer refills
    for cut in (len(packed) // 3, len(packed) // 2 + 17, len(packed) - 9):
        path = tmp_path / f"big{cut}.gz"
        path.write_bytes(packed[:cut])
        data, truncated = present_single(packed, cut)
        *complete, fragment = data.split(b"\n")
        items = read(path)
        assert [i.value["i"] for i in items[:-1]] == list(range(len(complete)))
        assert items[-1].line == len(complete) + 1 and "the gzip stream is truncated" in items[-1].error.reason
        assert items[-1].raw == (fragment or None)


def present_single(packed: bytes, cut: int) -> tuple[bytes, bool]:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    return inflater.decompress(packed[:cut]) + inflater.flush(), not inflater.eof


def test_corrupt_deflate_data_is_an_error_naming_the_file_the_line_and_the_member(tmp_path):
    damaged = bytearray(WHOLE)
    second = len(MEMBERS[0])
    damaged[second + 10] = 0b111                              # the second member's first block: type 3, invalid
    path = tmp_path / "damaged.gz"
    path.write_bytes(bytes(damaged))
    items = read(path)
    assert [i.value["n"] for i in items if i.ok] == [0, 1, 2, 3]   # the first member is read whole
    (error,) = [i for i in items if not i.ok]
    assert items[-1] is error and error.line == 5
    reason = error.error.reason
    assert f"corrupt gzip data after line 4 of {path}" in reason
    assert f"in the member that starts at byte {second:,}" in reason and "invalid block type" in reason


def test_a_checksum_mismatch_is_corrupt_data_not_silently_accepted(tmp_path):
    packed = bytearray(gzip.compress(b"".join(LINES), mtime=0))
    packed[-8] ^= 0x01                                      # the CRC-32 of the member
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(packed))
    items = read(path)
    assert [i.value["n"] for i in items if i.ok] == list(range(12))
    (error,) = [i for i in items if not i.ok]
    assert "corrupt gzip data" in error.error.reason and "incorrect data check" in error.error.reason


def test_bytes_after_the_last_member_that_are_not_gzip_are_an_error(tmp_path):
    path = tmp_path / "trailing.gz"
    path.write_bytes(gzip.compress(b"".join(LINES)) + b"not gzip at all\n")
    items = read(path)
    assert [i.value["n"] for i in items if i.ok] == list(range(12))
    (error,) = [i for i in items if not i.ok]
    assert error.line == 13 and "corrupt gzip data after line 12" in error.error.reason


def test_a_fault_midway_keeps_every_line_inflated_before_it(tmp_path):
    """zlib raises for a whole read with none of its output: the lines the read inflated before the
    fault are still read (not only those of earlier reads)."""
    lines = [json.dumps({"i": i, "pad": "p" * (i % 50)}).encode() + b"\n" for i in range(3000)]
    packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = packer.compress(b"".join(lines[:2000])) + packer.flush(zlib.Z_FULL_FLUSH)   # ends on a byte boundary
    rest = packer.compress(b"".join(lines[2000:])) + packer.flush()
    assert len(head) < GZIP_READ_BYTES                        # the fault is in the first read
    path = tmp_path / "fault.gz"
    path.write_bytes(head + bytes([0b111]) + rest[1:])       # the next block's header: type 3, invalid
    items = read(path)
    assert [i.value["i"] for i in items[:-1]] == list(range(2000))
    assert items[-1].line == 2001 and "corrupt gzip data after line 2000" in items[-1].error.reason
