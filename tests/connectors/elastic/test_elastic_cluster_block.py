"""A cluster-wide write block answered for the whole bulk request, through the fault proxy in front of osmem-server,
with both clients. Elasticsearch refuses a bulk request as a whole while a global block holds
(cluster.blocks.read_only, set for maintenance: 403 cluster_block_exception, "FORBIDDEN/6/cluster read-only (api)"),
and so the sink's template install too; an index's block (index.blocks.write, the flood-stage watermark's
read_only_allow_delete) comes per item. The per-item block was retried as "try later", the same block for the whole
request failed the batch at once: every event dead-lettered, not retryable, for a block lifted minutes later."""
from __future__ import annotations

import pytest

from servers.osmem import Fault, FaultProxy
from test_elastic_sink import CLIENTS, account, deliver, make_sink, unique_events


def refusal(kind: str, reason: str) -> Fault:
    error = {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}
    return Fault("status", 403, body={"error": error, "status": 403})


BLOCK = ("cluster_block_exception", "blocked by: [FORBIDDEN/6/cluster read-only (api)];")


@pytest.mark.parametrize("kind", CLIENTS)
def test_fault_a_cluster_wide_write_block_is_retried_as_an_index_block_is(kind: str, fault_proxy: FaultProxy) -> None:
    fault_proxy.queue(refusal(*BLOCK), refusal(*BLOCK))
    events = unique_events(20, seed=81)
    report = deliver(make_sink(kind, fault_proxy.url), events)
    assert (report.delivered, report.duplicates, [r.reason for r in report.failed]) == (20, 0, [])
    account(report, events, fault_proxy.url)


@pytest.mark.parametrize("kind", CLIENTS)
def test_fault_a_403_that_is_no_block_still_fails_at_once(kind: str, fault_proxy: FaultProxy) -> None:
    fault_proxy.queue(refusal("security_exception", "action [indices:data/write/bulk] is unauthorized for user [wia]"))
    events = unique_events(20, seed=82)
    report = deliver(make_sink(kind, fault_proxy.url), events)
    assert report.delivered == 0 and len(report.failed) == 20
    assert all(not r.retryable and "HTTP 403: security_exception" in r.reason for r in report.failed)
    assert sum(1 for method, path, _ in fault_proxy.requests if "_bulk" in path) == 1
