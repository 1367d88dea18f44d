"""`tls_verify`, the name the rest of wia-security gives TLS verification (connectors/delivery/urls.py TLS_SPELLINGS),
is read in an input stanza beside the app's own `verify_tls`. A stanza written by hand or copied from a CLI config
with `tls_verify = false` was ignored without a word (verification stayed on, the run failed on the certificate and
told the admin to set verify_tls); both spellings disagreeing is refused in validation, naming both. Stanzas with
verify_tls alone read as before. Against the gateway feed stand-in behind TLS with a certificate from a throwaway CA."""
from __future__ import annotations

import ssl
import sys
from pathlib import Path

import pytest

from wia_security import AlertBuilder

from .splunkd_stub import Splunkd
from .test_modular_input import input_xml, run_input, streamed

sys.path.append(str(Path(__file__).resolve().parents[2] / "tests" / "servers"))  # after site-packages, as the others
from certificates import issue, make_ca, write_certificate, write_key  # noqa: E402
from wia_gateway_feed import GatewayFeed  # noqa: E402

TOKEN = "gateway-tls-token"


@pytest.fixture
def splunkd():
    with Splunkd() as server:
        server.passwords[("wia_security", "gw")] = TOKEN
        yield server


@pytest.fixture
def tls_feed(tmp_path):
    """The feed over TLS, its certificate issued for 127.0.0.1 by a CA nothing trusts."""
    ca = make_ca("wia test CA")
    key, cert = issue(ca, "127.0.0.1", server=True, hosts=("127.0.0.1",))
    write_certificate(tmp_path / "feed.pem", cert)
    write_certificate(tmp_path / "ca.pem", ca[1])
    write_key(tmp_path / "feed.key", key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "feed.pem", tmp_path / "feed.key")
    feed = GatewayFeed(token=TOKEN)
    feed.httpd.socket = context.wrap_socket(feed.httpd.socket, server_side=True)
    feed.events.extend(AlertBuilder().title(f"alert {n}").build().to_dict() for n in range(3))
    with feed:
        yield feed, feed.url.replace("http://", "gateway+https://")


def _run(app, splunkd, tmp_path, url, **tls):
    return run_input(app, [], input_xml(splunkd, tmp_path / "ckpt", "gw", {"source_url": url, "credential": "gw", **tls}))


@pytest.mark.parametrize("tls", [{"tls_verify": "false"}, {"tls_verify": "0"}, {"verify_tls": "false"},
                                 {"verify_tls": "false", "tls_verify": "false"}])
def test_verification_turned_off_under_either_spelling_reads_the_feed(built_app, splunkd, tmp_path, tls_feed, tls):
    app, _ = built_app
    feed, url = tls_feed
    run = _run(app, splunkd, tmp_path, url, **tls)
    assert run.returncode == 0, run.stderr
    assert [g["event"]["id"] for g in streamed(run.stdout)] == [e["id"] for e in feed.events]


@pytest.mark.parametrize("tls", [{}, {"tls_verify": "true"}, {"verify_tls": "true"}, {"verify_tls": "yes", "tls_verify": "1"}])
def test_verification_on_refuses_the_untrusted_certificate_at_once(built_app, splunkd, tmp_path, tls_feed, tls):
    """A refused certificate is refused again on every attempt: the run ends at once, not retried. It was taken for
    a source that cannot be reached and retried with backoff (about 15-30 s with the defaults) before the same error."""
    app, _ = built_app
    _, url = tls_feed
    run = _run(app, splunkd, tmp_path, url, **tls)
    assert run.returncode == 1 and streamed(run.stdout) == []
    assert ("ERROR wia_events input=wia_events://gw: the source's TLS certificate was refused (unable to get local issuer "
            "certificate). Add the CA that issued it") in run.stderr, run.stderr
    assert "not retried (not a temporary failure)" in run.stderr and "retrying" not in run.stderr


def test_a_certificate_for_another_host_is_refused_at_once_naming_the_mismatch(built_app, splunkd, tmp_path, tls_feed,
                                                                               monkeypatch):
    app, _ = built_app
    feed, url = tls_feed
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))       # the CA trusted, as the docs say to do
    trusted = _run(app, splunkd, tmp_path, url)
    assert trusted.returncode == 0 and len(streamed(trusted.stdout)) == len(feed.events), trusted.stderr
    run = _run(app, splunkd, tmp_path / "other", url.replace("127.0.0.1", "localhost"))
    assert run.returncode == 1 and "retrying" not in run.stderr, run.stderr
    assert "the source's TLS certificate was refused (Hostname mismatch, certificate is not valid for 'localhost'" in run.stderr


@pytest.mark.parametrize("tls,why", [
    ({"verify_tls": "true", "tls_verify": "false"},
     "verify_tls = true and tls_verify = false are two spellings of one setting and disagree: keep only one"),
    ({"verify_tls": "0", "tls_verify": "yes"}, "verify_tls = 0 and tls_verify = yes are two spellings"),
    ({"tls_verify": "maybe"}, "tls_verify must be true or false, not 'maybe'"),
])
def test_spellings_that_disagree_or_no_boolean_are_refused_naming_them(built_app, splunkd, tmp_path, tls_feed, tls, why):
    app, _ = built_app
    _, url = tls_feed
    params = "".join(f'<param name="{k}">{v}</param>' for k, v in {"source_url": url, **tls}.items())
    check = run_input(app, ["--validate-arguments"], f"<items><item name='gw'>{params}</item></items>")
    assert check.returncode == 1 and why in check.stdout, check.stdout
    run = _run(app, splunkd, tmp_path, url, **tls)          # a stanza written by hand is refused at run time too
    assert run.returncode == 2 and why in run.stderr and run.stdout == ""
