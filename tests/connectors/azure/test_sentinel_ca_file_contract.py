"""Sentinel connectors, contract test: a `ca_file` that holds no CA certificate is a configuration error when
the destination is opened, not an I/O error of every batch. The real azure-monitor-ingestion and
azure-mgmt-securityinsight clients against the TLS contract server (tests/servers/sentinel_contract.py)."""
from __future__ import annotations

import pytest

pytest.importorskip("azure.monitor.ingestion", reason="the azure extra is not installed")

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: E402,F401  (fixtures)
from test_sentinel_contract import DCR, FAST  # noqa: E402

from wia_security.connectors import open_sink  # noqa: E402
from wia_security.errors import ConfigError  # noqa: E402

WORKSPACE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/ws"


@pytest.mark.parametrize("kind", ["missing", "not PEM", "empty"])
@pytest.mark.parametrize("scheme", ["sentinel", "sentinel-incidents"])
def test_contract_a_ca_file_without_certificates_is_refused_when_opened(sentinel, tmp_path, kind, scheme):
    """azure-core reads the CA file only at the first request: a wrong path opened fine, then every batch failed
    with a retryable 'I/O error: OSError: Could not find a suitable TLS CA certificate bundle', retried to its
    last attempt and dead-lettered, batch after batch (the CLI never said the option was wrong)."""
    ca_file = tmp_path / "ca.pem"
    if kind == "not PEM":
        ca_file.write_text("this is not a certificate\n")
    elif kind == "empty":
        ca_file.write_bytes(b"")
    url = (f"sentinel://localhost:{sentinel.port}/{DCR}?ca_file={ca_file}" if scheme == "sentinel" else
           f"sentinel-incidents://{WORKSPACE}?base_url={sentinel.endpoint}&ca_file={ca_file}")
    options = {"delivery": FAST} if scheme == "sentinel" else {}
    with pytest.raises(ConfigError, match="ca_file: .*holds no CA certificate that can be read"):
        open_sink(url, **options)


def test_contract_the_servers_ca_file_still_opens_and_delivers(sentinel, samples):
    with open_sink(f"sentinel://localhost:{sentinel.port}/{DCR}?ca_file={sentinel.ca_file}", delivery=FAST) as sink:
        report = sink.send([samples["alert-sample"]])
        report.merge(sink.flush())
    assert report.delivered == 1 and not report.failed
