"""An incident's occurred is an RFC 3339 timestamp as XSOAR's server reads it (Go's time, which wants 'T' and 'Z' in
upper case and nothing after the offset), the event's instant, whatever spelling the standard's schema let through.

The schema's date-time is checked as JSON Schema checks it: case-insensitive, with one trailing line break allowed
(core/validation/formats.py, as the reference implementation). The incident took the event's timestamp as given, so
'2026-01-31t12:00:00.5z' or a timestamp ending in '\\n' reached XSOAR as occurred. Run through main() against the
project's gateway."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest

from wia_security import AlertBuilder

from .conftest import run_command

#: RFC 3339 date-time as Go's time.Parse(time.RFC3339, ...) takes it.
STRICT_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")


@pytest.mark.parametrize("stamp, moment", [
    ("2026-01-31t12:00:00.5z", datetime(2026, 1, 31, 12, 0, 0, 500000, timezone.utc)),
    ("2026-01-31T21:00:00+09:00\n", datetime(2026, 1, 31, 12, 0, 0, tzinfo=timezone.utc)),
    ("2026-01-31T12:00:00.123456789Z", None),                 # canonical: kept as given (nanoseconds included)
])
def test_occurred_is_strict_rfc3339_and_the_events_instant(integration, demisto, gateway, stamp, moment):
    event = AlertBuilder().title("late").severity(5).build().to_dict()
    event["timestamp"] = stamp
    gateway.publish([event])
    params = {"url": gateway.url, "source_type": "gateway", "credentials": {"identifier": "", "password": gateway.token}}
    run_command(integration, demisto, "fetch-incidents", params=params)
    (incident,) = demisto.incidents_out[-1]
    assert json.loads(incident["rawJSON"])["timestamp"] == stamp          # the event itself is unchanged
    occurred = incident["occurred"]
    assert STRICT_RFC3339.fullmatch(occurred), repr(occurred)
    if moment is None:
        assert occurred == stamp
    else:
        assert datetime.fromisoformat(occurred.replace("Z", "+00:00")) == moment
