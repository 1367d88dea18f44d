"""Splunk search source (splunk-sdk) against a misbehaving splunkd: the REST contract server behind
tests/servers/fault_proxy.py. Bad lines of the export stream become error Items naming the line and
why (dead-lettered by the Forwarder, never skipped); a connection or stream that fails is one
DeliveryError saying which step and how far it got, never a bare traceback, never the token."""
from __future__ import annotations

import json

import pytest

from servers.fault_proxy import HTML_502, HTML_LOGIN, Fault, FaultProxy  # noqa: E402
from servers.splunk_rest_contract import SplunkRestContractServer  # noqa: E402
from strategies import event_dicts  # noqa: E402

from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.splunk.search import SplunkSearchSource
from wia_security.connectors.sqlite import SqliteSink
from wia_security.errors import DeliveryError
from wia_security.pipeline import Forwarder

TOKEN = "eyJraWQiOiJzcGx1bmsuc2VjcmV0IiwiYWxnIjoiSFM1MTIifQ.misbehaving"
EXPORT = "/services/search/v2/jobs/export"
INFO = "/services/server/info"
JSON = {"Content-Type": "application/json; charset=UTF-8"}


@pytest.fixture
def proxy():
    with SplunkRestContractServer({TOKEN}) as rest, FaultProxy(f"http://127.0.0.1:{rest.port}") as proxy:
        proxy.rest = rest
        yield proxy


def source(proxy, **options):
    return SplunkSearchSource(f"http://127.0.0.1:{proxy.port}", token=TOKEN, **options)


def result(event):
    return {"_raw": json.dumps(event), "sourcetype": f"wia:security:{event['type']}", "index": "security"}


def lines(*docs):
    return ("\n".join(d if isinstance(d, str) else json.dumps(d) for d in docs) + "\n").encode()


def failure(proxy, **options):
    with pytest.raises(DeliveryError) as err:
        list(source(proxy, **options).items("search index=security"))
    assert TOKEN not in str(err.value)
    return err.value


def test_contract_malformed_export_lines_become_error_items_naming_the_line(proxy):
    events = event_dicts(4, seed=5)
    body = lines({"messages": [{"type": "INFO", "text": "first"}, {"type": "WARN", "text": "second"}]},
                 {"preview": False, "offset": 0, "result": result(events[0])},
                 "<html>oops</html>",
                 [1, 2],
                 {"preview": False, "offset": 1, "result": "not an object"},
                 {"preview": False, "results": [result(events[1]), 7, result(events[2])]},
                 {"preview": True, "offset": 9, "result": result(events[3])},        # superseded preview
                 {"preview": False, "offset": 2},
                 {"preview": False, "offset": 3, "lastrow": True, "result": result(events[3])})
    proxy.add(Fault("reply", status=200, body=body, headers=JSON, path=EXPORT))
    src = source(proxy)
    items = list(src.items("search index=security"))
    assert [i.value for i in items if i.ok] == events
    bad = [str(i.error) for i in items if not i.ok]
    assert len(bad) == 5 and len(items) == 9
    assert "export line 3: not JSON" in bad[0] and "export line 4: a JSON list, not an object" in bad[1]
    assert "export line 5: /result is a JSON str, not an object" in bad[2]
    assert "export line 6: /results/1 is a JSON int, not an object" in bad[3]
    assert "export line 8: no result, results or messages member" in bad[4]
    assert [i.line for i in items] == list(range(1, 10))                  # every record numbered, in order
    assert ("INFO", "first") in src.messages and ("WARN", "second") in src.messages   # both, not only the last


def test_contract_malformed_lines_are_dead_lettered_by_the_forwarder(proxy, tmp_path):
    events = event_dicts(2, seed=6)
    body = lines({"result": result(events[0])}, "{truncated", {"result": result(events[1])})
    proxy.add(Fault("reply", status=200, body=body, headers=JSON, path=EXPORT))
    with SqliteSink(str(tmp_path / "s.db")) as store, DeadLetterFile(str(tmp_path / "dl.ndjson")) as dl:
        summary = Forwarder(store, dl).run(source(proxy).items("search index=security"))
    assert summary.delivered == 2 and summary.unparseable == 1
    [record] = [json.loads(x) for x in (tmp_path / "dl.ndjson").read_text().splitlines()]
    assert "export line 2: not JSON" in record["reason"] and record["raw"] == "{truncated"


