"""Splunk tokens that no HTTP header can carry, against the HEC and Splunk REST contract servers. A token file
saved by Notepad (a UTF-8 byte-order mark) or an environment variable with a stray line break made every
request fail: the HEC sink dead-lettered every event as 'unexpected error: UnicodeEncodeError' (or retried
requests' InvalidHeader 6 times as an I/O error), and the search source said 'the reply is not splunkd's ...;
is the URL the management port (8089)?'. Now the byte-order mark of a token file is dropped, and a token
that still cannot be a header is refused when the connector is made, naming the option, never the value."""
from __future__ import annotations

import pytest

from servers.hec_contract import HecContractServer  # noqa: E402
from servers.splunk_rest_contract import SplunkRestContractServer  # noqa: E402
from strategies import event_dicts  # noqa: E402

from wia_security.connectors.splunk.hec import HecSink
from wia_security.connectors.splunk.search import SplunkSearchSource
from wia_security.errors import ConfigError

TOKEN = "8c4a2f1e-77d3-4b6a-9e21-3f5d0c9b1a7e"
BAD = {"line break": f"{TOKEN}\nsecond-line", "leading blank": f" {TOKEN}", "trailing tab": f"{TOKEN}\t",
       "byte-order mark": f"\ufeff{TOKEN}", "NUL": f"{TOKEN}\x00", "not Latin-1": f"{TOKEN}\u2013"}


def test_contract_a_token_file_saved_with_a_byte_order_mark_delivers(tmp_path):
    path = tmp_path / "hec.token"
    path.write_bytes(b"\xef\xbb\xbf" + TOKEN.encode() + b"\r\n")          # Notepad's UTF-8, CRLF
    events = event_dicts(3, seed=14)
    with HecContractServer({TOKEN: {}}) as server:
        with HecSink.from_url(f"splunk+{server.url}?token_file={path}&max_wait=0") as sink:
            report = sink.send(events).merge(sink.flush())
        assert report.delivered == 3 and not report.failed
        assert [e["event"]["id"] for e in server.events] == [e["id"] for e in events]


@pytest.mark.parametrize("shape", sorted(BAD))
def test_contract_a_token_no_header_can_carry_is_refused_before_any_request(shape):
    with HecContractServer({TOKEN: {}}) as hec, SplunkRestContractServer({TOKEN}) as rest:
        with pytest.raises(ConfigError) as err:
            HecSink(hec.url, token=BAD[shape])
        with pytest.raises(ConfigError) as searched:
            SplunkSearchSource(f"http://127.0.0.1:{rest.port}", token=BAD[shape])
        assert hec.state.requests == 0 and rest.requests == []
    for error in (err.value, searched.value):
        assert error.key == "token" and "an HTTP header cannot carry it" in str(error)
        assert TOKEN[:8] not in str(error) and TOKEN[:8] not in repr(error)


def test_contract_a_token_from_the_environment_with_a_line_break_is_refused_by_url(monkeypatch):
    monkeypatch.setenv("WIA_TEST_SPLUNK_TOKEN", f"{TOKEN}\nsecond-line")
    with HecContractServer({TOKEN: {}}) as hec, SplunkRestContractServer({TOKEN}) as rest:
        with pytest.raises(ConfigError, match="token: the HEC token has a line break"):
            HecSink.from_url(f"splunk+{hec.url}?token_env=WIA_TEST_SPLUNK_TOKEN")
        with pytest.raises(ConfigError, match="token: the Splunk search token has a line break"):
            SplunkSearchSource.from_url(f"splunk+http://127.0.0.1:{rest.port}?token_env=WIA_TEST_SPLUNK_TOKEN")
        assert hec.state.requests == 0 and rest.requests == []
