"""Sentinel connector in a sovereign cloud: the Logs Ingestion API takes tokens for its own cloud's audience.
azure-monitor-ingestion asks for the public cloud's (https://monitor.azure.com) unless told: "To use a
sovereign cloud instead, provide the correct endpoint and audience" (its sovereign-cloud sample passes
credential_scopes=["https://monitor.azure.us/.default"] for *.ingest.monitor.azure.us). The sink gave no way
to say so (an `audience` key was refused as unknown), so in Azure Government or China every batch met 401 and
was dead-lettered. The real client and managed identity against the TLS contract server, whose tokens are
audience-bound (tests/servers/sentinel_contract.py)."""
from __future__ import annotations

import pytest

pytest.importorskip("azure.monitor.ingestion", reason="the azure extra is not installed")

from servers.sentinel_contract import sentinel, sentinel_server  # noqa: E402,F401  (fixtures)
from test_sentinel_contract import DCR, FAST  # noqa: E402

from wia_security.connectors import open_sink  # noqa: E402
from wia_security.connectors.azure.sentinel import SentinelSink, monitor_audience  # noqa: E402
from wia_security.errors import ConfigError  # noqa: E402

GOVERNMENT = "https://monitor.azure.us"


def deliver(sentinel, events, query=""):
    url = f"sentinel://localhost:{sentinel.port}/{DCR}?ca_file={sentinel.ca_file}{query}"
    with open_sink(url, delivery=FAST) as sink:
        report = sink.send(events)
        report.merge(sink.flush())
    return report


def test_contract_the_audience_option_gets_a_token_the_sovereign_cloud_takes(sentinel, samples):
    sentinel.state.ingestion_audience = GOVERNMENT
    events = list(samples.values())
    report = deliver(sentinel, events, f"&audience={GOVERNMENT}")
    assert report.delivered == len(events) and not report.failed, report.failed[:1]
    assert [r["resource"] for r in sentinel.state.token_requests] == [GOVERNMENT]
    assert sorted(r["EventId"] for r in sentinel.state.all_rows()) == sorted(e["id"] for e in events)


def test_contract_a_public_cloud_token_is_refused_there(sentinel, samples):
    """Why the audience matters: without it (a localhost endpoint names no cloud) the token is the public one's."""
    sentinel.state.ingestion_audience = GOVERNMENT
    report = deliver(sentinel, [samples["alert-sample"]])
    [rejected] = report.failed
    assert "HTTP 401" in rejected.reason and not rejected.retryable
    assert sentinel.state.token_requests[0]["resource"] == "https://monitor.azure.com"


@pytest.mark.parametrize("endpoint,audience", [
    ("https://wia-dce-a1b2.eastus-1.ingest.monitor.azure.com", "https://monitor.azure.com"),
    ("https://wia-dce-a1b2.usgovvirginia-1.ingest.monitor.azure.us", "https://monitor.azure.us"),
    ("https://wia-dce-a1b2.chinanorth3-1.ingest.monitor.azure.cn", "https://monitor.azure.cn"),
    ("https://dcr-0123.eastus-1.logs.z1.ingest.monitor.azure.us", "https://monitor.azure.us"),
])
def test_the_audience_follows_the_endpoints_cloud(endpoint, audience):
    assert monitor_audience(endpoint) == audience
    sink = SentinelSink(endpoint, DCR, credential="default")        # nothing is sent: the client is only built
    try:
        assert sink.audience == audience
    finally:
        sink.close()


def test_an_audience_that_is_not_an_https_url_is_refused():
    with pytest.raises(ConfigError) as caught:
        SentinelSink("https://x.ingest.monitor.azure.com", DCR, audience="monitor.azure.us")
    assert caught.value.key == "audience"


GOVERNMENT_ARM = "https://management.usgovcloudapi.net"
WORKSPACE = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-sec/providers/"
             "Microsoft.OperationalInsights/workspaces/ws-sec")


def test_contract_incidents_take_the_audience_of_their_cloud(sentinel, samples):
    """Resource Manager in Azure Government takes tokens for its own host; the incidents client asked for the
    public cloud's whatever base_url said, and refused an audience key."""
    sentinel.state.management_audience = GOVERNMENT_ARM
    sink = open_sink(f"sentinel-incidents://{WORKSPACE}?base_url={sentinel.endpoint}&ca_file={sentinel.ca_file}"
                     f"&audience={GOVERNMENT_ARM}")
    try:
        report = sink.send([samples["incident-sample"]])
    finally:
        sink.close()
    assert report.delivered == 1 and not report.failed, report.failed[:1]
    assert [r["resource"] for r in sentinel.state.token_requests] == [GOVERNMENT_ARM]
    assert len(sentinel.state.incidents) == 1


@pytest.mark.parametrize("base_url,audience", [
    (None, "https://management.azure.com"),
    ("https://management.azure.com", "https://management.azure.com"),
    ("https://management.usgovcloudapi.net/", "https://management.usgovcloudapi.net"),
    ("https://management.chinacloudapi.cn", "https://management.chinacloudapi.cn"),
])
def test_the_incidents_audience_follows_base_url(base_url, audience):
    from wia_security.connectors.azure.sentinel import SentinelIncidents
    sink = SentinelIncidents("s", "rg", "ws", base_url=base_url, credential="default")
    try:
        assert sink.audience == audience
    finally:
        sink.close()
