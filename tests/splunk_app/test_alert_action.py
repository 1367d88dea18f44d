"""The "Send as WIA event" alert action run as Splunk runs it: `python bin/wia_send_event.py --execute`
from the built app (only bin/lib on the path) with the alert payload JSON on stdin; the destination
and its secret come from splunkd (stand-in) and the delivery goes through the vendored connectors to
the Splunk SOAR and XSOAR contract servers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT
from .splunkd_stub import Splunkd

sys.path.append(str(ROOT / "tests" / "servers"))  # after site-packages: tests/servers has modules named like packages (medallion, moto)

from splunk_soar_contract import SplunkSoarServer  # noqa: E402
from xsoar_contract import XsoarServer  # noqa: E402
from intel_http import Fault  # noqa: E402

RESULT = {"_time": "1765704600.25", "search_name": "x", "signature": "Encoded PowerShell", "severity": "high",
          "dest": "WS-17", "dest_ip": "10.1.2.3", "src_ip": "203.0.113.9", "dest_port": "443", "user": "bob",
          "mitre_technique_id": "T1059.001", "file_hash": "d41d8cd98f00b204e9800998ecf8427e", "url": "http://evil.example/x",
          "category": "malware", "_raw": "raw line"}


def payload(splunkd: Splunkd, destination: str, result: dict | None = None, sid: str = "scheduler__admin__search__RMD5_at_1") -> dict:
    return {"app": "search", "owner": "admin", "search_name": "PowerShell from Office", "sid": sid,
            "results_link": "https://splunk.example/app/search/@go?sid=" + sid, "server_host": "sh1",
            "server_uri": splunkd.url, "session_key": splunkd.session_key,
            "configuration": {"destination": destination, "title": "", "severity": "5", "category": "other"},
            "result": dict(RESULT if result is None else result)}


def run_action(app: Path, body: dict, splunk_home: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "SPLUNK_HOME": str(splunk_home)}
    return subprocess.run([sys.executable, "-I", "-S", str(app / "bin" / "wia_send_event.py"), "--execute"],
                          input=json.dumps(body), capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def splunkd():
    with Splunkd() as server:
        yield server


@pytest.fixture
def splunk_home(tmp_path):
    (tmp_path / "var" / "log" / "splunk").mkdir(parents=True)
    return tmp_path


def test_contract_alert_result_becomes_a_soar_container(built_app, splunkd, splunk_home):
    app, _ = built_app
    with SplunkSoarServer() as soar:
        splunkd.confs["wia_security"] = {"destination:soar": {"url": soar.url.replace("http://", "phantom+http://"),
                                                             "credential": "soar_token", "verify_tls": "true"}}
        splunkd.passwords[("wia_security", "soar_token")] = soar.token
        run = run_action(app, payload(splunkd, "soar"), splunk_home)
        assert run.returncode == 0, run.stderr
        assert "delivered=1" in run.stderr and soar.token not in run.stderr
        (container,) = soar.containers.values()
        event = container["data"]["wia_event"]
        assert event["type"] == "alert" and event["data"]["title"] == "Encoded PowerShell"
        assert event["severity"] == 6 and event["data"]["category"] == "malware"            # CIM "high" -> 6
        assert event["timestamp"] == "2025-12-14T09:30:00.250Z"
        assert event["mitre"]["sub_technique"] == "T1059.001" and event["mitre"]["tactic"] == "TA0002"
        assert event["context"]["host"] == {"hostname": "WS-17", "ip": ["10.1.2.3"]}
        assert event["context"]["network"]["source"]["ip"] == "203.0.113.9"
        assert event["data"]["detection_rule"]["name"] == "PowerShell from Office"
        assert {(i["type"], i["value"]) for i in event["data"]["indicators"]} == {
            ("ip", "203.0.113.9"), ("ip", "10.1.2.3"), ("url", "http://evil.example/x"),
            ("hash", "d41d8cd98f00b204e9800998ecf8427e")}
        assert event["meta"]["correlation_id"] == "scheduler__admin__search__RMD5_at_1" and event["meta"]["raw"] == "raw line"
        # Splunk re-running the same alert for the same result: same event id, SOAR keeps one container.
        again = run_action(app, payload(splunkd, "soar"), splunk_home)
        assert again.returncode == 0 and "duplicates=1" in again.stderr
        assert len(soar.containers) == 1


def test_contract_alert_result_becomes_an_xsoar_incident(built_app, splunkd, splunk_home):
    """Python 3.12+ has no distutils; demisto-py imports distutils.version: the app ships that module."""
    app, _ = built_app
    with XsoarServer() as xsoar:
        splunkd.confs["wia_security"] = {"destination:xsoar": {"url": xsoar.url.replace("http://", "xsoar+http://"),
                                                              "credential": "xsoar_key"}}
        splunkd.passwords[("wia_security", "xsoar_key")] = xsoar.api_key
        run = run_action(app, payload(splunkd, "xsoar"), splunk_home)
        assert run.returncode == 0, run.stderr
        (incident,) = xsoar.incidents.values()
        assert incident["type"] == "WIA Security Event" and incident["severity"] == 3
        assert json.loads(incident["rawJSON"])["data"]["title"] == "Encoded PowerShell"


def test_undeliverable_alert_goes_to_the_dead_letter_log(built_app, splunkd, splunk_home):
    app, _ = built_app
    with SplunkSoarServer() as soar:
        soar.faults += [Fault(500, {"failed": True, "message": "boom"}, path_prefix="/rest/container")] * 20
        splunkd.confs["wia_security"] = {"destination:soar": {
            "url": soar.url.replace("http://", "phantom+http://") + "?max_attempts=2&initial_backoff=0",
            "credential": "soar_token"}}
        splunkd.passwords[("wia_security", "soar_token")] = soar.token
        run = run_action(app, payload(splunkd, "soar"), splunk_home)
    assert run.returncode == 2 and "boom" in run.stderr
    (line,) = (splunk_home / "var" / "log" / "splunk" / "wia_security_dead_letter.log").read_text().splitlines()
    record = json.loads(line)
    assert "gave up after 2 attempt(s)" in record["reason"] and record["event"]["data"]["title"] == "Encoded PowerShell"


def test_unknown_destination_or_credential_is_a_clear_error(built_app, splunkd, splunk_home):
    app, _ = built_app
    run = run_action(app, payload(splunkd, "nowhere"), splunk_home)
    assert run.returncode == 2 and "no [destination:nowhere] in wia_security.conf" in run.stderr
    splunkd.confs["wia_security"] = {"destination:soar": {"url": "phantom+https://soar.example", "credential": "missing"}}
    run = run_action(app, payload(splunkd, "soar"), splunk_home)
    assert run.returncode == 2 and "no credential 'missing'" in run.stderr


def test_a_destination_whose_connector_the_app_does_not_ship_is_named_as_such(built_app, splunkd, splunk_home):
    # The app ships SOAR, XSOAR and HEC; an Elasticsearch URL used to end in "ModuleNotFoundError: No module ..."
    app, _ = built_app
    splunkd.confs["wia_security"] = {"destination:es": {"url": "elasticsearch+https://es.example:9200"}}
    run = run_action(app, payload(splunkd, "es"), splunk_home)
    assert run.returncode == 2, run.stderr
    assert "elasticsearch destinations: not included in this build of wia-security" in run.stderr
    (line,) = (splunk_home / "var" / "log" / "splunk" / "wia_security_dead_letter.log").read_text().splitlines()
    assert "not included in this build" in json.loads(line)["reason"]


def test_a_result_that_cannot_make_a_valid_alert_is_refused(built_app, splunkd, splunk_home):
    app, _ = built_app
    run = run_action(app, payload(splunkd, "soar", result={"mitre_technique_id": "T9999"}), splunk_home)
    assert run.returncode == 2 and "does not make a valid WIA alert" in run.stderr and "T9999" in run.stderr


def test_not_run_by_splunk():
    run = subprocess.run([sys.executable, "-I", "-S", str(ROOT / "splunk_app" / "wia_security" / "bin" / "wia_send_event.py")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--execute" in run.stderr


def test_alert_result_reaches_a_wia_gateway_through_its_hec_endpoint(built_app, splunkd, splunk_home, tmp_path):
    """The project's gateway accepts `Splunk <token>` on its HEC-compatible endpoint: the vendored HEC
    sink delivers there (`splunk+http://gateway`), and the event comes out of the gateway's feed."""
    import requests
    from wia_security.connectors.gateway import GatewaySettings
    from wia_security.connectors.gateway.server import GatewayServer
    app, _ = built_app
    token = "alert-test-gateway-token-0123456789"
    gateway = GatewayServer(GatewaySettings(tokens=[token], store=f"sqlite:///{tmp_path}/events.db",
                                            dead_letter=str(tmp_path / "dead.ndjson"), taxii=False)).start()
    try:
        splunkd.confs["wia_security"] = {"destination:gw": {"url": gateway.url.replace("http://", "splunk+http://"),
                                                           "credential": "gw_token"}}
        splunkd.passwords[("wia_security", "gw_token")] = token
        run = run_action(app, payload(splunkd, "gw"), splunk_home)
        assert run.returncode == 0, run.stderr
        feed = requests.get(f"{gateway.url}/v1/events", params={"after": "0"}, headers={"Authorization": f"Bearer {token}"},
                            timeout=30).json()["events"]
    finally:
        gateway.stop()
    (event,) = feed
    assert event["data"]["title"] == "Encoded PowerShell" and event["mitre"]["sub_technique"] == "T1059.001"


