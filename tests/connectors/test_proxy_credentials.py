"""Proxy credentials are remembered wherever sinks are made (open_sink, a config's destinations: the
CLI's, the Lambda, Azure and GCP functions' and the Splunk alert action's way in) and from a sink's own
`proxies` option; and the messages of real client libraries that carry them are masked: aiohttp's
ClientHttpProxyError repr (its Proxy-Authorization header) and websockets' InvalidProxy (the URL whole),
both against an https target through a real local proxy that refuses with 407."""
from __future__ import annotations

import asyncio
import logging
import os

import pytest

from servers.refusing_proxy import BASIC_LATIN1, FORMS, USERINFO, RefusingProxy, leaked
from wia_security.redact import MASK, redact

log = logging.getLogger("wia_security.tests.proxy_clients")


@pytest.fixture
def env(monkeypatch):
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    return monkeypatch


def _masked_everywhere() -> bool:
    return all(redact(f"<{form}>") == f"<{MASK}>" for form in FORMS)


def test_open_sink_remembers_the_environment_proxy_credentials(env, tmp_path):
    from wia_security.connectors import open_sink
    env.setenv("https_proxy", f"http://{USERINFO}@proxy.corp:3128")
    assert not _masked_everywhere()
    open_sink(f"file://{tmp_path}/out.ndjson").close()
    assert _masked_everywhere()


def test_a_config_destination_remembers_them_when_opened(env, tmp_path):
    """The Lambda, Azure and GCP functions open their sinks this way (parse_config(...).open())."""
    from wia_security.connectors.config import parse_config
    env.setenv("ALL_PROXY", f"http://{USERINFO}@proxy.corp:3128")
    config = parse_config({"destinations": {"out": {"url": f"file://{tmp_path}/out.ndjson"}}}, source="environment")
    assert not _masked_everywhere()
    config.open().close()
    assert _masked_everywhere()


def test_sentinel_proxies_option_is_remembered(env):
    pytest.importorskip("azure.monitor.ingestion")
    from wia_security.connectors.azure.sentinel import SentinelSink

    class Credential:
        def get_token(self, *scopes, **kwargs):
            raise AssertionError("no request is made")

    sink = SentinelSink("https://dce.eastus-1.ingest.monitor.azure.com", "dcr-" + "0" * 32, credential=Credential(),
                        proxies={"https": f"http://{USERINFO}@proxy.corp:3128"})
    try:
        assert _masked_everywhere()
    finally:
        sink.close()


def test_aiohttp_proxy_refusal_repr_is_masked(env, caplog):
    """aiohttp (trust_env) sends Proxy-Authorization on CONNECT; the 407 error's repr carries the header."""
    aiohttp = pytest.importorskip("aiohttp")
    from wia_security.redact import remember_proxy_credentials
    proxy = RefusingProxy()
    env.setenv("HTTPS_PROXY", proxy.url(USERINFO))

    async def fetch() -> None:
        async with aiohttp.ClientSession(trust_env=True) as session:
            async with session.get("https://intel.example.invalid/api/v3/files/x"):
                pass

    try:
        with pytest.raises(aiohttp.ClientHttpProxyError) as refused:
            asyncio.run(fetch())
    finally:
        proxy.close()
    assert proxy.seen == [f"Basic {BASIC_LATIN1}"] and BASIC_LATIN1 in repr(refused.value)   # the leak is real
    remember_proxy_credentials()
    with caplog.at_level(logging.INFO):
        log.warning("lookup failed: %r", refused.value)
        try:
            raise RuntimeError(repr(refused.value))
        except RuntimeError:
            log.exception("lookup failed")
    assert MASK in caplog.text and leaked(caplog.text) == []
    assert leaked(redact(repr(refused.value))) == []


def test_websockets_invalid_proxy_message_is_masked(env, caplog):
    """websockets reads HTTPS_PROXY for a wss:// URL and quotes a proxy URL it refuses whole."""
    pytest.importorskip("websockets")
    from websockets.exceptions import InvalidProxy
    from websockets.sync.client import connect

    from wia_security.redact import remember_proxy_credentials
    proxy = RefusingProxy()
    env.setenv("HTTPS_PROXY", proxy.url(USERINFO) + "/squid")      # a path: not a valid proxy for websockets
    try:
        with pytest.raises(InvalidProxy) as refused:
            connect("wss://gateway.example.invalid/v1/stream", open_timeout=10)
    finally:
        proxy.close()
    assert USERINFO in str(refused.value)
    remember_proxy_credentials()
    with caplog.at_level(logging.INFO):
        log.error("stream failed: %s", refused.value)
    assert f"http://{MASK}@127.0.0.1:{proxy.port}/squid" in caplog.text and leaked(caplog.text) == []