def test_contract_stream_cut_mid_body_is_an_error_saying_how_far_it_got(proxy):
    events = event_dicts(3, seed=7)
    body = lines(*({"result": result(e)} for e in events))
    proxy.add(Fault("reply", status=200, body=body, headers=JSON, length=len(body) + 500, path=EXPORT))
    got = []
    with pytest.raises(DeliveryError) as err:
        for item in source(proxy).items("search index=security"):
            got.append(item)
    assert "reading the export stream after" in str(err.value) and err.value.retryable
    assert [i.value for i in got] == events[:len(got)]


@pytest.mark.parametrize("path", [INFO, EXPORT])
def test_contract_proxy_html_502_is_a_retryable_error(proxy, path):
    proxy.add(Fault("reply", status=502, body=HTML_502, headers={"Content-Type": "text/html"}, path=path))
    error = failure(proxy)
    assert "HTTP 502" in str(error) and error.retryable and error.status == 502


def test_contract_html_200_for_server_info_is_a_clear_error(proxy):
    proxy.add(Fault("reply", status=200, body=HTML_LOGIN, headers={"Content-Type": "text/html"}, path=INFO))
    error = failure(proxy)
    assert "connecting" in str(error) and "not splunkd's" in str(error)


def test_contract_html_200_for_export_is_an_error_not_empty_results(proxy):
    proxy.add(Fault("reply", status=200, body=HTML_LOGIN, headers={"Content-Type": "text/html"}, path=EXPORT))
    error = failure(proxy)
    assert "'text/html', not a JSON results stream" in str(error)


@pytest.mark.parametrize("status", [301, 302, 307])
def test_contract_redirect_on_export_is_an_error_not_an_empty_search(proxy, status):
    proxy.add(Fault("reply", status=status, headers={"Location": "https://splunk.example.com/en-US/account/login"},
                    path=EXPORT))
    error = failure(proxy)
    assert f"HTTP {status}" in str(error) and "redirect to https://splunk.example.com/en-US/account/login" in str(error)


@pytest.mark.parametrize("status", [401, 403])
def test_contract_auth_failure_is_not_retryable_and_hides_the_token(proxy, status):
    proxy.add(Fault("reply", status=status, body=b"<html>denied</html>", headers={"Content-Type": "text/html"},
                    path=EXPORT))
    error = failure(proxy)
    assert f"HTTP {status}" in str(error) and not error.retryable


def test_contract_server_that_hangs_is_a_timeout_error(proxy):
    proxy.add(Fault("hang", seconds=2.0, path=EXPORT))
    error = failure(proxy, timeout=0.3)
    assert "timed out" in str(error).lower() and error.retryable


def test_contract_connection_reset_is_a_network_error(proxy):
    proxy.add(Fault("reset", path=INFO))
    error = failure(proxy)
    assert "connecting" in str(error) and error.retryable


PEER_DOWN = {"preview": False, "messages": [{"type": "ERROR", "text": "[idx2] Search results might be incomplete: the "
                                             "search process on the peer ended prematurely."}]}


def peer_failed(status, headers, body):
    """The export as a search head answers when one indexer of two failed mid-search: the results that
    peer held are missing, and an ERROR message says so."""
    kept = [line for line in body.splitlines() if b'"result"' not in line][:1] + \
        [line for line in body.splitlines() if b'"result"' in line][:2]
    return status, headers, b"\n".join(kept + [json.dumps(PEER_DOWN).encode()]) + b"\n"


