"""The HTTP function's time budget (HTTP_TIME_BUDGET, 120 s of the HTTP front end's 230 s): a request starts no new
delivery after it, and answers 503 + Retry-After naming the values not started, instead of running past the front
end's limit (the caller then got its error and could not tell which values were delivered). Real
azure-monitor-ingestion / azure-identity clients, the Sentinel TLS contract server; the first chunk refused (503,
Retry-After 1 s) past a 0.5 s budget."""
from __future__ import annotations

import json

import azure.functions as func

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: F401  (fixtures)
from test_function_app import Out, app, fresh  # noqa: F401  (fixture)


def test_values_not_started_within_the_budget_are_answered_503_by_index(app, sentinel, samples, monkeypatch):
    monkeypatch.setattr(app, "HTTP_TIME_BUDGET", 0.5)
    http = app.http_to_sentinel.build().get_user_function()
    events = [fresh(samples["network-event-sample"]) for _ in range(app.CHUNK_EVENTS + 5)]
    sentinel.state.fail_next(503, times=3, retry_after="1")          # the first chunk's 3 tries outlast the budget
    answer = http(req=func.HttpRequest("POST", "/api/events", body=json.dumps(events).encode()), deadletter=Out())
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    body = json.loads(answer.get_body())
    assert body["retry"] == list(range(len(events)))   # before: only the first chunk's; the last 5 were sent late
    assert sentinel.state.all_rows() == []
