"""`intel pull otx --since T` (OtxSource.poll(modified_since=T)): T becomes the cursor when no pulse is newer. A T far
ahead of the clock (2062 typed for 2026) was saved as the cursor, and every later pull asked for pulses modified after
it and read nothing, exit 0, until that year; a T that is not a time was saved too (when OTX answered it), and no later
run could load the state. Both are now refused before any request, the state untouched. Against the OTX contract
server."""
from __future__ import annotations

import json

import pytest

from otx_contract import OtxServer
from wia_security.cli import main
from wia_security.connectors.intel.otx import OtxSource
from wia_security.errors import ConfigError

KEY = "otx-test-key"
PULSE = {"id": "p1", "name": "Pulse 1", "modified": "2026-02-01T00:00:00",
         "indicators": [{"indicator": "evil.example.net", "type": "domain"}]}


@pytest.mark.parametrize("since, why", [("2062-02-01T00:00:00", "in the future"),
                                        ("yesterday", "not an ISO 8601 time"), ("", "not an ISO 8601 time")])
def test_a_since_in_the_future_or_not_a_time_is_refused_before_any_request(tmp_path, since, why):
    state = tmp_path / "otx.json"
    with OtxServer(api_key=KEY) as otx:
        otx.pulses = [PULSE]
        source = OtxSource(KEY, base_url=otx.url, state_path=str(state))
        with pytest.raises(ConfigError, match=why):
            list(source.poll(since))
        source.commit()
        assert otx.calls() == []
    assert not state.exists()


def test_cli_since_in_the_future_exits_2_and_keeps_the_state(tmp_path, monkeypatch, capsys):
    state, db = tmp_path / "otx.json", tmp_path / "intel.db"
    monkeypatch.setenv("OTX_API_KEY", KEY)
    with OtxServer(api_key=KEY) as otx:
        otx.pulses = [PULSE]
        args = ["intel", "pull", "otx", "--url", otx.url, "--state", str(state), "--to", f"sqlite:///{db}"]
        assert main(args) == 0
        saved = state.read_text()
        assert main([*args, "--since", "2062-02-01T00:00:00"]) == 2
        assert "in the future" in capsys.readouterr().err
        otx.pulses.append({**PULSE, "id": "p2", "modified": "2026-02-02T00:00:00"})
        assert main(args) == 0                                  # the next pull still reads what is new
    assert state.read_text() != saved and json.loads(state.read_text())["modified_since"] == "2026-02-02T00:00:00"


def test_a_since_in_the_past_is_taken(tmp_path):
    with OtxServer(api_key=KEY) as otx:
        otx.pulses = [PULSE]
        source = OtxSource(KEY, base_url=otx.url)
        assert len(list(source.poll("2026-01-01T00:00:00Z"))) == 1
        assert otx.calls()[0].query["modified_since"] == ["2026-01-01T00:00:00Z"]
