"""Splunk SOAR sink, contract test: every RFC 3339 spelling of an event's timestamp reaches SOAR as a `start_time`
(container and artifacts) that SOAR reads as the same instant. SOAR's models read times as Django does (upper-case
T, Z upper case, at most 12 fraction digits): the sink sent the timestamp as written, so an event timed with a
lower-case z (or t, or 13+ fraction digits), all valid WIA, was refused with HTTP 400 and no container was made."""
from __future__ import annotations

import copy
from datetime import timezone

import pytest

from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.splunk_soar import SplunkSoarSink
from wia_security.timeutil import parse_iso
from wia_security.validation import validate_event

from splunk_soar_contract import read_datetime

FAST = DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0.01, max_elapsed=30)

#: spellings SOAR reads as they are: sent unchanged
AS_WRITTEN = ["2025-12-14T09:30:00Z", "2025-12-14T09:30:00.1Z", "2025-12-14T09:30:00.123456Z",
              "2025-12-14T11:30:00+02:00", "2025-12-14T04:00:00.25-05:30", "2025-12-14T09:30:00-00:00"]
#: valid RFC 3339 that SOAR refuses or may refuse: sent as the same instant in UTC with microseconds
RESPELLED = {"2025-12-14t09:30:00Z": "2025-12-14T09:30:00.000000Z",
             "2025-12-14T09:30:00z": "2025-12-14T09:30:00.000000Z",
             "2025-12-14t11:30:00.5+02:00": "2025-12-14T09:30:00.500000Z",
             "2025-12-14T09:30:00.1234567891Z": "2025-12-14T09:30:00.123456Z",
             "2025-12-14T09:30:00.1234567890123z": "2025-12-14T09:30:00.123456Z",
             "2025-12-14T09:30:00.12345678901234567890Z": "2025-12-14T09:30:00.123456Z",
             "2025-12-14T23:30:00.999999999-01:00": "2025-12-15T00:30:00.999999Z"}


def _timed(event: dict, timestamp: str) -> dict:
    event = copy.deepcopy(event)
    event["timestamp"] = timestamp
    assert validate_event(event).valid, validate_event(event).errors       # every one is a valid WIA time
    return event


@pytest.mark.parametrize("timestamp", AS_WRITTEN + list(RESPELLED))
def test_contract_start_time_is_the_events_instant_as_soar_reads_it(soar_server, sample_events, timestamp):
    event = _timed(next(e for e in sample_events if e["type"] == "threat_intel"), timestamp)
    with SplunkSoarSink(soar_server.url, token=soar_server.token, delivery=FAST) as sink:
        report = sink.send([event])
        report.merge(sink.flush())
    assert (report.delivered, report.failed) == (1, []), report.failed
    (container,) = soar_server.containers.values()
    artifacts = [a for a in soar_server.artifacts.values() if a["container"] == container["id"]]
    assert len(artifacts) > 1                                     # the event artifact and its indicators
    expected = parse_iso(timestamp).astimezone(timezone.utc)       # to the microsecond, as SOAR keeps it
    for record in [container, *artifacts]:
        assert record["start_time"] == RESPELLED.get(timestamp, timestamp)
        assert read_datetime(record["start_time"]) == expected
    assert container["data"]["wia_event"]["timestamp"] == timestamp     # the event itself is kept exact


def test_contract_a_time_soar_refuses_is_a_400_naming_it(soar_server, sample_events):
    """The contract server refuses what Django's reader refuses, as SOAR does (so the test above proves something)."""
    event = _timed(sample_events[0], "2025-12-14T09:30:00z")
    sink = SplunkSoarSink(soar_server.url, token=soar_server.token, delivery=FAST)
    container = sink.container_for(event) | {"start_time": event["timestamp"]}
    response = sink.session.post(soar_server.url + "/rest/container", json=container)
    sink.close()
    assert response.status_code == 400 and response.json()["failed"] is True
    assert "start_time" in response.json()["message"] and not soar_server.containers
