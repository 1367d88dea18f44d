"""A WIA_CONFIG copied from a CLI config keeps its [forward] table (dead_letter, lenient, batch_size), which the
function does not read: its dead letters are log entries and it validates strictly. Before, the table was ignored
without a word, so `lenient = true` there left events with optional nulls dead-lettered while the operator
believed them accepted. Now a WARNING names the keys (docs/cloud/gcp.md). Real client, the SCC gRPC server."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("functions_framework", reason="the gcp extra is not installed")

from servers.scc_grpc import scc, scc_server  # noqa: E402,F401  (fixtures)
from test_gcp_main import client, finding_ids, fresh  # noqa: E402


def test_a_forward_table_in_the_config_is_warned_about(scc, monkeypatch, samples, capsys):
    source = scc.create_source()
    monkeypatch.setenv("WIA_CONFIG", f'[forward]\nlenient = true\ndead_letter = "dl.ndjson"\n'
                                     f'[destinations.scc]\nurl = "scc://{source}"\nendpoint = "{scc.endpoint}"\n'
                                     f'ca_file = "{scc.ca_file}"\nauth = "anonymous"\n')
    event = fresh(samples["alert-sample"])
    response = client("http_to_scc", "http").post("/", data=json.dumps(event), headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and finding_ids(scc) == {event["id"]}
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    warned = [e for e in logged if "[forward]" in e["message"]]
    assert [e["message"] for e in warned] == [
        "WIA_CONFIG: [forward] dead_letter, lenient is not read by this function: dead letters are log entries and "
        "events are validated strictly (docs/cloud/gcp.md)"]
    assert warned[0]["severity"] == "WARNING"


def test_a_config_without_one_is_not_warned_about(scc, monkeypatch, samples, capsys):
    source = scc.create_source()
    monkeypatch.setenv("WIA_CONFIG", f'[destinations.scc]\nurl = "scc://{source}"\nendpoint = "{scc.endpoint}"\n'
                                     f'ca_file = "{scc.ca_file}"\nauth = "anonymous"\n')
    event = fresh(samples["alert-sample"])
    response = client("http_to_scc", "http").post("/", data=json.dumps(event), headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert "[forward]" not in capsys.readouterr().out
