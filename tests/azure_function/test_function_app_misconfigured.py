"""The Event Hub function when its destination cannot be opened (a misconfigured app setting). The trigger's
retry policy re-runs the batch, and after its last retry the Functions host moves the checkpoint past the
batch: the function must then leave every event on record in the dead-letter blob, as it does for a
destination that keeps failing, never let the batch go with only an exception in the log."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("azure.functions", reason="the azure extra is not installed")

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: E402,F401  (fixtures)
from test_function_app import DCR, Context, Out, app, fresh, hub_event  # noqa: E402,F401  (fixtures)

from wia_security.errors import ConfigError  # noqa: E402


@pytest.mark.parametrize("setting, value, why", [
    ("WIA_SENTINEL_DCR_ID", "wia-dcr", "the rule id is the DCR's immutable id"),     # the DCR's name, not its id
    ("WIA_SENTINEL_ENDPOINT", "", "set WIA_SENTINEL_ENDPOINT and WIA_SENTINEL_DCR_ID")])
def test_a_misconfigured_destination_is_retried_then_every_event_dead_lettered(app, sentinel, samples, monkeypatch,
                                                                               setting, value, why):
    monkeypatch.setenv(setting, value)
    fn = app.eventhub_to_sentinel.build().get_user_function()
    events = [fresh(samples["alert-sample"]), fresh(samples["network-event-sample"])]
    bodies = [json.dumps(e).encode() for e in events]
    first = Out()
    with pytest.raises(ConfigError):                  # retried: an app setting may be corrected meanwhile
        fn(events=[hub_event(b, n) for n, b in enumerate(bodies, 1)], deadletter=first, context=Context(0, 5))
    assert first.value is None
    out = Out()
    fn(events=[hub_event(b, n) for n, b in enumerate(bodies, 1)], deadletter=out, context=Context(5, 5))
    dead = out.records()
    assert [d["where"] for d in dead] == ["eventhub:p0:1", "eventhub:p0:2"]
    assert [d["raw"] for d in dead] == [b.decode() for b in bodies]
    assert all(d["reason"].startswith("gave up after 6 attempt(s): the destination could not be opened: ")
               for d in dead), dead[0]["reason"]
    assert all(why in d["reason"] for d in dead)
    assert not sentinel.state.rows


def test_a_setting_corrected_between_retries_is_taken_by_the_same_worker(app, sentinel, samples, monkeypatch):
    """The worker kept the parsed settings before opening the destination: once an open had failed, every later
    invocation of that worker raised KeyError 'sink', the corrected setting was never tried, and each batch
    went through its retries for nothing until the worker was restarted."""
    fn = app.eventhub_to_sentinel.build().get_user_function()
    event = fresh(samples["alert-sample"])
    monkeypatch.setenv("WIA_SENTINEL_DCR_ID", "wia-dcr")
    with pytest.raises(ConfigError):
        fn(events=[hub_event(json.dumps(event).encode(), 1)], deadletter=Out(), context=Context(0, 5))
    monkeypatch.setenv("WIA_SENTINEL_DCR_ID", DCR)
    out = Out()
    fn(events=[hub_event(json.dumps(event).encode(), 1)], deadletter=out, context=Context(1, 5))
    assert [r["EventId"] for r in sentinel.state.all_rows()] == [event["id"]] and out.value is None


@pytest.mark.parametrize("document", ["[destinations.x\nurl = 1", '{"destinations": '])
def test_an_unreadable_wia_config_is_a_configuration_error(app, sentinel, samples, monkeypatch, caplog, document):
    """WIA_CONFIG that is not TOML (or JSON) raised tomllib's (json's) own error: the HTTP function did not answer
    its 'misconfigured' 500 (the host's bare 500 instead) and no line said the setting to look at."""
    import azure.functions as func
    monkeypatch.setenv("WIA_CONFIG", document)
    fn = app.http_to_sentinel.build().get_user_function()
    body = json.dumps(fresh(samples["alert-sample"])).encode()
    response = fn(req=func.HttpRequest(method="POST", url="/api/events", body=body), deadletter=Out())
    assert response.status_code == 500
    assert json.loads(response.get_body()) == {"error": "the function is misconfigured; see its logs"}
    assert "WIA_CONFIG" in caplog.text and "is not TOML or JSON" in caplog.text
