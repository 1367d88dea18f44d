"""Sentinel incidents, contract test: a hung management API answer is bounded like the rows connector's. The
real azure-mgmt-securityinsight client through tests/servers/fault_proxy.py (TLS) in front of the contract
server."""
from __future__ import annotations

import time

import pytest

pytest.importorskip("azure.mgmt.securityinsight", reason="the azure extra is not installed")

from servers.fault_proxy import Fault  # noqa: E402
from servers.sentinel_contract import sentinel, sentinel_server  # noqa: E402,F401  (fixtures)
from test_sentinel_misbehaving_contract import proxy  # noqa: E402,F401  (fixture)

from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.azure.sentinel import DEFAULT_TIMEOUT, SentinelIncidents  # noqa: E402
from wia_security.errors import ConfigError  # noqa: E402

WORKSPACE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/ws"


def test_incidents_wait_at_most_the_timeout_not_azure_cores_300_seconds():
    """The rows connector bounds each answer (DEFAULT_TIMEOUT, 60 s); the incidents one set nothing, so
    azure-core's 300 s applied to each of its 4 tries (retry_total 3): 20 minutes on one hung ARM call."""
    client = SentinelIncidents("s", "rg", "ws", credential="default")
    assert client.timeout == DEFAULT_TIMEOUT
    config = client._client._client._pipeline._transport.connection_config
    assert (config.timeout, config.read_timeout) == (10.0, DEFAULT_TIMEOUT)
    client.close()
    with pytest.raises(ConfigError, match="timeout"):
        SentinelIncidents("s", "rg", "ws", credential="default", timeout=0)


def test_contract_timeout_option_bounds_a_hung_incident_upsert(proxy, samples):
    proxy.add(*[Fault("hang", seconds=30, path="/incidents/")] * 2)      # until the client gives up
    url = (f"sentinel-incidents://{WORKSPACE}?base_url={proxy.url}&ca_file={proxy.contract.ca_file}&timeout=0.2")
    sink = open_sink(url, retry_total=0)
    started = time.monotonic()
    report = sink.send([samples["incident-sample"]])
    elapsed = time.monotonic() - started
    sink.close()
    assert proxy.hangs_abandoned_after(1) == 1    # one try of 0.2 s, given up, not the 30 s the proxy would hold it
    assert elapsed < 15, elapsed
    assert len(report.failed) == 1 and report.failed[0].retryable
    assert "network error" in report.failed[0].reason
