"""The input reader (InputSource.items(): what forward, convert, validate and report read through) on plain and
gzip NDJSON, against a floor of iterating the lines and parsing each with the core's JSON library.

    python benchmarks/bench_reader.py [N_EVENTS]     # default 200,000 builder events

The floor for gzip reads through the standard library's gzip.open. The reader does more: it finds the
input's shape (NDJSON, JSON array, concatenated documents), numbers lines, keeps an unparseable line's bytes
and, for gzip, inflates with zlib itself (GunzipStream) so a stream cut short keeps every line before the
break. The gzip file is written at level 6, as gzip(1) writes it.
"""
from __future__ import annotations

import gzip
import os
import sys
import tempfile

from _common import race, table

from wia_security import jsonio
from wia_security.reader import InputSource


def main(n: int = 200_000) -> None:
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tests/core/validation"))
    from test_parity import builder_events
    tmp = tempfile.mkdtemp(prefix="wia-bench-")
    plain, packed = os.path.join(tmp, "events.ndjson"), os.path.join(tmp, "events.ndjson.gz")
    with open(plain, "wb") as fh:
        for start in range(0, n, 20_000):                   # in slices: the generator holds what it makes
            for e in builder_events(min(20_000, n - start), seed=start + 1):
                fh.write(jsonio.dumpb(e) + b"\n")
    with open(plain, "rb") as src, open(packed, "wb") as out, \
            gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        while chunk := src.read(1 << 20):
            gz.write(chunk)

    def floor(path: str) -> None:
        loads = jsonio.loads
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as fh:
            for line in fh:
                loads(line)

    def reader(path: str) -> None:
        with InputSource(path) as src:
            count = sum(1 for item in src.items() if item.error is None)
        assert count == n, count

    json_lib = "orjson" if jsonio._orjson else "stdlib json"
    for name, path in (("plain", plain), ("gzip", packed)):
        rows = race({f"floor: lines + {json_lib} parse": (lambda: floor(path), n),
                     "InputSource.items()": (lambda: reader(path), n)}, rounds=3)
        print(f"== {name}: {n:,} events, {os.path.getsize(path) / 1e6:,.1f} MB")
        print(table(rows, f"floor: lines + {json_lib} parse"))
    for path in (plain, packed):
        os.remove(path)
    os.rmdir(tmp)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
