"""The sink's encoding without a server: the action line is written around the JSON of the index
name and the id (not by dumping a dict), the daily index name skips utc_day for timestamps it has
seen, and the converter is looked up once. Each must give exactly what the plain way gives."""
from __future__ import annotations

import json
import random
from typing import Any

import pytest

from strategies import event_dicts
from wia_security import convert, jsonio
from wia_security.connectors.elastic import ElasticSink, OpenSearchSink, es_date, event_version, utc_day
from wia_security.errors import ConfigError


def sink(**options: Any) -> ElasticSink:
    return OpenSearchSink("http://127.0.0.1:9", client=object(), **options)


def outcome(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - the exception itself is what is compared
        return type(exc), str(exc)


def plain_index(s: ElasticSink, event: dict[str, Any]) -> str:
    kind = str(event.get("type", "unknown")).lower()
    if s.naming == "datastream":
        return f"{s.index}-{kind}"
    return f"{s.index}-{kind}-{utc_day(event['timestamp'])}"


IDS = ['quote " backslash \\ slash /', "tab\t newline\n nul\x00 del\x7f", "\u2028\u2029 line separators",
       "ünïcødé – 漢字 🙂", "\x1f\x01", "plain-id"]


@pytest.mark.parametrize("naming", ["daily", "datastream"])
def test_action_line_is_the_dumped_action_for_any_id_and_type(naming: str) -> None:
    s = sink(naming=naming, format="wia")
    events = event_dicts(50, seed=3)
    for i, event in enumerate(events):
        event["id"] = IDS[i % len(IDS)] + str(i)
        if i % 7 == 0:
            event["type"] = 'Odd "Type\\' + "\u2028"
        action, doc, end = s.encode(event).split(b"\n")
        if naming == "datastream":          # data streams take only create
            expected = {"create": {"_index": plain_index(s, event), "_id": event["id"]}}
        else:
            expected = {"index": {"_index": plain_index(s, event), "_id": event["id"],
                                  "version": event_version(event), "version_type": "external"}}
        assert action == jsonio.dumpb(expected)
        assert next(iter(json.loads(action).values()))["_id"] == event["id"] and end == b""
        assert doc == jsonio.dumpb({"@timestamp": es_date(event["timestamp"]), **convert(event, to="wia")})


def test_an_id_json_cannot_hold_fails_as_dumping_the_action_does() -> None:
    s = sink()
    event = event_dicts(1, seed=4)[0]
    event["id"] = "lone \ud800 surrogate"
    expected = outcome(jsonio.dumpb, {"create": {"_index": s.index_for(event), "_id": event["id"]}})
    assert isinstance(expected, tuple)                   # it does fail
    assert outcome(s.encode, event) == expected


def test_index_names_equal_the_plain_computation_for_any_spelling() -> None:
    rnd = random.Random(8)
    daily, stream = sink(), sink(naming="datastream", index="soc")
    events: list[dict[str, Any]] = []
    for _ in range(5000):
        stamp = (f"{rnd.choice(['2025', '1999'])}-{rnd.randint(0, 13):02d}-{rnd.randint(0, 31):02d}"
                 f"{rnd.choice('Tt ')}{rnd.randint(0, 24):02d}:{rnd.randint(0, 60):02d}:00"
                 f"{rnd.choice(['', '.5'])}{rnd.choice(['Z', 'z', '+02:00', '-05:00', ''])}")
        events.append({"type": rnd.choice(["alert", "Auth_Event", None, 7, "x\u0130"]), "timestamp": stamp})
    events += [{"type": "alert"}, {"timestamp": "2025-01-01T00:00:00Z"}, {"type": "alert", "timestamp": None},
               {"type": "alert", "timestamp": "\u0662\u0660\u0662\u0665-01-01T00:00:00Z"}]
    for event in events * 2:                # the second time, the days are known
        for s in (daily, stream):
            assert outcome(s.index_for, event) == outcome(plain_index, s, event), event


def test_documents_are_what_convert_gives_and_follow_a_changed_format() -> None:
    s = sink()
    events = event_dicts(30, seed=5)
    assert [s.document(e) for e in events] == [convert(e, to="ecs") for e in events]
    s.format = "ocsf"                       # the converter is looked up again
    assert [s.document(e) for e in events] == [{"@timestamp": es_date(e["timestamp"]), **convert(e, to="ocsf")}
                                               for e in events]


def test_utc_day_of_offset_timestamps_is_the_full_parse_s_answer_or_error() -> None:
    """utc_day works out the day of `±HH:MM` timestamps itself; the answer, or the error and its
    message, must be what parsing the whole timestamp gives (days and times that do not exist,
    offsets across midnight, years 1 and 9999)."""
    from datetime import timezone

    from wia_security.timeutil import parse_iso

    def by_parsing(value: str) -> str:
        try:
            moment = parse_iso(value).astimezone(timezone.utc)
        except OverflowError:           # a UTC day before year 1 or after 9999: said as utc_day says it
            raise ValueError(f"timestamp {value!r} is outside the years 0001-9999 in UTC: no daily index can be "
                             "named for it") from None
        return f"{moment.year:04d}.{moment.month:02d}.{moment.day:02d}"

    rnd = random.Random(11)
    stamps = ["2025-12-31T23:30:00-01:00", "2025-01-01T00:10:00+00:11", "0001-01-01T00:00:00+00:01",
              "9999-12-31T23:59:59-00:01", "2024-02-28T23:00:00-01:00", "2025-02-28T23:00:00-01:00",
              "2025-03-01T00:30:00+01:00", "2024-03-01T00:30:00+23:59", "2025-02-29T12:00:00+01:00",
              # a time just at and just before the turn of the UTC day, both signs, and zero offsets
              "2025-03-01T05:30:00+05:30", "2025-03-01T05:29:59.9+05:30", "2025-12-31T18:30:00-05:30",
              "2025-12-31T18:29:59-05:30", "2024-02-28T00:00:00+00:01", "2024-02-28T23:59:00-00:01",
              "2024-02-28T23:58:59-00:01", "2025-06-01T00:00:00+00:00", "2025-06-01T23:59:59-00:00",
              "2025-06-01T00:00:00-23:59", "2025-06-01T00:01:00-23:59", "2025-06-01T23:59:00+23:59"]
    for _ in range(30_000):
        stamps.append(f"{rnd.choice(['0001', '1999', '2024', '2025', '9999'])}-{rnd.randint(0, 13):02d}-"
                      f"{rnd.randint(0, 32):02d}{rnd.choice('Tt')}{rnd.randint(0, 24):02d}:{rnd.randint(0, 60):02d}:"
                      f"{rnd.randint(0, 60):02d}{rnd.choice(['', '.5', '.123456789'])}{rnd.choice('+-')}"
                      f"{rnd.randint(0, 24):02d}:{rnd.randint(0, 60):02d}")
    shifted = 0
    for stamp in stamps * 2:            # the second time from the remembered days
        assert outcome(utc_day, stamp) == outcome(by_parsing, stamp), stamp
        shifted += isinstance(outcome(by_parsing, stamp), str) and utc_day(stamp).replace(".", "-") != stamp[:10]
    assert utc_day("2025-12-31T23:30:00-01:00") == "2026.01.01" and utc_day("2025-03-01T00:30:00+01:00") == "2025.02.28"
    assert shifted > 1000                # many cross midnight


def answer_texts() -> list[str]:
    """Bulk answers with and without item errors, and texts orjson reads differently or not at all."""
    rnd = random.Random(12)
    texts = []
    for n in range(40):
        items = []
        for i in range(rnd.randint(0, 30)):
            status = rnd.choice([201, 201, 409, 429, 400, 503])
            item: dict[str, Any] = {"_index": "wia-security-alert-2025.12.14", "_id": f"{IDS[i % len(IDS)]}{i}",
                                    "_version": 1, "status": status}
            if status >= 300:
                item["error"] = {"type": "mapper_parsing_exception", "reason": f"failed to parse [x] – {IDS[n % 6]}",
                                 "caused_by": {"type": "illegal_argument_exception", "reason": "\u2028 🙂"}}
            items.append({"create": item})
        texts.append(json.dumps({"took": n, "errors": any(i["create"]["status"] >= 300 for i in items), "items": items},
                                ensure_ascii=n % 2 == 0))
    texts += ['{"a":123456789012345678901234567890}', '{"a":-9223372036854775809}', '{"a":18446744073709551616}',
              '{"a":18446744073709551615}', '{"a":1e400}', '{"a":NaN}', '{"a":-Infinity}', '{"a":"\\ud800"}',
              '{"a":"\ud800"}', "[" * 2000 + "]" * 2000, '{"a":1,"a":2}', '{"a":1.0,"b":-0,"c":-0.0,"d":1E2}',
              "", " ", '{"a":1} x', "\ufeff{}", "<html><body>502 Bad Gateway</body></html>", '{"took":1,"errors":fa',
              '{"a":01}', '[1,]', "{'a':1}", '{"a":"\x00\x1f"}', "null", '"text"']
    return texts


def read(loads: Any, text: Any) -> Any:
    try:
        value = loads(text)
    except Exception as exc:  # noqa: BLE001 - the exception itself is what is compared
        return type(exc), str(exc)
    return repr(value)


def test_opensearch_answers_read_as_the_client_s_own_reader_reads_them() -> None:
    """The OpenSearch sink's client reads answers with orjson (opensearch_serializer): every text must
    give the same value (types included), or fail with the same error, as opensearch-py's own reader."""
    from opensearchpy.serializer import JSONSerializer

    client_reader = OpenSearchSink("http://127.0.0.1:9").client.transport.deserializer
    for text in answer_texts():
        assert read(lambda t: client_reader.loads(t, "application/json; charset=UTF-8"), text) == \
            read(JSONSerializer().loads, text), text[:80]


def test_elasticsearch_answers_read_as_the_client_s_own_reader_reads_them() -> None:
    """The same for the Elasticsearch sink (elasticsearch_serializers), for the plain and the
    compatibility-mode JSON mimetypes, on the bytes the client hands its serializers."""
    from elasticsearch.serializer import CompatibilityModeJsonSerializer, JsonSerializer

    client_readers = ElasticSink("http://127.0.0.1:9").client.transport.serializers
    for mimetype, own_reader in [("application/json", JsonSerializer()),
                                 ("application/vnd.elasticsearch+json; compatible-with=9", CompatibilityModeJsonSerializer())]:
        for text in [*answer_texts(), "\ufeff{}".encode("utf-16")]:
            data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
            assert read(lambda d: client_readers.loads(d, mimetype), data) == read(own_reader.loads, data), data[:80]


@pytest.mark.parametrize("stamp, day", [
    ("0001-01-01T00:00:00Z", "0001.01.01"), ("0999-12-31T23:59:59.5z", "0999.12.31"),
    ("0099-06-01T23:30:00-01:00", "0099.06.02"), ("0010-03-01T00:30:00+01:00", "0010.02.28"),
    ("0500-01-01T00:00:00+00:00", "0500.01.01"), ("0042-07-04 12:00:00Z", "0042.07.04")])
def test_daily_index_names_have_four_year_digits_for_years_before_1000(stamp: str, day: str) -> None:
    # strftime's %Y gives "1.01.01" for year 1 on glibc: an index name out of the YYYY.MM.DD pattern
    assert utc_day(stamp) == day
    assert sink().index_for({"type": "alert", "timestamp": stamp}) == f"wia-security-alert-{day}"


@pytest.mark.parametrize("prefix", ["soc:a", "soc a", "soc,a", "soc#a", "soc*", "a/b", "a\\b", "a?b", 'a"b', "a<b",
                                    "a>b", "a|b", ".", "..", "x" * 230])
def test_an_index_prefix_the_server_cannot_name_indices_with_is_a_config_error(prefix: str) -> None:
    # Every event's index (and the template's name) would be refused item by item: all dead-lettered, at run time
    with pytest.raises(ConfigError) as caught:
        sink(index=prefix)
    assert caught.value.key == "index"


@pytest.mark.parametrize("prefix", ["soc", "wia-security", "soc.a", "soc_a", "a-b-c", "ünï", "x" * 229])
def test_index_prefixes_the_server_takes_are_accepted(prefix: str) -> None:
    assert sink(index=prefix).index == prefix
