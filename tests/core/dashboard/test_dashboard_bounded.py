"""The aggregator's memory does not grow with the number of events or of distinct values."""
from __future__ import annotations

import random
import tracemalloc
from collections import Counter
from typing import Iterator

from wia_security.dashboard import DashboardAggregator, render_html
from wia_security.dashboard.aggregator import MAX_DISTINCT, MAX_KEY_CHARS, MAX_LIVE_BUCKETS, BoundedCounter


def _events(n: int, distinct_sources: bool = True, seed: int = 0) -> Iterator[dict]:
    """n alerts, each from its own source (200k distinct host names), over ~3 years, generated lazily."""
    rnd = random.Random(seed)
    for i in range(n):
        ms = 1_700_000_000_000 + rnd.randint(0, 3 * 365 * 86400) * 1000
        yield {"id": f"id-{i}", "type": "alert", "severity": rnd.randint(0, 10),
               "timestamp": f"{2023 + (ms - 1_700_000_000_000) // (365 * 86400 * 1000)}-0{1 + i % 9}-1{i % 10}T"
                            f"{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.{i % 1000:03d}Z",
               "source": {"name": f"host-{i:07d}.example.net" if distinct_sources else "edr"},
               "mitre": {"tactic": "TA0002", "technique": f"T{1000 + i % 9000}"},
               "data": {"status": "new", "first_seen": "2023-01-01T00:00:00Z"}}


def _peak(n: int) -> tuple[int, DashboardAggregator]:
    agg = DashboardAggregator()
    tracemalloc.start()
    try:
        agg.add_all(_events(n))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, agg


def test_peak_memory_does_not_grow_with_the_event_count():
    small, _ = _peak(5_000)
    big, agg = _peak(30_000)
    # Only the MTTD samples grow (8 bytes each: an exact median needs them). One kept row per event
    # (the old (time, band) tuples, ~70 bytes) would add 1.7 MB here.
    assert agg.mttd.values.itemsize == 8 and len(agg.mttd.values) == 30_000
    assert big - small < 25_000 * 8 * 2 + 512 * 1024, (small, big)
    assert len(agg.by_source.counts) <= 2 * MAX_DISTINCT
    assert len(agg.series.buckets) <= MAX_LIVE_BUCKETS + 1


def test_distinct_sources_are_folded_and_the_page_stays_small():
    agg = DashboardAggregator().add_all(_events(30_000))
    report = agg.report()
    totals = report["totals"]
    assert len(totals["by_source"]) == 20
    rest = totals["not_listed"]["by_source"]
    assert sum(totals["by_source"].values()) + rest["events"] == 30_000        # nothing lost from the sums
    assert rest["exact"] is False and rest["keys"] is None and rest["max_undercount"] >= 1
    assert len(render_html(report)) < 200_000


def test_long_names_are_cut():
    agg = DashboardAggregator()
    for i in range(3):
        agg.add({"type": "alert", "timestamp": "2026-01-01T00:00:00Z", "source": {"name": "x" * 1_000_000 + str(i)}})
    assert agg.report()["totals"]["by_source"] == {"x" * (MAX_KEY_CHARS - 1) + "\u2026": 3}


def test_bounded_counter_is_exact_until_it_folds_and_bounds_its_error_after():
    rnd = random.Random(9)
    heavy = [f"heavy-{i}" for i in range(5)]
    stream = [rnd.choice(heavy) if rnd.random() < 0.3 else f"noise-{rnd.randint(0, 100_000)}" for _ in range(50_000)]
    truth = Counter(stream)
    exact = BoundedCounter(limit=100_000)
    bounded = BoundedCounter(limit=50)
    for key in stream:
        exact.add(key)
        bounded.add(key)
    assert exact.exact and exact.counts == dict(truth)
    assert not bounded.exact and len(bounded.counts) <= 100
    assert bounded.total() == len(stream) == sum(bounded.counts.values()) + bounded.folded
    assert 0 < bounded.max_undercount <= len(stream) / 51
    for key, n in truth.items():
        assert truth[key] - bounded.max_undercount <= bounded.counts.get(key, 0) <= truth[key]
        if n > bounded.max_undercount:
            assert key in bounded.counts
    assert [k for k, _ in bounded.top(5)] == [k for k, _ in exact.top(5)]        # heavy hitters survive


def test_time_series_over_centuries_keeps_few_live_buckets():
    agg = DashboardAggregator()
    rnd = random.Random(2)
    for _ in range(20_000):
        year = rnd.randint(1, 9999)
        agg.add({"type": "alert", "timestamp": f"{year:04d}-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}T00:00:00Z",
                 "severity": 3})
        assert len(agg.series.buckets) <= MAX_LIVE_BUCKETS
    series = agg.report()["time_series"]
    assert len(series["buckets"]) <= 49 and sum(b["total"] for b in series["buckets"]) == 20_000
