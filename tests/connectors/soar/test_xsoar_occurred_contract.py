"""XSOAR sink, contract test: an incident's `occurred` is RFC 3339 as XSOAR's server reads it (Go's time.RFC3339:
'T' and 'Z' upper case, nothing after the offset), the event's instant. The schema's date-time is checked as JSON
Schema checks it (case-insensitive, one trailing line break allowed), so a valid event may carry
'2026-01-31t12:00:00.5z' or a timestamp ending in '\\n'; the sink sent it as `occurred` as given. The pack's fetch
already writes such a time in UTC (tests/xsoar_pack/test_integration_occurred.py): the same event reached XSOAR
with a time its server refuses through the sink only (found by tests/e2e, comparing the two ways into XSOAR)."""
from __future__ import annotations

import copy
import re
from datetime import datetime, timezone

import pytest

from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.xsoar import XsoarSink

#: RFC 3339 date-time as Go's time.Parse(time.RFC3339, ...) takes it.
STRICT_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")


@pytest.mark.parametrize("stamp, moment", [
    ("2026-01-31t12:00:00.5z", datetime(2026, 1, 31, 12, 0, 0, 500000, timezone.utc)),
    ("2026-01-31T21:00:00+09:00\n", datetime(2026, 1, 31, 12, 0, 0, tzinfo=timezone.utc)),
    ("2026-01-31T12:00:00.123456789Z", None),                 # canonical: kept as given (nanoseconds included)
    ("2026-01-31T21:00:00.000+09:00", None),
])
def test_contract_occurred_is_strict_rfc3339_and_the_events_instant(xsoar_server, sample_events, stamp, moment):
    event = copy.deepcopy(sample_events[0])
    event["timestamp"] = stamp
    with XsoarSink(xsoar_server.url, token=xsoar_server.api_key, delivery=DeliveryPolicy(max_wait=0)) as sink:
        assert sink.send([event]).merge(sink.flush()).delivered == 1
    [incident] = xsoar_server.incidents.values()
    occurred = incident["occurred"]
    assert STRICT_RFC3339.fullmatch(occurred), repr(occurred)
    if moment is None:
        assert occurred == stamp
    else:
        assert datetime.fromisoformat(occurred.replace("Z", "+00:00")) == moment
