"""wia-get-events with event_type returns up to `limit` events of those types, read past events of other types.

It read `limit` events and then kept those of the types asked: `event_type=incident limit=2` on a gateway whose next
events were alerts answered an empty table, as if there were no incident. Run through main() against the project's
gateway."""
from __future__ import annotations

from wia_security import AlertBuilder, IncidentBuilder

from .conftest import run_command


def test_event_type_reads_past_other_types_up_to_limit(integration, demisto, gateway):
    alerts = [AlertBuilder().title(f"alert {i}").severity(5).build().to_dict() for i in range(5)]
    incidents = [IncidentBuilder().title(f"incident {i}").build().to_dict() for i in range(3)]
    gateway.publish(alerts + incidents)
    params = {"url": gateway.url, "source_type": "gateway", "credentials": {"identifier": "", "password": gateway.token}}
    (entry,) = run_command(integration, demisto, "wia-get-events", {"limit": "2", "event_type": "incident"}, params)
    assert [e["id"] for e in entry["Contents"]] == [e["id"] for e in incidents[:2]]
    (entry,) = run_command(integration, demisto, "wia-get-events", {"limit": "10", "event_type": "alert,incident"}, params)
    assert [e["id"] for e in entry["Contents"]] == [e["id"] for e in alerts + incidents]
    assert demisto.last_run == {}                          # wia-get-events never moves the fetch position
