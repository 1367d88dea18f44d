"""`forward` throughput into the embedded SQLite store vs a floor of plain JSON parse + SQLite insert.

    python benchmarks/bench_forward.py [N_EVENTS]

Both read the same NDJSON file and end with the same rows in a fresh store (same table, same
indexes). The floor does only what storing needs: parse each line and insert it in batches. The
forward pipeline also validates (with advisories), normalizes, counts, and serializes each event.
Goal (issue 2): forward >= 0.5 of the floor.
"""
from __future__ import annotations

import os
import sys
import tempfile
from datetime import datetime

from _common import corpus, race, table

from wia_security import jsonio
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.sqlite import EventStore, SqliteSink, _INSERT
from wia_security.pipeline import Forwarder
from wia_security.reader import InputSource


def main(n: int = 50_000) -> None:
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tests/core/validation"))
    from test_parity import builder_events
    for name, events in (("builder (realistic: ATT&CK blocks and shapes recur)", builder_events(n, seed=1)),
                         ("generated (worst case: random ATT&CK ids, every optional field 50%)", corpus(n))):
        print(f"== corpus: {name}")
        run(events)


def run(events: list) -> None:
    n = len(events)
    tmp = tempfile.mkdtemp(prefix="wia-bench-")
    path = os.path.join(tmp, "events.ndjson")
    with open(path, "wb") as fh:
        for e in events:
            fh.write(jsonio.dumpb(e) + b"\n")
    size = os.path.getsize(path)
    runs = {"n": 0}

    def fresh_db() -> str:
        runs["n"] += 1
        db = os.path.join(tmp, f"store{runs['n']}.db")
        return db

    def floor() -> None:
        store = EventStore(fresh_db())
        db = store._db
        rows = []
        with open(path, "rb") as fh:
            for line in fh:
                e = jsonio.loads(line)
                ts = e["timestamp"]
                ms = int(datetime.fromisoformat(ts).timestamp() * 1000)
                rows.append((e["id"], e["type"], ms, ts, e["severity"], e["source"]["name"], line.decode()))
                if len(rows) == 1000:
                    db.execute("BEGIN"); db.executemany(_INSERT, rows); db.execute("COMMIT"); rows = []
        if rows:
            db.execute("BEGIN"); db.executemany(_INSERT, rows); db.execute("COMMIT")
        store.close()

    def forward() -> None:
        sink = SqliteSink(fresh_db())
        with sink, DeadLetterFile(os.path.join(tmp, "dead.ndjson")) as dead, InputSource(path) as src:
            summary = Forwarder(sink, dead).run(src.items())
        assert summary.delivered == n, summary.to_dict()

    rows = race({"floor: parse + SQLite insert": (floor, n), "wia-security forward": (forward, n)}, rounds=3)
    print(f"{n:,} events, {size / 1e6:.1f} MB NDJSON, json parser: {'orjson' if jsonio._orjson else 'stdlib json'}")
    print(table(rows, "floor: parse + SQLite insert"))


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000))
