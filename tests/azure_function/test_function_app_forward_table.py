"""A WIA_CONFIG copied from a CLI config keeps its [forward] table (dead_letter, lenient, batch_size), which the
function does not read: its dead letters go to the blob and it validates strictly. Before, the table was ignored
without a word, so `lenient = true` there left events with optional nulls dead-lettered while the operator
believed them accepted. Now a WARNING names the keys (docs/cloud/azure.md). Real clients, the Sentinel TLS
contract server."""
from __future__ import annotations

import json

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: F401  (fixtures)
from test_function_app import DCR, Context, Out, app, fresh, hub_event  # noqa: F401  (fixture)


def _config(sentinel, forward: str) -> str:
    host = sentinel.endpoint.split("://", 1)[1].rstrip("/")
    return f'{forward}[destinations.sentinel]\nurl = "sentinel://{host}/{DCR}"\n'


def test_a_forward_table_in_the_config_is_warned_about(app, sentinel, samples, monkeypatch, caplog):
    monkeypatch.setenv("WIA_CONFIG", _config(sentinel, '[forward]\nlenient = true\nbatch_size = 10\n'))
    fn = app.eventhub_to_sentinel.build().get_user_function()
    event = fresh(samples["alert-sample"])
    fn(events=[hub_event(json.dumps(event).encode(), 1)], deadletter=Out(), context=Context())
    warned = [r for r in caplog.records if "[forward]" in r.getMessage()]
    assert [r.getMessage() for r in warned] == [
        "WIA_CONFIG: [forward] batch_size, lenient is not read by this function: dead letters go to the blob "
        "container wia-dead-letter and events are validated strictly (docs/cloud/azure.md)"]
    assert warned[0].levelname == "WARNING"
    assert [r["EventId"] for r in sentinel.state.rows[(DCR, "Custom-WIASecurity")]] == [event["id"]]


def test_a_config_without_one_is_not_warned_about(app, sentinel, samples, monkeypatch, caplog):
    monkeypatch.setenv("WIA_CONFIG", _config(sentinel, ""))
    fn = app.eventhub_to_sentinel.build().get_user_function()
    fn(events=[hub_event(json.dumps(fresh(samples["alert-sample"])).encode(), 1)], deadletter=Out(), context=Context())
    assert not [r for r in caplog.records if "[forward]" in r.getMessage()]
