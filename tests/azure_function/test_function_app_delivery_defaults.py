"""A WIA_CONFIG whose [delivery] table gives only some keys keeps the function's own delivery defaults for the rest
(FUNCTION_DELIVERY: 3 tries within 30 s, no flush timer), which the time budget's worst case counts on. Before, any
[delivery] table replaced them all: the policy's defaults (6 tries within 120 s, a 5 s flush timer) applied, a chunk
could take 180 s, and the host killed an invocation at its 300 s functionTimeout (on the last retry the checkpoint
then moved past the batch with nothing on record). Real clients, the Sentinel TLS contract server."""
from __future__ import annotations

import json

import pytest

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: F401  (fixtures)
from test_function_app import DCR, Context, Out, app, fresh, hub_event  # noqa: F401  (fixture)

FAULTS = 100


def test_a_partial_delivery_table_keeps_the_functions_retry_bounds(app, sentinel, samples, monkeypatch):
    host = sentinel.endpoint.split("://", 1)[1].rstrip("/")
    monkeypatch.setenv("WIA_CONFIG", f'[destinations.sentinel]\nurl = "sentinel://{host}/{DCR}"\n'
                                     '[delivery]\nmax_events = 50\n')
    fn = app.eventhub_to_sentinel.build().get_user_function()
    sentinel.state.fail_next(503, times=FAULTS, retry_after="0")
    with pytest.raises(RuntimeError, match="must be retried"):
        fn(events=[hub_event(json.dumps(fresh(samples["alert-sample"])).encode(), 1)], deadletter=Out(),
           context=Context(0, 5))
    assert FAULTS - len(sentinel.state.faults) == app.FUNCTION_DELIVERY["max_attempts"]    # before: 6


@pytest.mark.parametrize("value", ["3m", "-5", "nan"])
def test_an_unreadable_time_budget_is_warned_about_and_the_default_used(app, sentinel, samples, monkeypatch, caplog,
                                                                        value):
    """Before: silently replaced by the default, so an operator's WIA_TIME_BUDGET=3m was never known to be ignored."""
    monkeypatch.setenv("WIA_TIME_BUDGET", value)
    fn = app.eventhub_to_sentinel.build().get_user_function()
    event = fresh(samples["alert-sample"])
    fn(events=[hub_event(json.dumps(event).encode(), 1)], deadletter=Out(), context=Context())
    warned = [r.getMessage() for r in caplog.records if "WIA_TIME_BUDGET" in r.getMessage()]
    assert warned == [f"WIA_TIME_BUDGET={value!r} is not a number of seconds >= 0; using the default 180 s"]
    assert [r["EventId"] for r in sentinel.state.rows[(DCR, "Custom-WIASecurity")]] == [event["id"]]
