"""SCC sink: two versions of one event in one batch reach SCC in the order they were sent. A batch's findings
are written on several threads, so an update sent right after its event (an alert resolved a moment after it
was raised: the same event id, a newer version) was written at the same time as it, and the older version
could land last: SCC kept the stale finding (ACTIVE, the old severity) and both were reported delivered.
The real google-cloud-securitycenter client against the gRPC contract server (tests/servers/scc_grpc.py);
the older version's CreateFinding is held back a little, as a slower connection or server would."""
from __future__ import annotations

import copy
import json
import time
import uuid

import pytest

pytest.importorskip("google.cloud.securitycenter_v2", reason="the gcp extra is not installed")

from servers.scc_grpc import scc, scc_server  # noqa: E402,F401
from test_scc_grpc import make_sink  # noqa: E402


def hold_back(version_status: str, seconds: float):
    """An override for CreateFinding: the call for the version with data.status `version_status` waits."""
    def answer(request, context, impl):
        event = json.loads(request.finding.source_properties["wia_event"])
        if event["data"].get("status") == version_status:
            time.sleep(seconds)
        return impl(request)
    return answer


def test_contract_the_newer_version_in_the_same_batch_is_the_one_scc_keeps(scc, samples):
    first = copy.deepcopy(samples["alert-sample"])
    first["id"] = str(uuid.uuid4())
    first["data"]["status"] = "new"
    second = copy.deepcopy(first)
    second["data"]["status"] = "resolved"
    second["severity"] = 3
    others = [dict(copy.deepcopy(samples["network-event-sample"]), id=str(uuid.uuid4())) for _ in range(3)]
    scc.state.override_next("CreateFinding", hold_back("new", 0.3), times=10)
    with make_sink(scc, scc.create_source()) as sink:
        report = sink.send([first, *others, second])
        report.merge(sink.flush())
    assert report.delivered == 5 and not report.failed, [r.reason for r in report.failed]
    [finding] = [f for f in scc.state.findings.values() if f.source_properties["wia_event_id"] == first["id"]]
    assert json.loads(finding.source_properties["wia_event"])["data"]["status"] == "resolved"
    assert finding.state.name == "INACTIVE" and finding.severity.name == "MEDIUM"
    assert len(scc.state.findings) == 4


def test_contract_an_older_version_retried_is_not_written_over_the_newer_one(scc, samples):
    """The older version's CreateFinding fails UNAVAILABLE once. The newer version was written at once and the
    older one retried after it (ALREADY_EXISTS, then an update): SCC kept the stale version. Now a version
    waits for the retry of an earlier one of the same event, and both are written again in order."""
    first = copy.deepcopy(samples["alert-sample"])
    first["id"] = str(uuid.uuid4())
    first["data"]["status"] = "new"
    second = copy.deepcopy(first)
    second["data"]["status"] = "resolved"
    failed_once: list[str] = []

    def unavailable_once(request, context, impl):
        event = json.loads(request.finding.source_properties["wia_event"])
        if event["data"].get("status") == "new" and not failed_once:
            failed_once.append(event["id"])
            import grpc
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        return impl(request)

    scc.state.override_next("CreateFinding", unavailable_once, times=10)
    with make_sink(scc, scc.create_source()) as sink:
        report = sink.send([first, second])
        report.merge(sink.flush())
    assert report.delivered == 2 and not report.failed and failed_once
    [finding] = scc.state.findings.values()
    assert json.loads(finding.source_properties["wia_event"])["data"]["status"] == "resolved"
    assert finding.state.name == "INACTIVE"
