"""Splunk search source driven by the real splunk-sdk against the Splunk REST contract server.

Round trip: WIA events -> HEC sink -> HEC contract server -> "indexed" in the REST contract server ->
splunk-sdk export search -> the same WIA events; other sourcetypes are reported, not skipped."""
from __future__ import annotations

import json

import pytest

from servers.hec_contract import HecContractServer  # noqa: E402
from servers.splunk_rest_contract import SplunkRestContractServer  # noqa: E402
from strategies import event_dicts  # noqa: E402

from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.splunk.hec import HecSink
from wia_security.connectors.splunk.search import SplunkSearchSource
from wia_security.connectors.sqlite import SqliteSink
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.errors import DeliveryError
from wia_security.pipeline import Forwarder

HEC_TOKEN = "a1b2c3d4-0000-4000-8000-000000000001"
REST_TOKEN = "eyJraWQiOiJzcGx1bmsuc2VjcmV0IiwiYWxnIjoiSFM1MTIifQ.contract"


@pytest.fixture
def indexed():
    """50 WIA events sent through the HEC sink, as the REST server will return them."""
    events = event_dicts(50, seed=21)
    with HecContractServer({HEC_TOKEN: {}}) as hec:
        with HecSink(hec.url, token=HEC_TOKEN, index="security", delivery=DeliveryPolicy(max_wait=0)) as sink:
            sink.send(events)
            assert sink.flush().delivered == 50
        return events, hec.events


def test_contract_export_search_returns_the_wia_events(indexed):
    events, hec_events = indexed
    with SplunkRestContractServer({REST_TOKEN}) as rest:
        for e in hec_events:
            rest.index(e)
        rest.index({"event": "Jan 1 00:00:00 fw1 kernel: DROP", "sourcetype": "syslog", "index": "security"})
        rest.index({"event": "not json", "sourcetype": "wia:security:alert", "index": "security"})
        source = SplunkSearchSource(f"http://127.0.0.1:{rest.port}", token=REST_TOKEN)
        items = list(source.items("search index=security", earliest="-7d"))
        assert rest.requests[0] == ("GET", "/services/server/info")          # splunk-sdk reads the version first
        assert rest.requests[-1] == ("POST", "/services/search/v2/jobs/export")
        search = rest.searches[-1]
        assert search["output_mode"] == "json" and search["earliest_time"] == "-7d" and search["search"] == "search index=security"
    good = [i.value for i in items if i.ok]
    bad = [i for i in items if not i.ok]
    assert good == events                                                   # identical, in order
    assert len(bad) == 2
    assert "not a WIA event: sourcetype 'syslog'" in str(bad[0].error) and bad[0].raw.startswith(b"Jan 1")
    assert "not json" in bad[1].raw.decode() and bad[1].where.startswith("splunk-search:127.0.0.1")
    assert ("INFO", "contract server: export search") in source.messages


def test_contract_default_query_selects_wia_sourcetypes(indexed):
    events, hec_events = indexed
    with SplunkRestContractServer({REST_TOKEN}) as rest:
        for e in hec_events[:10]:
            rest.index(e)
        rest.index({"event": {"x": 1}, "sourcetype": "_json"})
        source = SplunkSearchSource(f"http://127.0.0.1:{rest.port}", token=REST_TOKEN)
        assert list(source.events()) == events[:10]
        assert rest.searches[-1]["search"] == 'search sourcetype="wia:security:*"'


def test_contract_search_results_forward_into_another_sink(indexed, tmp_path):
    events, hec_events = indexed
    with SplunkRestContractServer({REST_TOKEN}) as rest:
        for e in hec_events:
            rest.index(e)
        rest.index({"event": "plain text", "sourcetype": "access_combined"})
        source = SplunkSearchSource(f"http://127.0.0.1:{rest.port}", token=REST_TOKEN)
        with SqliteSink(str(tmp_path / "store.db")) as store, DeadLetterFile(str(tmp_path / "dl.ndjson")) as dl:
            summary = Forwarder(store, dl).run(source.items("search index=*"))
    assert summary.delivered == 50 and summary.unparseable == 1
    [record] = [json.loads(line) for line in (tmp_path / "dl.ndjson").read_text().splitlines()]
    assert "sourcetype 'access_combined'" in record["reason"] and record["raw"] == "plain text"


def test_contract_old_splunk_uses_the_v1_export_path(indexed):
    _, hec_events = indexed
    with SplunkRestContractServer({REST_TOKEN}, version="8.2.12") as rest:
        rest.index(hec_events[0])
        source = SplunkSearchSource(f"http://127.0.0.1:{rest.port}", token=REST_TOKEN)
        assert len(list(source.events())) == 1
        assert rest.requests[-1] == ("POST", "/services/search/jobs/export")


def test_contract_wrong_token_is_a_clear_error_without_the_token():
    with SplunkRestContractServer({REST_TOKEN}) as rest:
        source = SplunkSearchSource(f"http://127.0.0.1:{rest.port}", token="wrong-token-value")
        with pytest.raises(Exception) as err:
            list(source.items())
    assert "401" in str(err.value) and "wrong-token-value" not in str(err.value)
    assert "wrong-token-value" not in repr(source)


def test_contract_bad_search_is_a_delivery_error():
    with SplunkRestContractServer({REST_TOKEN}) as rest:
        source = SplunkSearchSource(f"http://127.0.0.1:{rest.port}", token=REST_TOKEN)
        source.service                                                            # connect first
        with pytest.raises(DeliveryError) as err:
            list(source.items("| | broken"))
    assert err.value.status == 400 and "Splunk search failed" in str(err.value)


def test_contract_an_ipv6_url_reaches_splunkd(monkeypatch):
    """splunk+http://[::1]:PORT was refused with 'url: expected https://host[:8089]': from_url rebuilt the URL
    from the bare address (http://::1:PORT). splunk-sdk brackets an IPv6 host itself."""
    monkeypatch.setenv("WIA_TEST_REST_TOKEN", REST_TOKEN)
    events = event_dicts(2, seed=22)
    with SplunkRestContractServer({REST_TOKEN}, host="::1") as rest:
        for e in events:
            rest.index({"event": json.dumps(e), "sourcetype": f"wia:security:{e['type']}"})
        source = SplunkSearchSource.from_url(f"splunk+http://[::1]:{rest.port}?token_env=WIA_TEST_REST_TOKEN")
        assert source.name == f"splunk-search:[::1]:{rest.port}"
        assert list(source.events(earliest=None, latest=None)) == events
