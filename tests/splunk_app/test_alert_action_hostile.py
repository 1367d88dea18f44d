"""The "Send as WIA event" alert action under hostile input and failing destinations, run as Splunk runs
it (`bin/wia_send_event.py --execute` from the built app, payload on stdin): secrets never reach
splunkd.log (stderr) or the dead-letter log, even when the destination echoes the request in its error
or the configured URL carries user:password; malformed payloads exit 2 with a clear message (never a
traceback); whatever is not delivered is in the dead-letter log with the reason."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT
from .splunkd_stub import Splunkd
from .test_alert_action import RESULT, payload

sys.path.append(str(ROOT / "tests" / "servers"))  # after site-packages: tests/servers has modules named like packages (medallion, moto)

from splunk_soar_contract import SplunkSoarServer  # noqa: E402
from xsoar_contract import XsoarServer  # noqa: E402

XSOAR_KEY = "xsoar-api-key-3f9c2a7e51d84b06"
SOAR_TOKEN = "soar-token-8a1e4c9b27f35d60"
SESSION_KEY = "splunkd-session-key-5c0e9a2b7d"


class EchoingXsoar(XsoarServer):
    """An XSOAR (or a proxy in front of it) whose 401 repeats the request's Authorization header."""

    def handle(self, req, headers):
        return 401, {"id": "unauthorized", "status": 401, "title": "Unauthorized",
                     "detail": f"rejected Authorization: {headers.get('authorization')}"}, {}


class EchoingSoar(SplunkSoarServer):
    def handle(self, req, headers):
        return 401, {"failed": True, "message": f"bad ph-auth-token {headers.get('ph-auth-token')}"}, {}


def run_raw(app: Path, stdin: str, env_home: Path | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "")}
    if env_home is not None:
        env["SPLUNK_HOME"] = str(env_home)
    return subprocess.run([sys.executable, "-I", "-S", str(app / "bin" / "wia_send_event.py"), "--execute"],
                          input=stdin, capture_output=True, text=True, timeout=120, env=env)


def dead_letters(home: Path) -> list[dict]:
    path = home / "var" / "log" / "splunk" / "wia_security_dead_letter.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def splunkd():
    with Splunkd(session_key=SESSION_KEY) as server:
        yield server


@pytest.fixture
def splunk_home(tmp_path):
    (tmp_path / "var" / "log" / "splunk").mkdir(parents=True)
    return tmp_path


@pytest.mark.parametrize("product", ["xsoar", "soar"])
def test_contract_secret_echoed_by_the_destination_is_masked_everywhere(built_app, splunkd, splunk_home, product):
    app, _ = built_app
    server_cls, scheme, secret = ((EchoingXsoar, "xsoar+http://", XSOAR_KEY) if product == "xsoar"
                                  else (EchoingSoar, "phantom+http://", SOAR_TOKEN))
    server = server_cls(api_key=secret) if product == "xsoar" else server_cls(token=secret)
    with server:
        splunkd.confs["wia_security"] = {"destination:d": {"url": server.url.replace("http://", scheme) + "?max_attempts=1",
                                                          "credential": "key"}}
        splunkd.passwords[("wia_security", "key")] = secret
        run = run_action_with(app, payload(splunkd, "d"), splunk_home)
        assert server.requests, "the destination was not reached"
    # masked where it was echoed: by the connector (wia_security.redact) or the app's own masker
    masked = ("<redacted>", "***")
    assert run.returncode == 2 and "401" in run.stderr and any(m in run.stderr for m in masked)
    (record,) = dead_letters(splunk_home)
    assert record["event"]["data"]["title"] == "Encoded PowerShell" and any(m in record["reason"] for m in masked)
    everything = run.stdout + run.stderr + json.dumps(record)
    assert secret not in everything and SESSION_KEY not in everything


def run_action_with(app: Path, body: dict, home: Path) -> subprocess.CompletedProcess[str]:
    return run_raw(app, json.dumps(body), home)


@pytest.mark.parametrize("url", ["xsoar+https://bob:hunter2-Pa55word@xsoar.example",
                                 # a raw "/" in the password (urllib.request sends "hunter2/Pa55word")
                                 "xsoar+https://bob:hunter2-Pa55word/x@xsoar.example"])
def test_destination_url_with_user_and_password_is_refused_without_repeating_them(built_app, splunkd, splunk_home, url):
    app, _ = built_app
    splunkd.confs["wia_security"] = {"destination:d": {"url": url, "credential": "key"}}
    splunkd.passwords[("wia_security", "key")] = XSOAR_KEY
    run = run_action_with(app, payload(splunkd, "d"), splunk_home)
    assert run.returncode == 2 and "user:password" in run.stderr and "storage/passwords" in run.stderr
    (record,) = dead_letters(splunk_home)
    assert record["event"]["type"] == "alert"
    assert "hunter2-Pa55word" not in run.stderr + json.dumps(record) and XSOAR_KEY not in run.stderr


@pytest.mark.parametrize("stdin,why", [
    ("[]", "must be a JSON object, not list"),
    ('"text"', "must be a JSON object, not str"),
    ("{not json", "not JSON"),
    ("[" * 100_000, "not JSON"),
])
def test_malformed_payload_exits_2_with_a_clear_message(built_app, splunk_home, stdin, why):
    app, _ = built_app
    run = run_raw(app, stdin, splunk_home)
    assert run.returncode == 2 and why in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("key,value", [("result", [1, 2]), ("configuration", "destination=x")])
