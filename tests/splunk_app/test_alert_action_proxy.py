"""The alert action (run as Splunk runs it, from the built app) behind a proxy set in HTTP_PROXY with
credentials (splunk-launch.conf): a real local proxy refuses with 407 and its page quotes the credentials;
splunkd.log (stderr) and the dead-letter log never carry them. The modular input's masker knows them too."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT
from .splunkd_stub import Splunkd
from .test_alert_action import payload

sys.path.append(str(ROOT / "tests" / "servers"))  # after site-packages, as the other app tests do

from refusing_proxy import BASIC_LATIN1, FORMS, USERINFO, RefusingProxy, leaked  # noqa: E402

XSOAR_KEY = "xsoar-api-key-7d2e91c4a8b03f65"


@pytest.fixture
def proxy():
    server = RefusingProxy()
    yield server
    server.close()


def test_a_refusing_proxy_never_puts_its_credentials_in_splunkd_log(built_app, tmp_path, proxy):
    app, _ = built_app
    home = tmp_path / "splunk"
    (home / "var" / "log" / "splunk").mkdir(parents=True)
    with Splunkd() as splunkd:
        splunkd.confs["wia_security"] = {"destination:d": {"url": "xsoar+http://xsoar.example.invalid?max_attempts=1",
                                                          "credential": "key"}}
        splunkd.passwords[("wia_security", "key")] = XSOAR_KEY
        env = {"PATH": os.environ.get("PATH", ""), "SPLUNK_HOME": str(home), "HTTP_PROXY": proxy.url(USERINFO),
               "NO_PROXY": "127.0.0.1,localhost"}                # splunkd itself is reached directly
        run = subprocess.run([sys.executable, "-I", "-S", str(app / "bin" / "wia_send_event.py"), "--execute"],
                             input=json.dumps(payload(splunkd, "d")), capture_output=True, text=True, timeout=120,
                             env=env)
    dead = (home / "var" / "log" / "splunk" / "wia_security_dead_letter.log").read_text()
    assert proxy.seen == [f"Basic {BASIC_LATIN1}"], run.stderr     # the connector went through the proxy
    assert run.returncode == 2 and "407" in run.stderr
    assert leaked(run.stdout + run.stderr) == [] and leaked(dead) == []
    assert XSOAR_KEY not in run.stderr + dead


def test_the_apps_masker_knows_the_environment_proxy_credentials(monkeypatch):
    sys.path.insert(0, str(ROOT / "splunk_app" / "wia_security" / "bin"))
    try:
        from wia_app.redact import Redactor
    finally:
        sys.path.remove(str(ROOT / "splunk_app" / "wia_security" / "bin"))
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("https_proxy", f"http://{USERINFO}@proxy.corp:3128")
    redact = Redactor("session-key-0123")
    assert [redact(form) for form in FORMS] == ["***"] * len(FORMS)
    assert redact("proxy.corp:3128") == "proxy.corp:3128"


def test_a_short_proxy_password_is_not_masked_all_over_splunkd_log(built_app, tmp_path, proxy, monkeypatch):
    """The core's rule (wia_security.redact.MIN_CHARS): a value under 8 characters is masked only within its pair and
    the Proxy-Authorization base64, never alone. The app's masker took every form of 4 characters or more, so a proxy
    password such as "events" turned each line of the input into "ERROR wia_*** input=wia_***://..." (helper 75)."""
    from .test_modular_input import input_xml, run_input
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url("relay:events"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")                 # splunkd itself is reached directly
    basic = base64.b64encode(b"relay:events").decode()
    app, _ = built_app
    with Splunkd() as splunkd:
        result = run_input(app, [], input_xml(splunkd, tmp_path, "behind-proxy", {
            "source_url": "gateway+https://gateway.example.invalid:8443", "retries": "0"}))
    assert proxy.seen == [f"Basic {basic}"], result.stderr              # the source went through the proxy
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR ")]
    assert errors and all(line.startswith("ERROR wia_events input=wia_events://behind-proxy: ") for line in errors), \
        result.stderr
    assert "407" in errors[0] and "/v1/events" in errors[0]
    assert "relay:events" not in result.stderr and basic not in result.stderr
