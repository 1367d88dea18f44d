"""A server that echoes the credential in its error answer: the key never reaches a reason, a dead-letter
record or the log. XSOAR and Splunk SOAR contract servers driven by demisto-py / requests."""
from __future__ import annotations

import logging

import pytest

from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.soar.splunk_soar import SplunkSoarSink
from wia_security.connectors.soar.xsoar import XsoarSink
from wia_security.redact import MASK

from .conftest import Sleeps
from xsoar_contract import Fault

FAST = DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0.01, max_elapsed=30)


def _deliver(sink, events, tmp_path):
    with sink:
        report = sink.send(events)
        report.merge(sink.flush())
    with DeadLetterFile(str(tmp_path / "dead.ndjson")) as dead:
        for rejected in report.failed:
            dead.put(rejected)
    return report, (tmp_path / "dead.ndjson").read_text()


@pytest.mark.parametrize("status", [401, 500])
def test_contract_xsoar_key_echoed_in_an_error_is_masked_everywhere(xsoar_server, sample_events, tmp_path, caplog,
                                                                     status):
    key = xsoar_server.api_key
    echo = {"id": "echo", "status": status, "title": "refused", "detail": f"bad key {key} (header Authorization: {key})"}
    xsoar_server.faults += [Fault(status, echo, path_prefix="/incident")] * 2
    caplog.set_level(logging.DEBUG)
    report, dead = _deliver(XsoarSink(xsoar_server.url, token=key, delivery=FAST, sleep=Sleeps()), sample_events[:1],
                            tmp_path)
    (rejected,) = report.failed
    assert f"bad key {MASK}" in rejected.reason and key not in rejected.reason
    assert key not in dead and MASK in dead
    assert key not in caplog.text


def test_contract_splunk_soar_token_echoed_in_an_error_is_masked_everywhere(soar_server, sample_events, tmp_path,
                                                                            caplog):
    token = soar_server.token
    echo = {"failed": True, "message": f"invalid ph-auth-token {token}", "detail": {"received": token}}
    soar_server.faults += [Fault(401, echo, path_prefix="/rest/container")] * 2
    caplog.set_level(logging.DEBUG)
    report, dead = _deliver(SplunkSoarSink(soar_server.url, token=token, delivery=FAST, sleep=Sleeps()),
                            sample_events[:1], tmp_path)
    (rejected,) = report.failed
    assert f"invalid ph-auth-token {MASK}" in rejected.reason and token not in rejected.reason
    assert token not in dead and MASK in dead
    assert token not in caplog.text
