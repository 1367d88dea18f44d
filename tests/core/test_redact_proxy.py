"""Proxy credentials (HTTPS_PROXY & co., a `proxies` option) are masked in every form they travel in:
user:password and the password as written in the URL (percent-encoded) and decoded, and the base64 of
`Proxy-Authorization: Basic`. Driven once through urllib and a real local proxy that refuses with 407."""
from __future__ import annotations

import base64
import logging
import os
import urllib.request
from urllib.error import HTTPError

import pytest

from servers.refusing_proxy import BASIC_LATIN1, BASIC_UTF8, FORMS, USERINFO, RefusingProxy, leaked
from wia_security.redact import MASK, proxy_credentials, proxy_urls, redact, remember_proxy_credentials

@pytest.fixture
def no_proxy_environment(monkeypatch):
    """No proxy variable of the machine running the tests gets in the way."""
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_every_form_of_a_proxy_url_credential_is_masked():
    remember_proxy_credentials(f"http://{USERINFO}@proxy.corp:3128")
    for form in FORMS:
        assert redact(f"[{form}]") == f"[{MASK}]", form
    # as client libraries quote it: the URL whole (websockets' InvalidProxy), the header (aiohttp's repr)
    assert redact(f"http://{USERINFO}@proxy.corp:3128/x isn't a valid proxy") == \
        f"http://{MASK}@proxy.corp:3128/x isn't a valid proxy"
    assert redact(f"'Proxy-Authorization': 'Basic {BASIC_LATIN1}'") == f"'Proxy-Authorization': 'Basic {MASK}'"
    assert redact("proxy.corp:3128 refused") == "proxy.corp:3128 refused"       # the proxy's address stays


@pytest.mark.parametrize("url, secret", [
    ("proxyuser:plainpass99@proxy:3128", "plainpass99"),                       # no scheme, as urllib takes it
    ("socks5h://proxyuser:plainpass99@proxy:1080/", "plainpass99"),
    ("http://proxyuser:pa/ss#w?rd9@proxy:3128", "pa/ss#w?rd9"),                # raw / # ? in a password
    ("http://token-as-user-1234@proxy:3128", "token-as-user-1234"),            # a user without password
])
def test_odd_proxy_urls_still_give_up_their_secret(url, secret):
    remember_proxy_credentials(url)
    user = url.split("://")[-1].rpartition("@")[0].partition(":")[0]
    pair = f"{user}:{secret}" if user != secret else f"{user}:"
    assert redact(f"<{secret}>") == f"<{MASK}>"
    assert redact(base64.b64encode(pair.encode()).decode()) == MASK      # requests sends "user:" for a lone user


def test_a_short_password_is_masked_within_its_pair_and_header():
    remember_proxy_credentials("http://proxyuser:pw1@proxy:3128")
    assert redact("proxyuser:pw1 pw1") == f"{MASK} pw1"
    assert redact(base64.b64encode(b"proxyuser:pw1").decode()) == MASK


def test_urls_without_credentials_and_junk_remember_nothing():
    remember_proxy_credentials(["http://proxy:3128", "", None, 3128])
    remember_proxy_credentials({"https": "http://proxy:3128", "http": None})
    assert proxy_credentials(["http://proxy:3128"]) == []
    assert redact("http://proxy:3128") == "http://proxy:3128"


def test_the_environment_proxy_variables_upper_and_lower_case(no_proxy_environment):
    monkeypatch = no_proxy_environment
    names = ["HTTPS_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "WSS_PROXY"]
    for i, name in enumerate(names):
        monkeypatch.setenv(name, f"http://user{i}:password-{name}@proxy:3128")
    monkeypatch.setenv("NO_PROXY", "user9:not-a-credential@x")        # a host list, not a proxy
    assert sorted(proxy_urls()) == sorted(f"http://user{i}:password-{n}@proxy:3128" for i, n in enumerate(names))
    remember_proxy_credentials()
    for i, name in enumerate(names):
        assert redact(f"user{i}:password-{name}") == MASK
    assert redact("not-a-credential") == "not-a-credential"


def test_a_urllib_refusal_page_through_the_environment_proxy_is_masked_in_logs(no_proxy_environment, caplog):
    """urllib takes http_proxy from the environment and sends Proxy-Authorization; the proxy's 407 page
    quotes it back, and logging that error (as the Splunk app's pull and `wia-security pull` may) must not
    write the credentials."""
    proxy = RefusingProxy()
    try:
        no_proxy_environment.setenv("http_proxy", proxy.url(USERINFO))
        remember_proxy_credentials()                    # what the CLI and the deployables do at start-up
        log = logging.getLogger("wia_security.tests.proxy")
        with pytest.raises(HTTPError) as refused:
            urllib.request.build_opener().open("http://feed.example.invalid/v1/events", timeout=10)
        page = refused.value.read().decode("latin-1")
        with caplog.at_level(logging.INFO):
            log.error("pull failed: %s: %s", refused.value, page)
            try:
                raise RuntimeError(f"source refused: {page}")
            except RuntimeError:
                log.exception("pull failed")
    finally:
        proxy.close()
    assert proxy.seen == [f"Basic {BASIC_UTF8}"]        # the client did send them, and the page echoed them
    assert BASIC_UTF8 in page
    assert caplog.text.count(MASK) >= 2 and leaked(caplog.text) == []
