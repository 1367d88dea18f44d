"""STIX 2.1 section 3.2: `created` and `modified` MUST be precise to the millisecond. An event time written
with fewer fraction digits ("2025-12-14T09:30:00Z", as most products write it, or ".5Z") gave
`created`/`modified` with fewer too, and the OASIS validator refused every object of the bundle. Each
spelling below is a valid WIA date-time; every time in the event takes it, and the bundle, with and
without the WIA extension, must pass the validator strictly and keep the instant."""
from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from stix_validator import findings
from wia_corpus import builder_events
from wia_security import ConversionError, convert, parse
from wia_security.formats.stix.ids import stix_time
from wia_security.timeutil import parse_iso

SPELLINGS = ("2025-12-14T09:30:00Z", "2025-12-14T09:30:00.5Z", "2025-12-14T09:30:00.25Z",
             "2025-12-14t09:30:00z", "2025-12-14T10:30:00+01:00", "2025-12-14T09:30:00.000001Z",
             "0232-01-01T00:00:00.0005+01:00")
CANONICAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3,}Z$")
#: the first corpus event of each type
EVENTS = list({name.split("/")[0]: (name, event) for name, event in reversed(builder_events())}.values())


def _retimed(value: Any, spelling: str) -> Any:
    """`value` with every date-time string (the corpus writes them canonically) replaced by `spelling`."""
    if isinstance(value, dict):
        return {k: _retimed(v, spelling) for k, v in value.items()}
    if isinstance(value, list):
        return [_retimed(v, spelling) for v in value]
    if isinstance(value, str) and CANONICAL.match(value):
        return spelling
    return value


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_stix_time_is_millisecond_precise_utc_and_the_same_instant(spelling: str) -> None:
    written = stix_time(spelling)
    assert CANONICAL.match(written), written
    assert parse_iso(written) == parse_iso(spelling)


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("name,event", EVENTS, ids=[n for n, _ in EVENTS])
def test_any_spelling_of_the_event_times_gives_a_valid_bundle(name: str, event: dict, spelling: str) -> None:
    event = _retimed(copy.deepcopy(event), spelling)
    for options in ({}, {"wia_extension": False}):
        try:
            bundle = convert(event, to="stix", **options)
        except ConversionError:
            assert options, "the WIA extension keeps any value"
            continue
        assert findings(bundle) == []
        for obj in bundle["objects"]:
            for key in ("created", "modified"):
                if key in obj:
                    assert CANONICAL.match(obj[key]), (obj["id"], key, obj[key])
        back = parse_iso([e.to_dict() for e in parse(bundle, from_="stix")][-1]["timestamp"])
        sent = parse_iso(spelling)
        # plain STIX is read to the millisecond (docs/formats/stix.md), the WIA extension gives the event back
        assert back == (sent.replace(microsecond=sent.microsecond // 1000 * 1000) if options else sent)
