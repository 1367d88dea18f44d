"""`wia-security pull splunk+http://...` against the Splunk REST contract server with the real splunk-sdk."""
from __future__ import annotations

import json

from servers.splunk_rest_contract import SplunkRestContractServer
from strategies import event_dicts
from wia_security import jsonio
from wia_security.cli import main

TOKEN = "eyJraWQiOiJzcGx1bmsuc2VjcmV0IiwiYWxnIjoiSFM1MTIifQ.pull"


def test_contract_pull_from_a_splunk_search(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WIA_SPLUNK_TOKEN", TOKEN)
    events = event_dicts(12, seed=63)
    with SplunkRestContractServer({TOKEN}) as rest:
        for e in events:
            rest.index({"event": jsonio.dumps(e), "sourcetype": f"wia:security:{e['type']}", "index": "security"})
        rest.index({"event": "Jan 1 00:00:00 fw1 kernel: DROP", "sourcetype": "wia:security:alert", "index": "security"})
        code = main(["pull", f"splunk+http://127.0.0.1:{rest.port}?token_env=WIA_SPLUNK_TOKEN",
                     "--to", f"sqlite:///{tmp_path}/s.db", "--dead-letter", str(tmp_path / "dl.ndjson"),
                     "--earliest=-7d", "--summary", "json"])
    out = capsys.readouterr().out
    summary = json.loads(out)
    assert code == 1 and summary["delivered"] == 12 and summary["unparseable"] == 1
    assert TOKEN not in out
    [dead] = [json.loads(x) for x in (tmp_path / "dl.ndjson").read_text().splitlines()]
    assert dead["raw"].startswith("Jan 1")
