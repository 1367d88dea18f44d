"""The WIA Security integration under hostile input and failing sources, run through main() with the
demistomock / CommonServerPython stand-ins: secrets never in war-room errors or logs (also when the
source echoes the request, or the URL carries user:password); bad arguments get an error naming the
argument; items that are not WIA event objects are reported, never a fetch that dies on them forever;
a fetch that fails part-way creates nothing and leaves last_run where it was, and the next fetch brings
every event exactly once."""
from __future__ import annotations

import json

import pytest

from wia_security import AlertBuilder, convert

from .conftest import run_command

TOKEN = "gateway-feed-token-5e1b93c07a2d"


def alerts(n: int) -> list[dict]:
    return [AlertBuilder().title(f"alert {i}").severity(i % 10).build().to_dict() for i in range(n)]


def params_for(server, **extra) -> dict:
    return {"url": server.url, "source_type": "gateway", "credentials": {"identifier": "", "password": TOKEN},
            "max_fetch": "3", **extra}


@pytest.fixture
def feed():
    from wia_gateway_feed import GatewayFeed
    with GatewayFeed(token=TOKEN) as server:
        yield server


def errors_and_logs(demisto) -> str:
    return json.dumps(demisto.results_log) + json.dumps(demisto.logs)


def fetched_ids(demisto) -> list[str]:
    return [json.loads(i["rawJSON"])["id"] for i in demisto.incidents_out[-1]] if demisto.incidents_out else []


# -- secrets ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("identifier", ["", "analyst"])
def test_contract_secret_echoed_by_the_source_is_masked(integration, demisto, identifier):
    """A source (or a proxy) whose 401 repeats the Authorization header it got: bearer token or HTTP
    Basic, the war-room error and the logs show *** instead."""
    from wia_gateway_feed import GatewayFeed

    class Echoing(GatewayFeed):
        def handle(self, req, headers):
            return 401, {"error": {"code": "E2001", "message": f"rejected Authorization: {headers.get('authorization')}"}}, {}

    with Echoing(token=TOKEN) as server:
        params = params_for(server, credentials={"identifier": identifier, "password": TOKEN})
        for command in ("test-module", "fetch-incidents", "wia-get-events"):
            (entry,) = run_command(integration, demisto, command, params=params)
            assert entry["Type"] == 4 and "401" in entry["Contents"] and "***" in entry["Contents"]
            assert TOKEN not in errors_and_logs(demisto)
            if identifier:
                import base64
                assert base64.b64encode(f"{identifier}:{TOKEN}".encode()).decode() not in errors_and_logs(demisto)


@pytest.mark.parametrize("url", ["http://alice:Pa55-w0rd-91c@127.0.0.1:9", "https://alice:Pa55-w0rd-91c@gw.example",
                                 "kafka+sasl://alice:Pa55-w0rd-91c@127.0.0.1:9/topic"])
def test_a_source_url_with_user_and_password_is_refused_without_repeating_them(integration, demisto, url):
    """Kafka used to put the whole netloc, password included, in its bootstrap error."""
    source_type = "kafka" if url.startswith("kafka") else "gateway"
    (entry,) = run_command(integration, demisto, "test-module", params={"url": url, "source_type": source_type})
    assert entry["Type"] == 4 and "Credentials parameter" in entry["Contents"]
    assert "Pa55-w0rd-91c" not in errors_and_logs(demisto)


# -- arguments ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command,args,message", [
    ("wia-get-events", {"limit": "abc"}, "limit must be a whole number"),
    ("wia-get-events", {"limit": "-5"}, "limit must be a whole number"),
    ("wia-get-events", {"limit": "0"}, "limit must be a whole number"),
    ("wia-get-events", {"limit": "2.5"}, "limit must be a whole number"),
    ("wia-get-events", {"event_type": "alert,nope"}, "event_type nope is not a WIA event type"),
    ("wia-validate-event", {"event": "{}", "lenient": "maybe"}, "lenient must be true or false"),
    ("wia-validate-event", {"event": [{"id": "x"}]}, "the event argument must be one WIA event"),
    ("wia-validate-event", {"event": "[" * 100_000}, "the event argument is not JSON"),
    ("wia-convert-event", {"event": "\"text\"", "format": "stix"}, "the event argument must be a JSON object"),
])
def test_bad_arguments_get_an_error_naming_the_argument(integration, demisto, feed, command, args, message):
    (entry,) = run_command(integration, demisto, command, args, params_for(feed))
    assert entry["Type"] == 4 and message in entry["Contents"], entry["Contents"]


