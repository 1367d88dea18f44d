"""`forward` throughput into the embedded SQLite store vs a floor of plain JSON parse + SQLite insert.

    python benchmarks/bench_forward.py [N_EVENTS]
    python benchmarks/bench_forward.py --instructions [N_EVENTS]   # callgrind counts, load-independent

Both read the same NDJSON file and end with the same rows in a fresh store (same table, same
indexes). The floor does only what storing needs: parse each line and insert it in batches. The
forward pipeline also validates (with advisories), normalizes, counts, and serializes each event.
Goal (issue 2): forward >= 0.5 of the floor.
"""
from __future__ import annotations

import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone

from _common import corpus, race, table

from wia_security import jsonio
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.sqlite import EventStore, SqliteSink, _INSERT
from wia_security.pipeline import Forwarder
from wia_security.reader import InputSource


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
US = timedelta(microseconds=1)


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
                moment = datetime.fromisoformat(ts)
                updated = e["data"].get("updated_at")      # an incident's version, compared on conflict
                rows.append((e["id"], e["type"], int(moment.timestamp() * 1000), ts, e["severity"], e["source"]["name"],
                             line.decode(), (moment - EPOCH) // US,
                             updated and (datetime.fromisoformat(updated) - EPOCH) // US))
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


INSTRUCTION_SETUP = """
import os, sys, tempfile
from datetime import datetime, timedelta, timezone
EPOCH, US = datetime(1970, 1, 1, tzinfo=timezone.utc), timedelta(microseconds=1)
sys.path[:0] = ["../tests", "../tests/core/validation"]
from test_parity import builder_events
from wia_security import jsonio
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.sqlite import EventStore, SqliteSink, _INSERT
from wia_security.pipeline import Forwarder
from wia_security.reader import InputSource
from wia_security.validation import Validator
Validator()
tmp = tempfile.mkdtemp()
path = os.path.join(tmp, "e.ndjson")
with open(path, "wb") as fh:
    for e in builder_events({n}, seed=1):
        fh.write(jsonio.dumpb(e) + b"\\n")
"""
INSTRUCTION_WORK = {
    "floor: parse + SQLite insert": (
        "store = EventStore(os.path.join(tmp, 'f.db')); db = store._db; rows = []\n"
        "for line in open(path, 'rb'):\n"
        "    e = jsonio.loads(line); ts = e['timestamp']; moment = datetime.fromisoformat(ts)\n"
        "    updated = e['data'].get('updated_at')\n"
        "    rows.append((e['id'], e['type'], int(moment.timestamp() * 1000), ts, e['severity'],"
        " e['source']['name'], line.decode(), (moment - EPOCH) // US,"
        " updated and (datetime.fromisoformat(updated) - EPOCH) // US))\n"
        "db.execute('BEGIN'); db.executemany(_INSERT, rows); db.execute('COMMIT')"),
    "wia-security forward": (
        "with SqliteSink(os.path.join(tmp, 's.db')) as sink, DeadLetterFile(os.path.join(tmp, 'd')) as dead, "
        "InputSource(path) as src:\n    Forwarder(sink, dead).run(src.items())"),
}


def instruction_counts(n: int = 2000) -> None:
    """The same comparison in instructions (callgrind), on builder events: independent of machine load."""
    from _callgrind import instructions
    setup = INSTRUCTION_SETUP.format(n=n)
    counts = {name: instructions(setup, work) for name, work in INSTRUCTION_WORK.items()}
    base = counts["floor: parse + SQLite insert"]
    for name, count in counts.items():
        print(f"{name:30} {count / n:>10,.0f} instructions/event   speed ratio vs floor {base / count:5.2f}x")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--instructions" in sys.argv:
        instruction_counts(int(args[0]) if args else 2000)
    else:
        sys.exit(main(int(args[0]) if args else 50_000))
