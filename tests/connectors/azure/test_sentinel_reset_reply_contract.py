"""A Logs Ingestion reply cut by a connection reset after part of its body is a network error and is
retried. azure-core raises IncompleteReadError when urllib3 sees an early EOF but a bare HttpResponseError
(no status, no response) for a reset; over TLS, Python 3.11 reports this cut as the EOF and Python 3.13
as the reset, which the sink took for an unexpected error and dead-lettered. The CI step that runs the
connector tests under Python 3.13 (scripts/test-newer-python.sh) is what covers the reset branch."""
from __future__ import annotations

import pytest

pytest.importorskip("azure.monitor.ingestion", reason="the azure extra is not installed")

from servers.fault_proxy import Fault  # noqa: E402
from servers.sentinel_contract import sentinel, sentinel_server  # noqa: E402,F401
from test_sentinel_misbehaving_contract import INGEST, JSON, proxy, rows, run  # noqa: E402,F401


@pytest.mark.parametrize("pause", [0.3, 0.0], ids=["reset-while-reading", "cut-at-once"])
def test_contract_reply_cut_by_a_reset_mid_body_is_retried(proxy, pause):
    cut = Fault("reply", status=200, body=b'{"x', headers=dict(JSON), length=100, seconds=pause, path=INGEST)
    report, sleeps, events = run(proxy, cut)
    assert report.delivered == 3 and not report.failed and len(sleeps) == 1, report
    assert sorted(rows(proxy)) == sorted(e["id"] for e in events)