def test_after_must_be_a_timestamp_for_a_taxii_source(integration, demisto, feed):
    params = params_for(feed, source_type="taxii")
    (entry,) = run_command(integration, demisto, "wia-get-events", {"after": "yesterday"}, params)
    assert entry["Type"] == 4 and "after must be an RFC 3339 timestamp" in entry["Contents"]
    (entry,) = run_command(integration, demisto, "wia-get-events", {"after": "2026-01-31T12:00:00"}, params)
    assert entry["Type"] == 4 and "after must carry a time zone" in entry["Contents"]
    kafka = {"url": "kafka://127.0.0.1:9/t", "source_type": "kafka"}
    (entry,) = run_command(integration, demisto, "wia-get-events", {"after": "5"}, kafka)
    assert entry["Type"] == 4 and "after applies to gateway and TAXII sources" in entry["Contents"]


@pytest.mark.parametrize("value", ["abc", "-1", "0"])
def test_max_fetch_must_be_a_positive_whole_number(integration, demisto, feed, value):
    feed.events.extend(alerts(2))
    (entry,) = run_command(integration, demisto, "fetch-incidents", params=params_for(feed, max_fetch=value),
                           last_run={"cursor": "0"})
    assert entry["Type"] == 4 and "Maximum number of incidents per fetch must be a whole number" in entry["Contents"]
    assert demisto.incidents_out == [] and demisto.last_run == {"cursor": "0"}


# -- items that are not events; failing sources -------------------------------------------------------------------
def test_fetch_reports_items_that_are_not_event_objects_and_moves_on(integration, demisto, feed):
    """They used to raise AttributeError: every fetch failed on the same item, so fetching stopped for good."""
    good = alerts(3)
    feed.events.extend([good[0], "junk", 7, None, [good[1]], good[1], good[2]])
    params = params_for(feed)
    got, state = [], {}
    for _ in range(4):
        run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
        assert not [r for r in demisto.results_log if r.get("Type") == 4], demisto.results_log
        got += fetched_ids(demisto)
        state = demisto.last_run
        if _ == 0:
            logged = errors_and_logs(demisto)
    assert got == [e["id"] for e in good]
    assert "a JSON str, not a WIA event object" in logged and "a JSON int" in logged


@pytest.mark.parametrize("body", [[1, 2], {"events": "none"}, "text"])
def test_fetch_stops_on_an_answer_that_is_not_a_feed_page(integration, demisto, feed, body):
    from intel_http import Fault
    events = alerts(4)
    feed.events.extend(events)
    params = params_for(feed)
    feed.faults.append(Fault(200, body, path_prefix="/v1/events"))
    (entry,) = run_command(integration, demisto, "fetch-incidents", params=params, last_run={"cursor": "0"})
    assert entry["Type"] == 4 and "without a 'events' array" in entry["Contents"]
    assert demisto.incidents_out == [] and demisto.last_run == {"cursor": "0"}
    got, state = [], {"cursor": "0"}
    for _ in range(3):
        run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
        got += fetched_ids(demisto)
        state = demisto.last_run
    assert got == [e["id"] for e in events]


@pytest.mark.parametrize("fault", [
    (429, {"error": {"code": "E4290", "message": "slow down"}}, {"Retry-After": "30"}),
    (401, {"error": {"code": "E2001", "message": "token revoked"}}, {}),
    (503, {"error": "busy"}, {}),
])
def test_fetch_failing_on_a_later_page_creates_nothing_and_keeps_last_run(integration, demisto, feed, fault):
    """The second page of one fetch fails (429 with Retry-After, a token revoked mid-run, 503): no
    incident is created and last_run stays, so the next fetch brings every event once, none twice."""
    from intel_http import Fault
    events = alerts(6)
    feed.events.extend(events)
    params = params_for(feed)
    start = {"cursor": "0", "recent_ids": [events[0]["id"], events[1]["id"]]}    # page 1 brings one new event
    status, body, headers = fault
    feed.faults.append(Fault(200, {"events": events[:3], "next": "3"}, path_prefix="/v1/events"))
    feed.faults.append(Fault(status, body, headers=headers, path_prefix="/v1/events"))
    (entry,) = run_command(integration, demisto, "fetch-incidents", params=params, last_run=start)
    assert entry["Type"] == 4 and str(status) in entry["Contents"]
    assert demisto.incidents_out == [] and demisto.last_run == start
    got, state = [], start
    for _ in range(3):
        run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
        got += fetched_ids(demisto)
        state = demisto.last_run
    assert got == [e["id"] for e in events[2:]]


