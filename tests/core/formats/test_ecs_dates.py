"""ECS date fields hold what Elasticsearch's default date format reads. RFC 3339 (and so WIA) allows a
lower-case `t`/`z` and any number of fraction digits; Elasticsearch's strict_date_optional_time refuses
both (elastic/elasticsearch#77432), so a document carrying them in @timestamp or another date field was
refused by the bulk API (mapper_parsing_exception) and the event dead-lettered. Such a time now stays
in `wia.*` and @timestamp is the same instant in UTC; the round trip stays exact."""
from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from test_ecs import ES_DATE, ecs_problems
from wia_corpus import builder_events
from wia_security import convert, parse, validate_event
from wia_security.timeutil import parse_iso

CANONICAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
#: valid RFC 3339 spellings Elasticsearch refuses, and ones it reads (which ECS keeps as they are)
REFUSED = ("2025-12-14t09:30:00.000Z", "2025-12-14T09:30:00.000z", "2025-12-14t09:30:00z",
           "2025-12-14T09:30:00.1234567891Z", "2025-12-14T11:30:00.123456789012+02:00",
           "2025-12-14T09:30:00.000Z\n", "2025-12-15T04:54:00+19:24", "2025-12-13T14:29:00-19:01",
           "2025-12-15T03:31:00.5+18:01")
READ = ("2025-12-14T09:30:00Z", "2025-12-14T09:30:00.123456789Z", "2025-12-14T15:00:00.5+05:30",
        "2025-12-14T09:30:00-00:00", "2025-12-15T03:30:00+18:00", "2025-12-13T15:30:00.25-18:00")
#: one event of each corpus event-type variant that has date fields besides @timestamp
EVENTS = [(n, e) for n, e in builder_events() if n.split("/")[0] in ("alert", "incident", "threat_intel", "endpoint_event",
                                                                      "network_event")][::4]


def _retimed(value: Any, spelling: str) -> Any:
    if isinstance(value, dict):
        return {k: _retimed(v, spelling) for k, v in value.items()}
    if isinstance(value, list):
        return [_retimed(v, spelling) for v in value]
    return spelling if isinstance(value, str) and CANONICAL.match(value) else value


@pytest.mark.parametrize("spelling", REFUSED + READ)
@pytest.mark.parametrize("name,event", EVENTS, ids=[n for n, _ in EVENTS])
def test_every_date_field_is_one_elasticsearch_reads_and_the_event_comes_back(name: str, event: dict,
                                                                             spelling: str) -> None:
    event = _retimed(copy.deepcopy(event), spelling)
    assert validate_event(event).valid
    doc = convert(event, to="ecs")
    assert ecs_problems(doc) == []                  # every date field matches ES_DATE; @timestamp is there
    if spelling in READ:
        assert doc["@timestamp"] == spelling and "timestamp" not in doc.get("wia", {})   # unchanged output
    else:                                           # the same instant in UTC, to the millisecond
        sent = parse_iso(spelling)
        assert parse_iso(doc["@timestamp"]) == sent.replace(microsecond=sent.microsecond // 1000 * 1000)
        assert doc["wia"]["timestamp"] == spelling
    assert [e.to_dict() for e in parse(doc, from_="ecs")] == [event]


@pytest.mark.parametrize("spelling", REFUSED)
def test_the_checker_refuses_what_elasticsearch_refuses(spelling: str) -> None:
    assert not ES_DATE.fullmatch(spelling)
