"""The wia_events modular input run as Splunk runs it: `python bin/wia_events.py` from the built app
with only bin/lib on the path, the scheme / validation / input-config XML on stdin, XML events on
stdout, the checkpoint in the checkpoint directory. Sources: the project's gateway, a real TAXII 2.1
server (medallion), a Kafka-protocol broker (tansu); the feed stand-in injects faults and invalid
events a real gateway never serves."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from wia_security import AlertBuilder, NetworkEventBuilder, validate_event

from .conftest import ROOT
from .splunkd_stub import Splunkd

sys.path.append(str(ROOT / "tests" / "servers"))  # after site-packages: tests/servers has modules named like packages (medallion, moto)

from intel_http import Fault  # noqa: E402
from wia_gateway_feed import GatewayFeed  # noqa: E402


def run_input(app: Path, args: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-I", "-S", str(app / "bin" / "wia_events.py"), *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def input_xml(splunkd: Splunkd, checkpoint_dir: Path, name: str, params: dict[str, str]) -> str:
    body = "".join(f'<param name="{k}">{escape(v)}</param>' for k, v in params.items())
    return (f"<input><server_host>sh1</server_host><server_uri>{splunkd.url}</server_uri>"
            f"<session_key>{splunkd.session_key}</session_key><checkpoint_dir>{checkpoint_dir}</checkpoint_dir>"
            f'<configuration><stanza name="wia_events://{name}" app="wia_security">{body}</stanza></configuration></input>')


def streamed(out: str) -> list[dict]:
    root = ET.fromstring(out)
    assert root.tag == "stream"
    return [{"time": e.findtext("time"), "sourcetype": e.findtext("sourcetype"), "source": e.findtext("source"),
             "event": json.loads(e.findtext("data"))} for e in root.findall("event")]


@pytest.fixture
def splunkd():
    with Splunkd() as server:
        yield server


@pytest.fixture
def events():
    made = [AlertBuilder().title(f"alert {n}").severity(n % 10).build().to_dict() for n in range(6)]
    made += [NetworkEventBuilder().kind("connection").protocol("TCP").src("10.0.0.1").dst("10.0.0.2").build().to_dict()]
    return made


def test_scheme_describes_every_argument(built_app):
    app, _ = built_app
    run = run_input(app, ["--scheme"], "")
    assert run.returncode == 0
    scheme = ET.fromstring(run.stdout)
    assert scheme.findtext("streaming_mode") == "xml" and scheme.findtext("use_external_validation") == "true"
    assert {a.get("name") for a in scheme.iter("arg")} == {"source_url", "credential", "username", "verify_tls",
                                                           "stix_content", "page_size", "max_events", "retries",
                                                           "retry_backoff", "client_certificate_credential",
                                                           "client_key_passphrase_credential", "settle",
                                                           "start_time"}


@pytest.mark.parametrize("params,ok,why", [
    ({"source_url": "gateway+https://gw.example"}, True, ""),
    ({"source_url": "ftp://x"}, False, "taxii+https://"),
    ({"source_url": "taxii+https://t.example/api1/collections/x/", "password": "s3cret"}, False, "storage/passwords"),
    ({"source_url": "gateway+https://user:pw@gw.example"}, False, "user:password"),
    # a raw "/" in the password: urllib.request sends "pa/s3cret" as the password
    ({"source_url": "gateway+https://user:pa/s3cret@gw.example"}, False, "user:password"),
    ({"source_url": "gateway+https://gw.example/feed?contact=soc@example.org"}, True, ""),
    ({"source_url": "gateway+https://gw.example", "page_size": "many"}, False, "whole number"),
    ({"source_url": "gateway+https://gw.example", "retries": "0", "retry_backoff": "0.5"}, True, ""),
    ({"source_url": "gateway+https://gw.example", "retries": "11"}, False, "retries must be a whole number from 0 to 10"),
    ({"source_url": "gateway+https://gw.example", "retry_backoff": "61"}, False, "retry_backoff must be seconds"),
    ({"source_url": "gateway+https://gw.example", "retry_backoff": "-1"}, False, "retry_backoff must be seconds"),
    ({"source_url": "kafka+ssl://b:9093/t", "client_certificate_credential": "c",
      "client_key_passphrase_credential": "p"}, True, ""),
    ({"source_url": "kafka://b:9092/t", "client_certificate_credential": "c"}, False,
     "a client certificate is presented in a TLS handshake, and source_url starts with kafka://: use kafka+ssl://"),
    ({"source_url": "gateway+https://gw.example", "client_certificate_credential": "c"}, False, "use kafka+ssl://"),
    ({"source_url": "kafka+ssl://b:9093/t", "client_key_passphrase_credential": "p"}, False,
     "set client_certificate_credential too"),
    ({"source_url": "kafka+ssl://b:9093/t", "passphrase": "s3cret"}, False, "storage/passwords"),
    # names that end in a secret's word: an exact list of names let them into inputs.conf in clear
    ({"source_url": "kafka+sasl://b:9092/t", "username": "u", "sasl_password": "s3cret"}, False, "storage/passwords"),
    ({"source_url": "gateway+https://gw.example", "access_token": "s3cret"}, False, "'access_token' would store a secret"),
    ({"source_url": "gateway+https://gw.example", "HEC-Token": "s3cret"}, False, "storage/passwords"),
    ({"source_url": "kafka+ssl://b:9093/t", "ssl_key_password": "s3cret"}, False, "storage/passwords"),
    ({"source_url": "gateway+https://gw.example", "secret_key": "s3cret"}, False, "storage/passwords"),
    # addresses no request can use: read on, a traceback (the bracket), "source sent invalid JSON" before any request
    # (a character outside ASCII), an unreachable host retried as if temporary (the ports)
    ({"source_url": "gateway+https://[::1"}, False, "source_url's '[::1' is not host[:port]"),
    ({"source_url": "gateway+https://例え.jp"}, False, "source_url holds '例' (U+4F8B), which a request cannot carry"),
    ({"source_url": "taxii+https://t.example/api1/collections/a b/"}, False, "source_url holds ' ' (U+0020)"),
    ({"source_url": "gateway+https://gw.example:99999"}, False, "source_url's 'gw.example:99999' is not host[:port]"),
    ({"source_url": "kafka://b1:9092,b2:x/t"}, False, "source_url's 'b2:x' is not host[:port]"),
    ({"source_url": "kafka://b1:9092,:9093/t"}, False, "source_url's ':9093' names no host"),
    ({"source_url": "kafka://b1:9092,,b2/t"}, True, ""),            # an empty entry is skipped, as the source does
    ({"source_url": "gateway+https://xn--r8jz45g.jp:8443/feed"}, True, ""),
    ({"source_url": "kafka://[::1]:9092,b2/t"}, True, ""),
    ({"source_url": "kafka+ssl://b:9093/t", "client_certificate_credential": "-----BEGIN PRIVATE KEY-----s3cret"},
     False, "parameter 'client_certificate_credential' holds PEM text"),
])
def test_validate_arguments(built_app, params, ok, why):
    app, _ = built_app
    items = "".join(f'<param name="{k}">{escape(v)}</param>' for k, v in params.items())
    run = run_input(app, ["--validate-arguments"], f'<items><item name="x">{items}</item></items>')
    assert (run.returncode == 0) is ok
    if not ok:
        assert why in ET.fromstring(run.stdout).findtext("message")
        assert "s3cret" not in run.stdout + run.stderr


def test_gateway_restart_neither_loses_nor_repeats(built_app, splunkd, tmp_path, events):
    """The project's gateway (`wia-security serve`), its arrival-order feed read across runs."""
    import requests
    from wia_security.connectors.gateway import GatewaySettings
    from wia_security.connectors.gateway.server import GatewayServer
    app, _ = built_app
    token = "splunk-test-gateway-token-0123456789"
    splunkd.passwords[("wia_security", "gw_token")] = token
    gateway = GatewayServer(GatewaySettings(tokens=[token], store=f"sqlite:///{tmp_path}/events.db",
                                            dead_letter=str(tmp_path / "dead.ndjson"), taxii=False)).start()
    try:
        def publish(batch):
            reply = requests.post(f"{gateway.url}/v1/events", json=batch, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert reply.status_code == 200, reply.text

        publish(events[:4])
        params = {"source_url": gateway.url.replace("http://", "gateway+http://"), "credential": "gw_token", "page_size": "2"}
        conf = input_xml(splunkd, tmp_path / "ckpt", "gw", params)
        first = run_input(app, [], conf)
        assert first.returncode == 0, first.stderr
        got = streamed(first.stdout)
        assert [g["event"] for g in got] == events[:4]
        assert {g["sourcetype"] for g in got} == {"wia:security:alert"} and got[0]["source"] == "wia_events://gw"
        assert float(got[0]["time"]) == pytest.approx(__import__("wia_security").timeutil.to_epoch_ms(events[0]["timestamp"]) / 1000)
        assert streamed(run_input(app, [], conf).stdout) == []                  # restart: nothing repeated
        publish(events[4:])
        small = input_xml(splunkd, tmp_path / "ckpt", "gw", {**params, "page_size": "1", "max_events": "2"})
        later = streamed(run_input(app, [], small).stdout)
        assert len(later) == 2                                                   # stopped at max_events ...
        later += streamed(run_input(app, [], conf).stdout)                       # ... and resumed after them
        assert [g["event"] for g in later] == events[4:]
    finally:
        gateway.stop()
    assert token not in first.stderr + first.stdout


def test_feed_failing_mid_run_resumes_from_the_checkpoint(built_app, splunkd, tmp_path, events):
    """A source error after the first page that outlasts the retries: that page is indexed and checkpointed,
    the run exits 1, the next run continues after it (feed stand-in: a real gateway does not fail on cue)."""
    app, _ = built_app
    splunkd.passwords[("wia_security", "gw_token")] = "gateway-test-token"
    with GatewayFeed() as feed:
        feed.events.extend(events)
        params = {"source_url": feed.url.replace("http://", "gateway+http://"), "credential": "gw_token", "page_size": "3",
                  "retries": "1", "retry_backoff": "0.01"}
        conf = input_xml(splunkd, tmp_path, "gw", params)
        feed.faults += [Fault(503, {"error": "busy"}, path_prefix="/v1/events")] * 2
        feed.faults.insert(0, Fault(200, {"events": events[:3], "next": "3"}, path_prefix="/v1/events"))
        crashed = run_input(app, [], conf)
        assert crashed.returncode == 1 and "gave up after 2 attempts; will resume" in crashed.stderr
        resumed = run_input(app, [], conf)
        assert resumed.returncode == 0
        assert [g["event"] for g in streamed(crashed.stdout) + streamed(resumed.stdout)] == events
        assert all(r.headers["authorization"] == "***" for r in feed.requests)


def test_invalid_events_are_logged_with_their_errors_not_indexed(built_app, splunkd, tmp_path, events):
    app, _ = built_app
    splunkd.passwords[("wia_security", "gw_token")] = "gateway-test-token"
    broken = dict(events[0], id="00000000-0000-4000-8000-0000000000bb", severity=99)
    with GatewayFeed() as feed:       # a real gateway validates on ingest: the stand-in serves the bad event
        feed.events.extend([broken, events[1]])
        run = run_input(app, [], input_xml(splunkd, tmp_path, "gw", {
            "source_url": feed.url.replace("http://", "gateway+http://"), "credential": "gw_token"}))
    assert [g["event"]["id"] for g in streamed(run.stdout)] == [events[1]["id"]]
    assert f"event_id={broken['id']} rejected: /severity" in run.stderr and "invalid=1" in run.stderr


def test_missing_credential_is_a_clear_error(built_app, splunkd, tmp_path):
    app, _ = built_app
    run = run_input(app, [], input_xml(splunkd, tmp_path, "gw", {"source_url": "gateway+http://127.0.0.1:9",
                                                                   "credential": "nope"}))
    assert run.returncode == 2 and "no credential 'nope'" in run.stderr and "setup page" in run.stderr


def test_taxii_collection_in_small_pages_across_restarts(built_app, splunkd, tmp_path, events):
    """medallion pages of 3 objects: an event's STIX objects span pages, runs stop at max_events and
    restart from the checkpoint; every event arrives exactly once, equal to what was published."""
    from medallion_subprocess import PASSWORD, USER, Medallion, publish_event
    app, _ = built_app
    samples = [validate_event(json.loads(p.read_text()), lenient=True).event for p in sorted((ROOT / "samples").glob("*.json"))]
    splunkd.passwords[("wia_security", "taxii")] = PASSWORD
    with Medallion() as taxii:
        for event in samples[:4]:
            publish_event(taxii, event)
        params = {"source_url": taxii.collection_url.replace("http://", "taxii+http://"), "credential": "taxii",
                  "username": USER, "page_size": "3", "max_events": "2",
                  "settle": "0"}      # read at once what was just published (the window: test_modular_input_taxii_settle.py)
        conf = input_xml(splunkd, tmp_path, "taxii", params)
        seen: list[dict] = []
        for _ in range(6):
            run = run_input(app, [], conf)
            assert run.returncode == 0, run.stderr
            seen += streamed(run.stdout)
        for event in samples[4:]:
            publish_event(taxii, event)
        for _ in range(6):
            seen += streamed(run_input(app, [], conf).stdout)
    ids = [s["event"]["id"] for s in seen]
    assert sorted(ids) == sorted(e["id"] for e in samples) and len(ids) == len(set(ids))
    by_id = {s["event"]["id"]: s for s in seen}
    for event in samples:
        assert by_id[event["id"]]["event"] == event
        assert by_id[event["id"]]["sourcetype"] == f"wia:security:{event['type']}"


@pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning", "ignore:open_text is deprecated:DeprecationWarning")
def test_kafka_topic_offsets_checkpointed_across_restarts(built_app, splunkd, tmp_path, events):
    """tansu (a Kafka-protocol broker) with a two-partition topic, written by the project's kafka sink
    (key = event id, value = event JSON); the input reads with the vendored kafka-python, resumes
    from its own per-partition offsets, and reports a message that is not a WIA event."""
    from servers.tansu import start_tansu
    from wia_security.connectors import open_sink
    app, _ = built_app
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=2)
        with open_sink(f"kafka://{broker.bootstrap}/{topic}") as sink:
            assert sink.send(events[:5]).merge(sink.flush()).delivered == 5
        params = {"source_url": f"kafka://{broker.bootstrap}/{topic}", "page_size": "2", "max_events": "3"}
        conf = input_xml(splunkd, tmp_path, "kafka", params)
        seen: list[dict] = []
        for _ in range(3):
            run = run_input(app, [], conf)
            assert run.returncode == 0, run.stderr
            seen += streamed(run.stdout)
        assert sorted(s["event"]["id"] for s in seen) == sorted(e["id"] for e in events[:5])
        from confluent_kafka import Producer
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        producer.produce(topic, key=b"junk", value=b"{not json", partition=0)
        assert producer.flush(15) == 0
        del producer                      # librdkafka stops its threads when the Producer is freed
        with open_sink(f"kafka://{broker.bootstrap}/{topic}") as sink:
            sink.send(events[5:])
            sink.flush()
        last = run_input(app, [], conf)
        seen += streamed(last.stdout)
        assert f"{topic}/0@" in last.stderr and "not a WIA event" in last.stderr
    finally:
        broker.kill()
    ids = [s["event"]["id"] for s in seen]
    assert sorted(ids) == sorted(e["id"] for e in events) and len(ids) == len(set(ids))
    assert {s["sourcetype"] for s in seen} == {"wia:security:alert", "wia:security:network_event"}
