"""A MISP event or OTX pulse with many indicators maps in time proportional to their number. Each indicator was
checked against every one taken before it (a list scan), so mapping grew with the square of the count: a MISP
event of 20,000 attributes took 224 s on a loaded 2-core machine, 100,000 would take hours, and a pull stalled
on it. Counted here, not timed: value comparisons (a str that counts its == calls) for MISP; for OTX, which
strips each value into a plain str, the Python calls (generator steps included) mapping N and 2N indicators
take, which double when linear and quadruple when quadratic."""
from __future__ import annotations

import sys

from wia_security.connectors.intel.misp import event_to_wia
from wia_security.connectors.intel.otx import pulse_to_wia

N = 3000


class CountedStr(str):
    comparisons = 0

    def __eq__(self, other: object) -> bool:
        CountedStr.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def _values() -> list[CountedStr]:
    return [CountedStr(f"h{i}.example.net") for i in range(N)] + [CountedStr("h0.example.net")]   # one repeat


def test_a_misp_event_with_many_attributes_is_mapped_in_linear_comparisons():
    CountedStr.comparisons = 0
    event = event_to_wia({"uuid": "5e6b3c2a-0000-4000-8000-000000000001", "info": "big", "timestamp": "1767225600",
                          "Attribute": [{"type": "domain", "value": v, "to_ids": True} for v in _values()]})
    assert len(event["data"]["indicators"]) == N                        # the repeat is taken once
    assert CountedStr.comparisons < 10 * N, CountedStr.comparisons       # a list scan: about N * N / 2


def _calls_to_map_a_pulse(n: int) -> int:
    pulse = {"id": "p1", "name": "big", "modified": "2026-02-01T00:00:00",
             "indicators": [{"indicator": f"h{i}.example.net", "type": "domain"} for i in range(n)]}
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        event = pulse_to_wia(pulse)
    finally:
        sys.setprofile(None)
    assert len(event["data"]["indicators"]) == n
    return calls


def test_an_otx_pulse_with_many_indicators_is_mapped_in_linear_calls():
    small, large = _calls_to_map_a_pulse(1000), _calls_to_map_a_pulse(2000)
    assert large < 3 * small, (small, large)                             # a list scan: about 4 times
