"""SCC sink: a finding this sink wrote lately is updated at once when its event is sent again (one write, not a
CreateFinding refused ALREADY_EXISTS and then UpdateFinding), within a bounded memory of KNOWN_FINDINGS ids.
The real client against the gRPC contract server (tests/servers/scc_grpc.py)."""
from __future__ import annotations

import copy
import uuid

import pytest

pytest.importorskip("google.cloud.securitycenter_v2", reason="the gcp extra is not installed")

import grpc  # noqa: E402
from servers.scc_grpc import scc, scc_server  # noqa: E402,F401
from test_scc_grpc import make_sink  # noqa: E402

from wia_security.connectors.gcp import scc as scc_mod  # noqa: E402


def alerts(samples, n):
    return [dict(copy.deepcopy(samples["alert-sample"]), id=str(uuid.uuid4())) for _ in range(n)]


def send(sink, events):
    report = sink.send(events)
    report.merge(sink.flush())
    assert report.delivered == len(events) and not report.failed, [r.reason for r in report.failed]


def test_contract_only_the_latest_ids_are_remembered(scc, samples, monkeypatch):
    monkeypatch.setattr(scc_mod, "KNOWN_FINDINGS", 2)
    first, second, third = alerts(samples, 3)
    with make_sink(scc, scc.create_source()) as sink:
        for event in (first, second, third):    # one batch each: a batch's findings are written in parallel
            send(sink, [event])
        del scc.state.calls[:]
        send(sink, [third])                     # remembered: updated at once
        assert scc.state.calls == ["UpdateFinding"]
        del scc.state.calls[:]
        send(sink, [first])                     # forgotten (the oldest of three): created, then updated
        assert scc.state.calls == ["CreateFinding", "UpdateFinding"]


def test_contract_a_remembered_finding_answered_not_found_is_created(scc, samples):
    [alert] = alerts(samples, 1)
    with make_sink(scc, scc.create_source()) as sink:
        send(sink, [alert])
        scc.state.findings.clear()              # gone behind the sink's back (SCC itself has no DeleteFinding)
        scc.state.override_next("UpdateFinding",
                                lambda request, context, impl: context.abort(grpc.StatusCode.NOT_FOUND, "no finding"))
        del scc.state.calls[:]
        send(sink, [alert])
    assert scc.state.calls == ["UpdateFinding", "CreateFinding"] and len(scc.state.findings) == 1
