"""`logging_enable=true` (a documented Sentinel client option) turns on azure-core's network trace, which
logs every request's headers at DEBUG as they are, `Authorization: Bearer <token>` included. The token
never reaches a log record (wia_security.redact masks records of every logger once a token is issued).
The real azure-monitor-ingestion client against the TLS contract server."""
from __future__ import annotations

import logging

import pytest

pytest.importorskip("azure.monitor.ingestion", reason="the azure extra is not installed")

from servers import sentinel_contract  # noqa: E402

from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.delivery.policy import DeliveryPolicy  # noqa: E402
from wia_security.redact import MASK  # noqa: E402

DCR = "dcr-00000000000000000000000000000000"
sentinel, sentinel_server = sentinel_contract.sentinel, sentinel_contract.sentinel_server      # fixtures


def test_contract_network_trace_logging_never_shows_the_bearer_token(request, samples, caplog):
    server = request.getfixturevalue("sentinel")
    caplog.set_level(logging.DEBUG)
    url = f"sentinel://localhost:{server.port}/{DCR}?ca_file={server.ca_file}"
    with open_sink(url, logging_enable=True, delivery=DeliveryPolicy(max_wait=0, max_attempts=1)) as sink:
        report = sink.send([samples["alert-sample"]])
        report.merge(sink.flush())
    assert report.delivered == 1 and server.state.authorizations
    # the network trace (NetworkTraceLoggingPolicy), not azure-core's own header-redacting HTTP logging policy
    traces = [r.getMessage() for r in caplog.records
              if r.name == "azure.core.pipeline.policies._universal" and "'Authorization'" in r.getMessage()]
    assert traces and all(f"'Authorization': 'Bearer {MASK}'" in t for t in traces)
    assert server.state.token not in caplog.text