def test_payload_parts_of_the_wrong_type_are_refused_and_dead_lettered(built_app, splunkd, splunk_home, key, value):
    app, _ = built_app
    body = payload(splunkd, "d")
    body[key] = value
    run = run_action_with(app, body, splunk_home)
    assert run.returncode == 2 and f"'{key}' must be a JSON object" in run.stderr and "Traceback" not in run.stderr
    (record,) = dead_letters(splunk_home)
    assert "not an object" in record["reason"] and record["result"] == body["result"]
    assert SESSION_KEY not in run.stderr + json.dumps(record)


def test_a_refused_result_is_dead_lettered_with_the_reason(built_app, splunkd, splunk_home):
    app, _ = built_app
    run = run_action_with(app, payload(splunkd, "d", result={"signature": "x", "mitre_technique_id": "T9999"}), splunk_home)
    assert run.returncode == 2 and "T9999" in run.stderr
    (record,) = dead_letters(splunk_home)
    assert "T9999" in record["reason"] and record["result"]["signature"] == "x"


@pytest.fixture
def xsoar(splunkd):
    with XsoarServer(api_key=XSOAR_KEY) as server:
        splunkd.confs["wia_security"] = {"destination:x": {"url": server.url.replace("http://", "xsoar+http://"),
                                                          "credential": "key"}}
        splunkd.passwords[("wia_security", "key")] = XSOAR_KEY
        yield server


def test_contract_multivalue_fields_become_context_and_every_indicator(built_app, splunkd, splunk_home, xsoar):
    """Splunk sends a multivalue field as a JSON array: the context takes its first value, the indicators
    all of them (the whole alert used to be refused as invalid)."""
    app, _ = built_app
    result = dict(RESULT, src_ip=["203.0.113.9", "198.51.100.7"], user=["bob", "alice"],
                  file_hash=["d41d8cd98f00b204e9800998ecf8427e", "not-a-hash"], severity=["high", "low"])
    run = run_action_with(app, payload(splunkd, "x", result=result), splunk_home)
    assert run.returncode == 0, run.stderr
    (incident,) = xsoar.incidents.values()
    event = json.loads(incident["rawJSON"])
    assert event["context"]["network"]["source"]["ip"] == "203.0.113.9" and event["context"]["user"]["name"] == "bob"
    assert event["severity"] == 6
    indicators = {(i["type"], i["value"]) for i in event["data"]["indicators"]}
    assert {("ip", "203.0.113.9"), ("ip", "198.51.100.7"), ("hash", "d41d8cd98f00b204e9800998ecf8427e")} <= indicators
    assert ("hash", "not-a-hash") not in indicators


@pytest.mark.parametrize("when", ["1e308", "-1e308", "nan", "inf", "yesterday"])
def test_contract_out_of_range_result_time_falls_back_to_now(built_app, splunkd, splunk_home, xsoar, when):
    app, _ = built_app
    run = run_action_with(app, payload(splunkd, "x", result=dict(RESULT, _time=when)), splunk_home)
    assert run.returncode == 0, run.stderr
    (incident,) = xsoar.incidents.values()
    assert json.loads(incident["rawJSON"])["data"]["title"] == "Encoded PowerShell"


def test_without_a_dead_letter_file_the_event_goes_to_splunkd_log(built_app, splunkd):
    """SPLUNK_HOME unset (or the log not writable): the undelivered event is written to stderr, which
    splunkd.log keeps, instead of vanishing."""
    app, _ = built_app
    run = run_raw(app, json.dumps(payload(splunkd, "nowhere")), None)
    assert run.returncode == 2 and "no [destination:nowhere]" in run.stderr
    line = next(line for line in run.stderr.splitlines() if "dead_letter=" in line)
    record = json.loads(line.split("dead_letter=", 1)[1])
    assert record["event"]["data"]["title"] == "Encoded PowerShell" and "nowhere" in record["reason"]


def test_contract_retry_after_beyond_the_budget_dead_letters_at_once(built_app, splunkd, splunk_home, xsoar):
    """XSOAR answers 429 with Retry-After: 3600. Splunk kills an alert action after its maxtime (5 min by
    default), which would lose the event with no trace; the sink's retry budget (120 s) refuses a retry
    that long, so the event goes to the dead-letter log at once. A second 429 that asks for 0 s is
    retried and delivers; a re-run of the same alert is then a duplicate, not a second incident."""
    import time
    from intel_http import Fault
    app, _ = built_app
    xsoar.faults.append(Fault(429, {"id": "too_many", "status": 429}, headers={"Retry-After": "3600"}))
    started = time.monotonic()
    run = run_action_with(app, payload(splunkd, "x"), splunk_home)
    assert run.returncode == 2 and time.monotonic() - started < 60
    (record,) = dead_letters(splunk_home)
    assert "429" in record["reason"] and record["event"]["data"]["title"] == "Encoded PowerShell"
    assert xsoar.incidents == {}
    xsoar.faults.append(Fault(429, {"id": "too_many", "status": 429}, headers={"Retry-After": "0"}))
    run = run_action_with(app, payload(splunkd, "x"), splunk_home)
    assert run.returncode == 0 and "delivered=1" in run.stderr, run.stderr
    again = run_action_with(app, payload(splunkd, "x"), splunk_home)
    assert again.returncode == 0 and "duplicates=1" in again.stderr
    assert len(xsoar.incidents) == 1
