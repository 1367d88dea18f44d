"""SCC sink and ListFindings source against a misbehaving gRPC contract server (tests/servers/scc_grpc.py,
`override_next`): answers that are not the response message, a server that hangs past the RPC deadline,
auth and unknown errors, errors for some findings of a batch, and stored findings that are not readable
WIA events. For N findings sent: delivered + dead-lettered == N with the reason; a finding read back
that cannot be read is an error Item naming it, never a traceback."""
from __future__ import annotations

import json
import threading
import time

import pytest

pytest.importorskip("google.cloud.securitycenter_v2", reason="the gcp extra is not installed")

import grpc  # noqa: E402
from servers.scc_grpc import scc, scc_server  # noqa: E402,F401
from strategies import event_dicts  # noqa: E402

from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.dead_letter import DeadLetterFile  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402
from wia_security.connectors.gcp.scc import finding_id_for  # noqa: E402
from wia_security.connectors.sqlite import SqliteSink  # noqa: E402
from wia_security.errors import ConfigError, DeliveryError, ParseError  # noqa: E402
from wia_security.pipeline import Forwarder  # noqa: E402

POLICY = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.005, max_attempts=3)


def make_sink(server, source, **options):
    url = f"scc://{source}?endpoint={server.endpoint}&ca_file={server.ca_file}&auth=anonymous"
    sleeps: list[float] = []
    sink = open_sink(url, delivery=options.pop("delivery", POLICY), **options)
    sink._sleep = sleeps.append
    return sink, sleeps


def run(server, n=3, **options):
    source = server.create_source()
    events = event_dicts(n, seed=51)
    sink, sleeps = make_sink(server, source, **options)
    report = sink.send(events)
    report.merge(sink.flush())
    sink.close()
    assert report.delivered + report.duplicates + len(report.failed) == n, report
    assert all(r.reason and r.event in events for r in report.failed)
    return report, sleeps, events


def stored(server) -> set[str]:
    return {f.source_properties["wia_event_id"] for f in server.state.findings.values()}


def test_contract_reply_that_is_not_a_finding_message_is_retried(scc):
    scc.state.override_next("CreateFinding", lambda req, ctx, impl: impl(req) and b"\xff\xff garbage")
    report, sleeps, events = run(scc)
    assert report.delivered == 3 and len(sleeps) == 1 and stored(scc) == {e["id"] for e in events}


def test_contract_hang_past_the_rpc_deadline_is_retried(scc):
    def hang(req, ctx, impl):
        time.sleep(1.0)
        return impl(req)
    scc.state.override_next("CreateFinding", hang)
    started = time.monotonic()
    report, sleeps, events = run(scc, timeout=0.3)
    assert report.delivered == 3 and len(sleeps) == 1 and time.monotonic() - started < 1.0
    assert stored(scc) == {e["id"] for e in events}


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.FAILED_PRECONDITION])
def test_contract_auth_and_precondition_errors_fail_the_finding_once(scc, code):
    # PERMISSION_DENIED is retried while a new role binding propagates: test_scc_permission_propagation_contract.py
    scc.state.fail_next(code, times=1, message="no access")
    report, sleeps, _ = run(scc)
    [failed] = report.failed
    assert f"SCC {code.name}: no access" in failed.reason and not failed.retryable and not sleeps
    assert report.delivered == 2


def test_contract_unknown_status_is_retried(scc):
    scc.state.fail_next(grpc.StatusCode.UNKNOWN, times=1, message="something new")
    report, sleeps, _ = run(scc)
    assert report.delivered == 3 and len(sleeps) == 1


def test_contract_one_finding_failing_outside_grpc_does_not_fail_its_batch_mates(scc, monkeypatch):
    """An exception that is not a gRPC error (here from the client, for one finding) is that finding's
    outcome; the others of the batch keep theirs (they were created)."""
    source = scc.create_source()
    events = event_dicts(3, seed=52)
    sink, _ = make_sink(scc, source)
    real = sink._client.create_finding
    bad_id = finding_id_for(events[1])

    def create_finding(request, **kw):
        if request["finding_id"] == bad_id:
            raise RuntimeError("client-side failure for this finding")
        return real(request=request, **kw)
    monkeypatch.setattr(sink._client, "create_finding", create_finding)
    report = sink.send(events)
    report.merge(sink.flush())
    sink.close()
    [failed] = report.failed
    assert failed.event is events[1] and "RuntimeError: client-side failure" in failed.reason
    assert report.delivered == 2 and stored(scc) == {events[0]["id"], events[2]["id"]}


