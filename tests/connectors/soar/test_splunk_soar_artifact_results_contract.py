"""Splunk SOAR contract tests: the per-artifact results of a container POST.

SOAR creates the container, then its artifacts one by one, and answers one result per artifact in
`artifacts` ({"id"}, {"existing_artifact_id"} or {"failed": true, "message"}); an artifact that fails
leaves the container created (tests/servers/splunk_soar_contract.py, as Splunk's own splunk-soar-sdk
reads that answer). An event whose artifacts were not all stored must be neither counted delivered
nor re-sent into a second container: the missing artifacts are added to the container that exists
(POST /rest/artifact), and when SOAR keeps refusing one the event is dead-lettered naming the
container and SOAR's reason."""
from __future__ import annotations

import copy

from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.splunk_soar import SplunkSoarSink

from .conftest import Sleeps
from splunk_soar_contract import Fault

FAST = DeliveryPolicy(max_wait=0, max_attempts=3, initial_backoff=0.01, max_elapsed=30)
REFUSED = 'insert into artifact: unsupported Unicode escape sequence (\\u0000 cannot be converted to text)'


def _sink(server, **options) -> SplunkSoarSink:
    options.setdefault("token", server.token)
    options.setdefault("delivery", FAST)
    options.setdefault("sleep", Sleeps())
    return SplunkSoarSink(server.url, **options)


def _with_indicators(sample_events) -> dict:
    """A sample event with at least two indicator artifacts besides its event artifact."""
    shape = SplunkSoarSink("http://127.0.0.1:9", token="t")      # never sends: only its mapping is used
    try:
        return copy.deepcopy(next(e for e in sample_events if len(shape.container_for(e)["artifacts"]) >= 3))
    finally:
        shape.close()


def _creates(server) -> int:
    return sum(1 for r in server.calls("/rest/container") if r.method == "POST" and r.path == "/rest/container")


def _stored(server, cid: int) -> list[dict]:
    return [a for a in server.artifacts.values() if a["container"] == cid]


def test_contract_an_artifact_refused_inside_the_container_post_is_added_to_that_container(soar_server, sample_events):
    event = _with_indicators(sample_events)
    soar_server.artifact_failures.append("could not serialize access due to concurrent update")
    with _sink(soar_server, playbook="local/wia_triage") as sink:
        report = sink.send([event])
        report.merge(sink.flush())
        sent = sink.container_for(event)["artifacts"]
    assert (report.delivered, report.duplicates, report.failed) == (1, 0, [])
    (cid,) = soar_server.containers
    stored = _stored(soar_server, cid)
    assert sorted(a["source_data_identifier"] for a in stored) == sorted(a["source_data_identifier"] for a in sent)
    assert soar_server.containers[cid]["artifact_count"] == len(sent)
    assert len(soar_server.playbook_runs) == 1                  # started once, after the evidence is complete
    assert _creates(soar_server) == 1


def test_contract_an_artifact_soar_keeps_refusing_dead_letters_the_event_naming_container_and_reason(
        soar_server, sample_events):
    event = _with_indicators(sample_events)
    soar_server.artifact_failures.append(REFUSED)
    soar_server.faults.append(Fault(400, {"failed": True, "message": REFUSED}, path_prefix="/rest/artifact"))
    with _sink(soar_server, playbook="local/wia_triage") as sink:
        report = sink.send([event])
        report.merge(sink.flush())
        sent = sink.container_for(event)["artifacts"]
    assert (report.delivered, report.duplicates, len(report.failed)) == (0, 0, 1)
    (cid,) = soar_server.containers
    reason = report.failed[0].reason
    assert f"container {cid}" in reason and "unsupported Unicode escape sequence" in reason
    assert sent[0]["source_data_identifier"] in reason
    assert not report.failed[0].retryable and report.failed[0].event == event
    assert len(_stored(soar_server, cid)) == len(sent) - 1
    assert len(soar_server.playbook_runs) == 1                  # the container exists: its playbook still runs
    assert _creates(soar_server) == 1       # never a second container


def test_contract_an_artifact_refused_for_a_while_is_added_on_the_retry_without_a_second_container(
        soar_server, sample_events):
    event = _with_indicators(sample_events)
    soar_server.artifact_failures += ["database is restarting", "database is restarting"]
    soar_server.faults.append(Fault(503, {"failed": True, "message": "busy"}, headers={"Retry-After": "2"},
                                    path_prefix="/rest/artifact"))
    sleeps = Sleeps()
    with _sink(soar_server, playbook="local/wia_triage", sleep=sleeps) as sink:
        report = sink.send([event])
        report.merge(sink.flush())
        sent = sink.container_for(event)["artifacts"]
    assert report.failed == [] and report.delivered + report.duplicates == 1
    assert sleeps == [2.0]                                      # Retry-After of the artifact answer honoured
    (cid,) = soar_server.containers
    assert len(_stored(soar_server, cid)) == len(sent)
    assert len(soar_server.playbook_runs) == 1
    assert _creates(soar_server) == 2       # the retry met existing_container_id


def test_contract_an_artifact_refused_every_time_for_a_while_gives_up_naming_the_container(soar_server, sample_events):
    event = _with_indicators(sample_events)
    soar_server.artifact_failures.append("database is restarting")
    soar_server.faults += [Fault(503, {"failed": True, "message": "busy"}, path_prefix="/rest/artifact")] * 3
    with _sink(soar_server) as sink:
        report = sink.send([event])
        report.merge(sink.flush())
    assert (report.delivered, report.duplicates, len(report.failed)) == (0, 0, 1)
    (cid,) = soar_server.containers
    assert "gave up after 3 attempt(s)" in report.failed[0].reason and f"container {cid}" in report.failed[0].reason
    assert report.failed[0].retryable


def test_contract_every_artifact_stored_is_delivered_with_no_extra_request(soar_server, sample_events):
    with _sink(soar_server) as sink:
        report = sink.send(sample_events)
        report.merge(sink.flush())
    assert (report.delivered, report.failed) == (len(sample_events), [])
    assert soar_server.calls("/rest/artifact") == []
