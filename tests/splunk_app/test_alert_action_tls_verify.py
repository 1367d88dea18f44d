"""A `[destination:<name>]` stanza's TLS verification under either spelling: the app's `verify_tls` or `tls_verify`,
the name the rest of wia-security gives it. The alert action read `verify_tls` only, so a stanza written by hand or
copied from a CLI config with `tls_verify = false` was ignored without a word: verification stayed on and every
alert of that destination went to the dead-letter log with a certificate error. The modular input already read
both (test_modular_input_tls_verify.py); the two now share wia_app/tls_setting.py. Against the Splunk SOAR
contract server behind TLS with a certificate from a throwaway CA."""
from __future__ import annotations

import json
import ssl
import sys

import pytest

from .conftest import ROOT
from .test_alert_action import payload, run_action, splunk_home, splunkd  # noqa: F401 - the fixtures

sys.path.append(str(ROOT / "tests" / "servers"))  # after site-packages, as the others
from certificates import issue, make_ca, write_certificate, write_key  # noqa: E402
from splunk_soar_contract import SplunkSoarServer  # noqa: E402


@pytest.fixture
def tls_soar(tmp_path):
    """The SOAR contract server over TLS, its certificate issued for 127.0.0.1 by a CA nothing trusts."""
    ca = make_ca("wia test CA")
    key, cert = issue(ca, "127.0.0.1", server=True, hosts=("127.0.0.1",))
    write_certificate(tmp_path / "soar.pem", cert)
    write_key(tmp_path / "soar.key", key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "soar.pem", tmp_path / "soar.key")
    with SplunkSoarServer() as soar:
        soar.httpd.socket = context.wrap_socket(soar.httpd.socket, server_side=True)
        yield soar, soar.url.replace("http://", "phantom+https://") + "?max_attempts=1"


def _send(app, splunkd, splunk_home, tls_soar, **tls):
    soar, url = tls_soar
    splunkd.confs["wia_security"] = {"destination:soar": {"url": url, "credential": "soar_token", **tls}}
    splunkd.passwords[("wia_security", "soar_token")] = soar.token
    return run_action(app, payload(splunkd, "soar"), splunk_home)


def _dead_letters(splunk_home) -> list[dict]:
    log = splunk_home / "var" / "log" / "splunk" / "wia_security_dead_letter.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize("tls", [{"tls_verify": "false"}, {"tls_verify": "0"}, {"verify_tls": "false"},
                                 {"verify_tls": "f"}, {"verify_tls": "false", "tls_verify": "no"}])
def test_verification_turned_off_under_either_spelling_delivers(built_app, splunkd, splunk_home, tls_soar, tls):
    app, _ = built_app
    run = _send(app, splunkd, splunk_home, tls_soar, **tls)
    assert run.returncode == 0, run.stderr
    assert [c["name"] for c in tls_soar[0].containers.values()] == ["Encoded PowerShell"]
    assert _dead_letters(splunk_home) == []


@pytest.mark.parametrize("tls", [{}, {"verify_tls": "true"}, {"tls_verify": "true"}, {"verify_tls": "maybe"}])
def test_verification_stays_on_by_default_and_refuses_an_untrusted_certificate(built_app, splunkd, splunk_home,
                                                                                  tls_soar, tls):
    app, _ = built_app
    run = _send(app, splunkd, splunk_home, tls_soar, **tls)
    assert run.returncode == 2 and "CERTIFICATE_VERIFY_FAILED" in run.stderr.upper().replace(" ", "_"), run.stderr
    assert tls_soar[0].containers == {}
    (record,) = _dead_letters(splunk_home)
    assert record["event"]["data"]["title"] == "Encoded PowerShell"


@pytest.mark.parametrize("tls, said", [({"verify_tls": "true", "tls_verify": "false"}, "disagree"),
                                        ({"tls_verify": "sometimes"}, "tls_verify must be true or false, not 'sometimes'")])
def test_an_unreadable_setting_is_refused_naming_the_destination(built_app, splunkd, splunk_home, tls_soar, tls, said):
    app, _ = built_app
    run = _send(app, splunkd, splunk_home, tls_soar, **tls)
    assert run.returncode == 2 and said in run.stderr and "destination 'soar'" in run.stderr, run.stderr
    assert tls_soar[0].containers == {}
    (record,) = _dead_letters(splunk_home)
    assert said in record["reason"] and record["event"]["data"]["title"] == "Encoded PowerShell"
