"""Documents of a format other than ECS (`format=wia`, `ocsf`, ...) get `@timestamp` from the event, against
osmem-server ("emulator" tests). The schema checks date-times as JSON Schema does: `t`/`z` in either case, one
trailing line break, any number of fraction digits. Elasticsearch's `date` (strict_date_optional_time, as the
template maps `@timestamp`) refuses those spellings with mapper_parsing_exception, and osmem does as it does: the
sink copied the timestamp as given, so such valid events were dead-lettered instead of indexed. Now `@timestamp`
is the same instant in UTC when Elasticsearch would not read it as written. The same for an offset past +-18:00:
RFC 3339 allows up to +-23:59, Java's ZoneOffset (and so Elasticsearch, elastic/elasticsearch#108672) refuses it."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from test_elastic_sink import CLIENTS, deliver, make_sink, reader
from wia_security.builders import AlertBuilder


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("fmt", ["wia", "ocsf"])
def test_emulator_every_schema_spelling_of_a_time_is_indexed_at_its_instant(kind: str, fmt: str, osmem: str) -> None:
    stamps = {"2026-01-31t12:00:00.5z": datetime(2026, 1, 31, 12, 0, 0, 500000, timezone.utc),
              "2026-01-31T21:00:00+09:00\n": datetime(2026, 1, 31, 12, 0, 0, tzinfo=timezone.utc),
              "2026-01-31T12:00:00.1234567891Z": datetime(2026, 1, 31, 12, 0, 0, 123456, timezone.utc),
              "2026-01-31T21:00:00.250+09:00": datetime(2026, 1, 31, 12, 0, 0, 250000, timezone.utc),
              # on the same UTC day: in a new index osmem's dynamic date detection takes the documents' own
              # time string (WIA's timestamp, OCSF's time_dt) for a date and then refuses it; Elasticsearch detects
              # only what strict_date_optional_time reads
              "2026-01-31T23:00:00+18:00": datetime(2026, 1, 31, 5, 0, 0, tzinfo=timezone.utc),
              "2026-01-31T23:00:00+18:30": datetime(2026, 1, 31, 4, 30, 0, tzinfo=timezone.utc),
              "2026-01-31T00:00:00.75-23:59": datetime(2026, 1, 31, 23, 59, 0, 750000, timezone.utc)}
    events = []
    for stamp in stamps:
        # built, not generated: a generated event's other times (data.first_seen, ...) come in any spelling too, and
        # in a non-ECS document the server's dynamic mapping refuses those it cannot read as a date it detected
        event = AlertBuilder().title("time spellings").indicator("domain", "c2.example.net").build().to_dict()
        event["timestamp"] = stamp
        events.append(event)
    report = deliver(make_sink(kind, osmem, format=fmt), events)
    assert (report.delivered, [r.reason for r in report.failed]) == (len(events), [])
    client = reader(osmem)
    client.indices.refresh(index="wia-security-*")
    hits = client.search(index="wia-security-*", body={"size": 100, "query": {"match_all": {}}})["hits"]["hits"]
    indexed = {h["_id"]: h["_source"]["@timestamp"] for h in hits}
    for event in events:
        written = indexed[event["id"]]
        moment = datetime.fromisoformat(written.replace("Z", "+00:00"))
        assert moment == stamps[event["timestamp"]]                     # the instant (to the microsecond)
        assert written == event["timestamp"] or written.endswith("Z")   # as given when Elasticsearch reads it
