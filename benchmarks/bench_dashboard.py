"""Dashboard and compliance throughput, as ratios against named baselines in one run.

Baselines: `counter-by-type` (one Counter over event types: the least any dashboard can do) and
`validate` (wia_security.validate_event, the cost every event already pays on ingest). The
contenders: DashboardAggregator.add, ComplianceTracker.add (all four frameworks), and both together
(what `wia-security report` does per event). Run: .venv/bin/python benchmarks/bench_dashboard.py [N]
"""
from __future__ import annotations

import sys
from collections import Counter

from _common import corpus, race, table

from wia_security.compliance import ComplianceTracker
from wia_security.dashboard import DashboardAggregator
from wia_security.validation import validate_event


def main(n: int = 20_000) -> None:
    events = corpus(n)

    def counter() -> None:
        Counter(e["type"] for e in events)

    def validate() -> None:
        for e in events:
            validate_event(e, warnings=False)

    def dashboard() -> None:
        DashboardAggregator().add_all(events).report()

    def compliance() -> None:
        ComplianceTracker().add_all(events).report()

    def both() -> None:
        agg, tracker = DashboardAggregator(), ComplianceTracker()
        for e in events:
            agg.add(e)
            tracker.add(e)
        agg.report(), tracker.report()

    rows = race({"counter-by-type": (counter, n), "validate": (validate, n), "dashboard": (dashboard, n),
                 "compliance": (compliance, n), "dashboard+compliance": (both, n)}, rounds=3)
    print(f"{n:,} generated events of all seven types")
    print(table(rows, "validate"))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