def test_contract_cim_filler_values_in_address_and_port_fields_do_not_cost_the_alert(built_app, splunkd, splunk_home):
    """CIM fills a field it cannot extract with "unknown"; a port can be out of range. The builders refuse such
    values (an IP that is no address, a port past 65535), which made the whole alert a dead letter; they are left
    out of the structured fields (the result's _raw keeps them) and the alert is delivered."""
    app, _ = built_app
    result = {**RESULT, "dest_ip": "unknown", "src_ip": ["unknown", "203.0.113.9"], "dest_port": "70000",
              "src_port": "-1"}
    with SplunkSoarServer() as soar:
        splunkd.confs["wia_security"] = {"destination:soar": {"url": soar.url.replace("http://", "phantom+http://"),
                                                             "credential": "soar_token"}}
        splunkd.passwords[("wia_security", "soar_token")] = soar.token
        run = run_action(app, payload(splunkd, "soar", result=result), splunk_home)
        assert run.returncode == 0, run.stderr
        (container,) = soar.containers.values()
    event = container["data"]["wia_event"]
    assert event["context"]["host"] == {"hostname": "WS-17"}
    assert event["context"]["network"]["source"] == {"ip": "203.0.113.9"}          # the multivalue field's address
    assert "70000" not in json.dumps(event["context"]) and "-1" not in json.dumps(event["context"]["network"])
    assert {(i["type"], i["value"]) for i in event["data"]["indicators"] if i["type"] == "ip"} == {("ip", "203.0.113.9")}