def test_taxii_page_with_objects_that_are_not_objects(integration, demisto, feed):
    """A TAXII envelope whose objects array holds non-objects and a malformed WIA carrier: each is
    reported; the WIA events beside them become incidents (the page used to fail every fetch)."""
    from intel_http import Fault
    alert = alerts(1)[0]
    bundle = convert(alert, to="stix")
    from wia_security.formats.stix import WIA_EXTENSION
    malformed = {"type": "sighting", "id": 5, "extensions": {WIA_EXTENSION: {"extension_type": "property-extension",
                                                                             "event": {"x": 1}}}}
    envelope = {"more": False, "objects": ["junk", 3, malformed, *bundle["objects"]]}
    feed.faults.append(Fault(200, envelope, headers={"X-TAXII-Date-Added-Last": "2026-01-31T12:00:00.000000Z",
                                                      "Content-Type": "application/taxii+json;version=2.1"},
                             path_prefix="/objects/"))
    run_command(integration, demisto, "fetch-incidents", params=params_for(feed, source_type="taxii"))
    assert fetched_ids(demisto) == [alert["id"]]
    assert demisto.last_run["added_after"] == "2026-01-31T12:00:00.000000Z"
    logged = errors_and_logs(demisto)
    assert "STIX object #0 of the page is a JSON str" in logged and "STIX object #1 of the page is a JSON int" in logged
    assert "STIX sighting 5 gave no WIA event: " in logged and "every STIX object needs a string `id`" in logged


def test_plain_stix_page_one_unreadable_indicator_refuses_only_its_event(integration, demisto, feed):
    """stix_content=stix: the page used to be read all or nothing, so one indicator the reader cannot map
    dropped every incident of the page; now only its event is refused, reported with its JSON pointer."""
    from wia_gateway_feed import plain_stix_page_with_an_unmappable_indicator

    feed.faults.append(plain_stix_page_with_an_unmappable_indicator("2026-01-31"))
    run_command(integration, demisto, "fetch-incidents", params=params_for(feed, source_type="taxii", stix_content="stix"))
    fetched = [json.loads(i["rawJSON"]) for i in demisto.incidents_out[-1]]
    assert sorted(e["data"]["indicators"][0]["value"] for e in fetched) == ["198.51.100.1", "bad.example"]
    logged = errors_and_logs(demisto)
    assert "a STIX event of the page was refused: stix at /1/pattern" in logged


@pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning", "ignore:open_text is deprecated:DeprecationWarning")
def test_fetch_reports_a_kafka_tombstone_and_moves_on(integration, demisto):
    """A null-valued message used to raise AttributeError and fail every fetch at the same offset."""
    import sys
    from pathlib import Path
    sys.path.append(str(Path(__file__).resolve().parents[1] / "servers"))
    from servers.tansu import start_tansu
    events = alerts(3)
    broker = start_tansu()
    try:
        topic = broker.topic_with_a_tombstone(events)
        params = {"url": f"kafka://{broker.bootstrap}/{topic}", "source_type": "kafka", "max_fetch": "10"}
        run_command(integration, demisto, "fetch-incidents", params=params)
        first, logged, state = fetched_ids(demisto), errors_and_logs(demisto), demisto.last_run
        run_command(integration, demisto, "fetch-incidents", params=params, last_run=state)
        second = fetched_ids(demisto)
    finally:
        broker.kill()
    assert first == [e["id"] for e in events] and second == []
    assert f"{topic}/0@1 is not a WIA event: no value (a tombstone)" in logged
    assert state["offsets"] == {"0": 4}


def test_a_taxii_date_header_that_is_not_a_timestamp_never_reaches_last_run(integration, demisto, feed):
    """Kept in last_run, it used to fail every later fetch (step_back could not parse it)."""
    from intel_http import Fault
    alert = alerts(1)[0]
    feed.faults.append(Fault(200, {"more": False, "objects": convert(alert, to="stix")["objects"]},
                             headers={"X-TAXII-Date-Added-Last": "soon", "Content-Type": "application/taxii+json;version=2.1"},
                             path_prefix="/objects/"))
    (entry,) = run_command(integration, demisto, "fetch-incidents", params=params_for(feed, source_type="taxii"),
                           last_run={"added_after": "2026-01-31T12:00:00.000000Z"})
    assert entry["Type"] == 4 and "X-TAXII-Date-Added-Last 'soon' is not a timestamp" in entry["Contents"]
    assert demisto.incidents_out == [] and demisto.last_run == {"added_after": "2026-01-31T12:00:00.000000Z"}
