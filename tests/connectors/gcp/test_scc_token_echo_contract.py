"""SCC sink and ListFindings source: an access token a server or proxy echoes back in an error never reaches
a reason, a dead letter or the log. The gRPC call carries `authorization: Bearer <token>` (Application
Default Credentials, obtained inside google-auth); the contract server (tests/servers/scc_grpc.py,
`override_next`) answers with the call's metadata quoted, as a misbehaving endpoint or TLS-inspecting proxy
might. The Sentinel connector masked this already; the SCC one carried the token into the dead letter."""
from __future__ import annotations

import logging

import pytest

pytest.importorskip("google.cloud.securitycenter_v2", reason="the gcp extra is not installed")

import grpc  # noqa: E402
from google.oauth2.credentials import Credentials  # noqa: E402
from servers.scc_grpc import scc, scc_server  # noqa: E402,F401

from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402
from wia_security.connectors.gcp.scc import SccSink  # noqa: E402
from wia_security.errors import DeliveryError  # noqa: E402

TOKEN = "ya29.a0AfB_byDq-test-access-token-0123456789abcdef"


def echo_metadata(code):
    def answer(request, context, impl):
        context.abort(code, f"refused; request metadata: {dict(context.invocation_metadata())}")
    return answer


def token_sink(scc, source) -> SccSink:
    return SccSink(source, endpoint=scc.endpoint, ca_file=scc.ca_file, credentials=Credentials(token=TOKEN),
                   delivery=DeliveryPolicy(max_wait=0, max_attempts=2, initial_backoff=0))


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAVAILABLE])
def test_contract_a_token_echoed_in_a_write_error_is_masked(scc, samples, caplog, code):
    caplog.set_level(logging.DEBUG)
    scc.state.override_next("CreateFinding", echo_metadata(code), times=2)
    sink = token_sink(scc, scc.create_source())
    report = sink.send([samples["alert-sample"]])
    report.merge(sink.flush())
    sink.close()
    [rejected] = report.failed
    assert "request metadata" in rejected.reason and "Bearer <redacted>" in rejected.reason, rejected.reason
    assert TOKEN not in rejected.reason and TOKEN not in str(rejected.errors) and TOKEN not in caplog.text


def test_contract_a_token_echoed_in_a_listing_error_is_masked(scc):
    # UNAUTHENTICATED: not retried (a PERMISSION_DENIED listing is tried again while a role binding propagates)
    scc.state.override_next("ListFindings", echo_metadata(grpc.StatusCode.UNAUTHENTICATED))
    sink = token_sink(scc, scc.create_source())
    with pytest.raises(DeliveryError) as caught:
        list(sink.items())
    sink.close()
    assert "Bearer <redacted>" in str(caught.value) and TOKEN not in str(caught.value)