def _results_csv_gz(path: Path, rows: list[dict]) -> Path:
    """A results file as Splunk writes one for an alert's action (results.csv.gz in the search's dispatch folder):
    a multivalue field's values newline-joined in its column and as $v1$;$v2$ ("$" doubled) in __mv_<field>."""
    import csv
    import gzip
    import io
    fields = sorted({k for row in rows for k in row})
    header = [c for f in fields for c in (f, f"__mv_{f}")]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        line = []
        for f in fields:
            value = row.get(f, "")
            values = value if isinstance(value, list) else None
            line += ["\n".join(values) if values else value,
                     ";".join("$" + v.replace("$", "$$") + "$" for v in values) if values else ""]
        writer.writerow(line)
    path.write_bytes(gzip.compress(text.getvalue().encode("utf-8")))
    return path


def test_contract_an_alert_triggered_once_sends_every_result(built_app, splunkd, splunk_home, tmp_path):
    """An alert triggered once (Splunk Web's default trigger) gets all its results in results_file and only the first
    in `result`: the action sent that first row alone and the rest were lost, unsaid."""
    app, _ = built_app
    rows = [dict(RESULT, dest="WS-17", _raw="x" * 200_000),      # over csv's 128 KiB field limit
            dict(RESULT, dest="WS-18", src_ip=["203.0.113.9", "198.51.100.7"], url="http://evil.example/$1"),
            dict(RESULT, dest="WS-19", signature="Mimikatz", category="intrusion")]
    body = payload(splunkd, "soar", result=rows[0])
    body["results_file"] = str(_results_csv_gz(tmp_path / "results.csv.gz", rows))
    with SplunkSoarServer() as soar:
        splunkd.confs["wia_security"] = {"destination:soar": {"url": soar.url.replace("http://", "phantom+http://"),
                                                             "credential": "soar_token"}}
        splunkd.passwords[("wia_security", "soar_token")] = soar.token
        run = run_action(app, body, splunk_home)
        again = run_action(app, body, splunk_home)
        events = [c["data"]["wia_event"] for c in soar.containers.values()]
    assert run.returncode == 0, run.stderr
    assert "results=3 delivered=3 duplicates=0" in run.stderr
    by_host = {e["context"]["host"]["hostname"]: e for e in events}
    assert sorted(by_host) == ["WS-17", "WS-18", "WS-19"]
    assert by_host["WS-17"]["meta"]["raw"] == "x" * 200_000
    assert {i["value"] for i in by_host["WS-18"]["data"]["indicators"] if i["type"] in ("ip", "url")} == {
        "203.0.113.9", "198.51.100.7", "10.1.2.3", "http://evil.example/$1"}
    assert by_host["WS-18"]["context"]["network"]["source"]["ip"] == "203.0.113.9"     # a multivalue's first value
    assert by_host["WS-19"]["data"]["title"] == "Mimikatz" and by_host["WS-19"]["data"]["category"] == "intrusion"
    # the same alert run again: the same three ids, SOAR keeps three containers
    assert again.returncode == 0 and "results=3 delivered=0 duplicates=3" in again.stderr and len(events) == 3


