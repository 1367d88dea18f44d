"""Severity bands at their boundaries (PHASE-1 section 7: 0 informational, 1-2 low, 3-4 medium, 5-6 high,
7-8 critical, 9-10 emergency; the schema allows any number 0-10, so a band runs up to the next one's
first integer: 2.999 is low, 3 is medium), and the open-finding threshold at the critical band's start."""
from __future__ import annotations

import pytest

from wia_security.compliance import is_open_finding
from wia_security.dashboard import DashboardAggregator

EXPECTED = [(0, "informational"), (0.5, "informational"), (0.999, "informational"), (1, "low"), (2, "low"),
            (2.999, "low"), (3, "medium"), (4.999, "medium"), (5, "high"), (6.999, "high"), (7, "critical"),
            (7.0, "critical"), (8.999, "critical"), (9, "emergency"), (10, "emergency")]


def test_every_boundary_lands_in_its_band():
    agg = DashboardAggregator()
    for i, (severity, _) in enumerate(EXPECTED):
        agg.add({"id": str(i), "type": "alert", "timestamp": f"2026-03-01T00:00:{i:02d}Z", "severity": severity})
    for severity in (None, "7", True, float("nan")):
        agg.add({"type": "alert", "timestamp": "2026-03-01T00:01:00Z", "severity": severity})
    report = agg.report()
    want = {name: sum(1 for _, b in EXPECTED if b == name) for name in
            ("informational", "low", "medium", "high", "critical", "emergency")}
    assert report["totals"]["by_band"] == {**want, "unknown": 4}
    by_bucket = [sum(b["by_band"].get(n, 0) for b in report["time_series"]["buckets"]) for n in want]
    assert by_bucket == list(want.values())


@pytest.mark.parametrize("severity,open_", [(6.999, False), (7, True), (7.0, True), (10, True)])
def test_an_open_finding_starts_where_the_critical_band_does(severity, open_):
    alert = {"type": "alert", "severity": severity, "data": {"status": "new"}}
    assert is_open_finding(alert) is open_
