"""XSOAR sink, contract test: the event id goes into the searchIncidents query (`wiaeventid:"<id>"`) that
finds an event's incident before creating or updating one. An id with a quote in it could close the term and
add its own: another event's incident then counts as this one's (the event is never created) or is
overwritten by update(). Events are validated as UUIDs before, but a Python caller can pass anything: such an
id is refused without a search. Runs demisto-py against tests/servers/xsoar_contract.py."""
from __future__ import annotations

import copy
import json

import pytest

from wia_security import AlertBuilder, IncidentBuilder
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.xsoar import XsoarSink
from wia_security.errors import DeliveryError

FAST = DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0.01, max_elapsed=5)


def _searches(server) -> list[str]:
    return [r.body["filter"]["query"] for r in server.requests if r.path.endswith("/incidents/search")]


def test_contract_an_id_that_would_rewrite_the_query_is_refused_not_searched(xsoar_server):
    victim = IncidentBuilder().title("Ransomware on FIN-01").category("ransomware").status("triaging").severity(9).build().to_dict()
    with XsoarSink(xsoar_server.url, token=xsoar_server.api_key, delivery=FAST) as sink:
        report = sink.send([victim])
        assert report.delivered == 1
        (stored,) = xsoar_server.incidents.values()
        before = copy.deepcopy(stored)
        # ends the quoted id and adds a term naming the victim's id: the search would find the victim's incident
        hostile = IncidentBuilder().title("attacker").category("ransomware").status("closed").severity(1).build().to_dict()
        hostile["id"] = f'{victim["id"]}" and wiaeventid:"{victim["id"]}'
        searched = len(_searches(xsoar_server))
        with pytest.raises(DeliveryError, match="not usable in an XSOAR query"):
            sink.update(hostile)                                       # would overwrite the victim's incident
        with pytest.raises(DeliveryError, match="not usable in an XSOAR query"):
            sink.find_incident('x" or type:"WIA Security Event')
        report = sink.send([hostile])                                  # would count as a duplicate of the victim
        report.merge(sink.flush())
    assert (report.delivered, report.duplicates, len(report.failed)) == (0, 0, 1)
    assert hostile["id"] not in sink.incidents
    assert len(_searches(xsoar_server)) == searched                  # none of them reached XSOAR
    assert list(xsoar_server.incidents.values()) == [before]         # the victim's incident as it was
    assert json.loads(before["rawJSON"])["data"]["title"] == "Ransomware on FIN-01"


def test_contract_uuid_ids_are_searched_as_they_are(xsoar_server):
    event = AlertBuilder().title("PowerShell").build().to_dict()
    with XsoarSink(xsoar_server.url, token=xsoar_server.api_key, delivery=FAST) as sink:
        assert sink.find_incident(event["id"]) is None
        sink.send([event])
        assert sink.find_incident(event["id"])["id"] == sink.incidents[event["id"]]
    assert _searches(xsoar_server)[0] == f'wiaeventid:"{event["id"]}"'