@pytest.mark.parametrize("content", [None, b"\x1f\x8b not gzip"])
def test_contract_an_unreadable_results_file_sends_the_first_result_and_says_so(built_app, splunkd, splunk_home,
                                                                                 tmp_path, content):
    app, _ = built_app
    path = tmp_path / "results.csv.gz"
    if content is not None:
        path.write_bytes(content)
    body = dict(payload(splunkd, "soar"), results_file=str(path))
    with SplunkSoarServer() as soar:
        splunkd.confs["wia_security"] = {"destination:soar": {"url": soar.url.replace("http://", "phantom+http://"),
                                                             "credential": "soar_token"}}
        splunkd.passwords[("wia_security", "soar_token")] = soar.token
        run = run_action(app, body, splunk_home)
        titles = [c["data"]["wia_event"]["data"]["title"] for c in soar.containers.values()]
    assert titles == ["Encoded PowerShell"]
    assert run.returncode == 2, run.stderr
    assert f"the results file {path} cannot be read" in run.stderr and "only the payload's first result is sent" in run.stderr


@pytest.mark.parametrize("where,extra", [("per_result_alert/tmp_0.csv.gz", {}), ("results.csv.gz", {"result_id": "0"})])
def test_contract_an_alert_for_each_result_sends_its_result_as_before(built_app, splunkd, splunk_home, tmp_path,
                                                                       where, extra):
    """Triggered for each result, Splunk runs the action once per result (its results_file in per_result_alert/, or
    a result_id from newer Splunk): the payload's result alone, with the event id it always had."""
    app, _ = built_app
    (tmp_path / "per_result_alert").mkdir()
    other = dict(RESULT, dest="WS-99")
    body = dict(payload(splunkd, "soar"), results_file=str(_results_csv_gz(tmp_path / where, [RESULT, other])), **extra)
    with SplunkSoarServer() as soar:
        splunkd.confs["wia_security"] = {"destination:soar": {"url": soar.url.replace("http://", "phantom+http://"),
                                                             "credential": "soar_token"}}
        splunkd.passwords[("wia_security", "soar_token")] = soar.token
        run = run_action(app, body, splunk_home)
        plain = run_action(app, payload(splunkd, "soar"), splunk_home)       # no results_file: the same event
        hosts = [c["data"]["wia_event"]["context"]["host"]["hostname"] for c in soar.containers.values()]
    assert run.returncode == 0 and "results=1 delivered=1" in run.stderr, run.stderr
    assert plain.returncode == 0 and "duplicates=1" in plain.stderr and hosts == ["WS-17"]
