"""XSOAR sink, contract test: the sink finds an event's incident before creating one by the pack's incident field
`wiaeventid`, which the WIA Security pack associates with its own incident type only. With another
`incident_type` (or without the pack), XSOAR stores the incident without that field: the search never finds it
and every re-sent event becomes another incident, which happened without a word. The create answer shows it:
the sink now says so once (WARNING, and `sink.deduplication_problem`)."""
from __future__ import annotations

import logging

from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.xsoar import XsoarSink

FAST = DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0.01)


def send_twice(server, events, **options):
    with XsoarSink(server.url, token=server.api_key, delivery=FAST, **options) as sink:
        for _ in range(2):
            report = sink.send(events)
            report.merge(sink.flush())
    return sink


def test_contract_another_incident_type_without_the_pack_field_is_named_once(xsoar_server, sample_events, caplog):
    caplog.set_level(logging.WARNING, logger="wia_security.connectors.soar.xsoar")
    sink = send_twice(xsoar_server, sample_events[:2], incident_type="Unclassified")
    assert len(xsoar_server.incidents) == 4                     # what XSOAR does: the search cannot find them
    warnings = [r.getMessage() for r in caplog.records if "wiaeventid" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "Unclassified" in warnings[0] and "second incident" in warnings[0]
    assert sink.deduplication_problem and "Unclassified" in sink.deduplication_problem
    assert xsoar_server.api_key not in caplog.text


def test_contract_the_packs_own_type_deduplicates_without_a_warning(xsoar_server, sample_events, caplog):
    caplog.set_level(logging.WARNING, logger="wia_security.connectors.soar.xsoar")
    sink = send_twice(xsoar_server, sample_events[:2])
    assert len(xsoar_server.incidents) == 2 and sink.deduplication_problem is None
    assert not [r for r in caplog.records if "wiaeventid" in r.getMessage()]
