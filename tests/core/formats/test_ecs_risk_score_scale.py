"""ECS 9.4 `event.risk_score` is the source's own value ("Use your system's original value here"), on the
source's scale; only `event.risk_score_norm` is 0-100 by definition. The reader must take the normalized
score first and not read a 0-10 risk score as 0-100 (7 -> 0.7)."""
from __future__ import annotations

import pytest

from wia_security import parse


def _severity(event_fields: dict) -> float:
    doc = {"@timestamp": "2026-01-01T00:00:00Z", "event": {"kind": "alert", **event_fields}}
    events = parse(doc, from_="ecs")
    first = events[0] if isinstance(events, list) else events
    return (first.to_dict() if hasattr(first, "to_dict") else first)["severity"]


@pytest.mark.parametrize("fields, severity", [
    ({"risk_score": 7, "risk_score_norm": 70}, 7),          # a 0-10 source score and its normalized twin
    ({"risk_score": 850, "risk_score_norm": 85}, 8.5),      # a 0-1000 source score
    ({"risk_score": 3.2, "risk_score_norm": 80}, 8),        # the normalized one decides
    ({"risk_score_norm": 70}, 7),
    ({"risk_score": 7.5}, 7.5),                             # 0-10 alone: as it is, as event.severity is read
    ({"risk_score": 73}, 7.3),                              # above 10: a 0-100 score (Elastic Defend)
])
def test_risk_score_norm_is_the_0_100_one_and_risk_score_keeps_its_own_scale(fields, severity):
    assert _severity(fields) == severity