def test_contract_an_error_message_keeps_the_pull_checkpoint_before_the_window(proxy, tmp_path):
    from crash_checks import stored_ids
    events = event_dicts(5, seed=8)
    now = 1_800_000_000
    for e in events:
        proxy.rest.index({"event": json.dumps(e), "sourcetype": f"wia:security:{e['type']}", "index": "security"},
                         indextime=now - 600)
    proxy.add(Fault("rewrite", rewrite=peer_failed, path=EXPORT))
    checkpoint, db = str(tmp_path / "ck.json"), str(tmp_path / "s.db")
    with SqliteSink(db) as sink, DeadLetterFile(str(tmp_path / "dl.ndjson")) as dead:
        with pytest.raises(DeliveryError) as err:
            source(proxy).pull(sink, dead, checkpoint, start=str(now - 900), lag=0, window=900, now=lambda: now)
    assert "ERROR: [idx2] Search results might be incomplete" in str(err.value) and err.value.retryable
    assert TOKEN not in str(err.value)
    assert json.loads((tmp_path / "ck.json").read_text())["index_time"] == now - 900      # not moved past them
    with SqliteSink(db) as sink, DeadLetterFile(str(tmp_path / "dl.ndjson")) as dead:
        again = source(proxy).pull(sink, dead, checkpoint, lag=0, window=900, now=lambda: now)
    assert again.summary.read == 5 and again.summary.delivered == 5              # the peer is back
    assert stored_ids(tmp_path / "s.db") == {e["id"] for e in events}             # 5 in Splunk, 5 stored
    assert not (tmp_path / "dl.ndjson").exists()


def test_contract_a_fatal_message_fails_the_search_after_its_results(proxy):
    events = event_dicts(2, seed=9)
    body = lines({"preview": False, "offset": 0, "result": result(events[0])},
                 {"preview": False, "messages": [{"type": "WARN", "text": "Search auto-finalized"},
                                                 {"type": "FATAL", "text": "Error in 'search' command: the search was "
                                                                           "cancelled"}]},
                 {"preview": False, "offset": 1, "lastrow": True, "result": result(events[1])})
    proxy.add(Fault("reply", status=200, body=body, headers=JSON, path=EXPORT))
    got = []
    with pytest.raises(DeliveryError) as err:
        for item in source(proxy).items("search index=security"):
            got.append(item.value)
    assert got == events                                     # what came is handed over first
    assert str(err.value).count("FATAL: Error in 'search' command: the search was cancelled") == 1
    assert "WARN" not in str(err.value) and "2 result(s) may be incomplete" in str(err.value)
    assert not err.value.retryable


def test_contract_the_export_stream_is_read_in_blocks_not_a_byte_at_a_time(monkeypatch):
    """splunk-sdk's ResponseReader has no buffer, so readline() read the stream one byte per call: two
    Python calls a byte: 3,000 results in 5.7 s here (520 a second), in blocks 20,000 in 2.8 s. Counted in
    calls, not seconds: 1,000 results (~2 MB) must not take a read call per byte."""
    from splunklib import binding
    calls = []
    read = binding.ResponseReader.read

    def counted(self, size=None):
        calls.append(size)
        return read(self, size)

    monkeypatch.setattr(binding.ResponseReader, "read", counted)
    events = event_dicts(1000, seed=10)
    with SplunkRestContractServer({TOKEN}) as rest:
        for e in events:
            rest.index({"event": json.dumps(e), "sourcetype": f"wia:security:{e['type']}", "index": "security"})
        src = SplunkSearchSource(f"http://127.0.0.1:{rest.port}", token=TOKEN)
        got = [i.value for i in src.items("search index=security", earliest=None, latest=None)]
    assert got == events
    assert len(calls) < 200, len(calls)


def test_contract_lines_longer_than_a_block_crlf_and_no_final_newline_are_read_whole(proxy):
    from wia_security.connectors.splunk.search import EXPORT_READ_BLOCK
    events = event_dicts(3, seed=12)
    events[1]["data"]["description"] = "x" * (3 * EXPORT_READ_BLOCK)        # one line over three blocks
    body = b"\r\n".join(json.dumps({"preview": False, "result": result(e)}).encode() for e in events)  # no final EOL
    proxy.add(Fault("reply", status=200, body=b"\r\n\r\n" + body, headers=JSON, path=EXPORT))
    items = list(source(proxy).items("search index=security"))
    assert [i.value for i in items] == events and [i.line for i in items] == [1, 2, 3]
