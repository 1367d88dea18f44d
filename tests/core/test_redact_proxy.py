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


# How the user info of a proxy URL is read (wia_security.redact._userinfo): with a scheme only when "://"
# follows a valid scheme name; the authority ends at the first "/", "?" or "#" after the first "@"; the
# credentials are what comes before the authority's last "@". Each case: the URL, its user and password.
@pytest.mark.parametrize("url, user, password", [
    ("proxyuser:pa://ss99@proxy:3128", "proxyuser", "pa://ss99"),            # no scheme, "://" in the password
    ("http://proxyuser:pw-secret-1@proxy:3128/a@b", "proxyuser", "pw-secret-1"),    # "@" in the path
    ("http://proxyuser:pw-secret-1@proxy:3128?q=a@b#c@d", "proxyuser", "pw-secret-1"),  # in query, fragment
    ("proxyuser:pw-secret-1@proxy:3128/a@b", "proxyuser", "pw-secret-1"),    # no scheme, "@" in the path
    ("http://proxyuser:pa/ss#w?rd9@proxy:3128/x@y", "proxyuser", "pa/ss#w?rd9"),    # raw "/" "#" "?", "@" in path
    ("http://proxyuser:p@ss-word-1@proxy:3128/x@y", "proxyuser", "p@ss-word-1"),    # raw "@", "@" in path
    ("http://proxyuser:pa://ss99@proxy:3128", "proxyuser", "pa://ss99"),
])
def test_the_credentials_of_odd_proxy_urls_are_read_as_clients_read_them(url, user, password):
    remember_proxy_credentials(url)
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    assert redact(f"<{password}> <{user}:{password}> 'Proxy-Authorization': 'Basic {basic}'") == \
        f"<{MASK}> <{MASK}> 'Proxy-Authorization': 'Basic {MASK}'"
    assert redact(f"{url} refused") == url.replace(f"{user}:{password}", MASK) + " refused"  # the proxy stays


@pytest.mark.parametrize("url", ["http://proxyuser:pw-secret-1@127.0.0.1:{port}/a@b",
                                 "http://proxyuser:p@ss-word-1@127.0.0.1:{port}"])
def test_what_urllib_and_requests_send_for_an_odd_proxy_url_is_masked(url):
    """The Proxy-Authorization both clients send a real proxy (which echoes it in its 407 page) is masked."""
    import requests
    proxy = RefusingProxy()
    try:
        url = url.format(port=proxy.port)
        remember_proxy_credentials(url)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": url}))
        with pytest.raises(HTTPError) as refused:
            opener.open("http://feed.example.invalid/v1/events", timeout=10)
        pages = [refused.value.read().decode("latin-1")]
        pages.append(requests.get("http://feed.example.invalid/v1/events", proxies={"http": url}, timeout=10).text)
    finally:
        proxy.close()
    assert len(proxy.seen) == 2 and len(set(proxy.seen)) == 1          # both clients sent the same pair
    sent = proxy.seen[0].split()[1]
    user, _, password = base64.b64decode(sent).decode().partition(":")
    assert password in url and redact(f"<{password}>") == f"<{MASK}>"
    for page in pages:
        assert sent in page and sent not in redact(page)


def test_the_start_of_a_password_with_a_raw_slash_that_requests_quotes_is_masked():
    """requests (urllib3) ends the authority at the first "/" and quotes what came before in its error."""
    import requests
    url = "http://proxyuser:S3cret/99@127.0.0.1:9"
    remember_proxy_credentials(url)
    with pytest.raises(requests.exceptions.InvalidURL) as refused:
        requests.get("http://feed.example.invalid/", proxies={"http": url}, timeout=5)
    assert "proxyuser:S3cret" in str(refused.value)
    assert "S3cret" not in redact(str(refused.value))
    assert redact("proxyuser: proxyuser:") == "proxyuser: proxyuser:"     # never the user name alone
    remember_proxy_credentials(["http://proxy.corp:3128/a@b", "http://proxyuser:/pw-secret-1@proxy.corp:3128"])
    assert redact("proxy.corp:3128 proxyuser:") == "proxy.corp:3128 proxyuser:"    # nor a proxy's host:port


def test_a_short_user_only_token_is_masked_with_the_proxy_address_not_everywhere():
    """A token shorter than MIN_CHARS masked everywhere would garble unrelated text ("ERROR wia_***
    input=wia_***"); as `token@host:port`, it is masked only where the proxy URL is quoted."""
    remember_proxy_credentials(["http://tok123@proxy.corp:3128", "ab:pw@relay.corp:8080"])
    assert redact("InvalidProxy: http://tok123@proxy.corp:3128 isn't valid") == f"InvalidProxy: http://{MASK} isn't valid"
    assert redact("relay ab:pw@relay.corp:8080 refused") == f"relay {MASK} refused"
    assert redact(base64.b64encode(b"tok123:").decode()) == MASK          # curl sends "tok123:" for a lone user
    assert redact("ERROR tok123 input=tok123 ab:pw proxy.corp:3128") == "ERROR tok123 input=tok123 ab:pw proxy.corp:3128"
    assert proxy_credentials("http://tok%31@proxy.corp:3128") == sorted(
        ["tok%31@proxy.corp:3128", "tok1@proxy.corp:3128", base64.b64encode(b"tok1:").decode()])
