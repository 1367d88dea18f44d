"""A bulk answer whose items do not follow the request's actions (osmem-server behind tests/servers/fault_proxy.py's
"rewrite", with both clients). Elasticsearch answers item n for action n (Bulk API docs); the sink read outcomes by
position only, so an answer in another order (a proxy or an "Elasticsearch-compatible" service) put one event's
refusal on another: the refused event counted as delivered (lost) and a stored one dead-lettered. Each item names
its `_id`: when one is not its action's, the answer is not trusted and the batch is retried (indexing by `_id` and
version makes that safe)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from servers.fault_proxy import Fault, FaultProxy
from test_elastic_sink import CLIENTS, deliver, make_sink, unique_events


def refuse_first_and_reverse(status: int, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """The answer of a server that refused the first action, with its items in reverse order."""
    answer = json.loads(body)
    (action, result), = answer["items"][0].items()
    answer["items"][0] = {action: {**result, "status": 400, "error": {
        "type": "mapper_parsing_exception", "reason": "failed to parse field [source.ip] of type [ip]"}}}
    answer["items"].reverse()
    answer["errors"] = True
    return status, headers, json.dumps(answer).encode()


@pytest.mark.parametrize("kind", CLIENTS)
def test_fault_items_in_another_order_than_the_actions_are_not_read_by_position(kind: str, osmem: str) -> None:
    events = unique_events(4, seed=91)
    with FaultProxy(osmem) as proxy:
        proxy.add(Fault("rewrite", path="_bulk", rewrite=refuse_first_and_reverse))
        report = deliver(make_sink(kind, proxy.url), events)
        bulks = [s for s in proxy.seen if "_bulk" in s.path]
    # before: events[3] dead-lettered for events[0]'s refusal, events[0] counted delivered
    assert [r.event["id"] for r in report.failed] == [], [r.reason for r in report.failed]
    assert len(bulks) == 2                     # the answer was not trusted: the batch was sent again
    assert (report.delivered, report.duplicates) == (0, 4)      # the first request had indexed all four


@pytest.mark.parametrize("kind", CLIENTS)
def test_fault_an_answer_out_of_order_every_time_is_dead_lettered_retryable_naming_it(kind: str, osmem: str) -> None:
    events = unique_events(3, seed=92)
    with FaultProxy(osmem) as proxy:
        proxy.add(*[Fault("rewrite", path="_bulk", rewrite=refuse_first_and_reverse) for _ in range(10)])
        report = deliver(make_sink(kind, proxy.url), events)
    assert report.delivered == 0 and len(report.failed) == 3
    for rejected in report.failed:
        assert rejected.retryable and "not the _id of action #0" in rejected.reason, rejected.reason