def test_timeout_option_is_checked():
    with pytest.raises(ConfigError, match="timeout"):
        open_sink("scc://organizations/1/sources/2?auth=anonymous&endpoint=localhost:1&timeout=soon")


# -- ListFindings ------------------------------------------------------------------------------------

def put_finding(server, source, finding_id, **fields):
    from google.cloud import securitycenter_v2 as types
    server.fake.CreateFinding(types.CreateFindingRequest(parent=source, finding_id=finding_id, finding={
        "category": "WIA_ALERT", "state": "INACTIVE", "severity": "HIGH", "event_time": "2025-12-14T09:30:00Z",
        "resource_name": "//cloudresourcemanager.googleapis.com/projects/demo-proj",
        **fields}))


def test_contract_unreadable_stored_findings_are_error_items_naming_the_finding(scc):
    source = scc.create_source()
    good = event_dicts(2, seed=53)
    sink, _ = make_sink(scc, source)
    sink.send(good)
    assert sink.flush().delivered == 2
    put_finding(scc, source, "bad1", source_properties={"wia_event": "{not json"})
    put_finding(scc, source, "bad2", source_properties={"wia_event": "[1, 2]"})
    put_finding(scc, source, "bad3", source_properties={"wia_event": json.dumps({"type": "alert", "data": "x"})})
    items = list(sink.items(page_size=2))
    assert sorted(i.value["id"] for i in items if i.ok and "id" in i.value) == sorted(e["id"] for e in good)
    bad = {i.raw and json.loads(i.raw)["name"].rsplit("/", 1)[-1]: str(i.error) for i in items if not i.ok}
    assert set(bad) == {"bad1", "bad2"}
    assert "/source_properties/wia_event: not JSON" in bad["bad1"] and "findings/bad1" in bad["bad1"]
    assert "a JSON list, not a WIA event object" in bad["bad2"]
    third = next(i for i in items if i.ok and i.value.get("data") == "x")       # read as stored: validation is
    assert third.value["type"] == "alert"                                       # the Forwarder's, never a crash
    assert [i.line for i in items] == list(range(1, 6))
    with pytest.raises(ParseError, match="findings/bad1"):
        list(sink.list_events())
    sink.close()


def test_contract_unreadable_findings_are_dead_lettered_by_the_forwarder(scc, tmp_path):
    source = scc.create_source()
    sink, _ = make_sink(scc, source)
    sink.send(event_dicts(2, seed=54))
    assert sink.flush().delivered == 2
    put_finding(scc, source, "bad1", source_properties={"wia_event": "{not json"})
    with SqliteSink(str(tmp_path / "s.db")) as store, DeadLetterFile(str(tmp_path / "dl.ndjson")) as dl:
        summary = Forwarder(store, dl).run(sink.items())
    sink.close()
    assert summary.delivered == 2 and summary.unparseable == 1
    [record] = [json.loads(x) for x in (tmp_path / "dl.ndjson").read_text().splitlines()]
    assert "findings/bad1" in record["reason"] and "not JSON" in record["reason"]


def test_contract_list_failing_mid_way_says_how_far_it_got(scc):
    source = scc.create_source()
    sink, _ = make_sink(scc, source)
    sink.send(event_dicts(5, seed=55))
    assert sink.flush().delivered == 5
    calls = {"n": 0}
    lock = threading.Lock()

    def second_page_fails(req, ctx, impl):
        with lock:
            calls["n"] += 1
        ctx.abort(grpc.StatusCode.UNAVAILABLE, "backend went away")
    got = []
    with pytest.raises(DeliveryError) as err:
        for item in sink.items(page_size=2):
            if not got:
                scc.state.override_next("ListFindings", second_page_fails)
            got.append(item)
    sink.close()
    assert len(got) == 2 and "ListFindings failed after 2 finding(s): SCC UNAVAILABLE" in str(err.value)
    assert err.value.retryable
