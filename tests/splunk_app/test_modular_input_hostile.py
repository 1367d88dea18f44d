"""The wia_events modular input against hostile sources and settings, run as Splunk runs it (built app,
config XML on stdin): a feed serving things that are not WIA event objects, oversized events, characters
XML cannot carry, a corrupt checkpoint, bad numbers in the settings, a Kafka tombstone. Each bad item is
reported in splunkd.log (stderr) with why and counted, the good ones are indexed, the checkpoint never
skips past what was not read, and a run never dies on one item (which would block the input for good)."""
from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import pytest

from wia_security import AlertBuilder

from .conftest import APP_SRC, ROOT
from .splunkd_stub import Splunkd
from .test_modular_input import input_xml, run_input, streamed

sys.path.append(str(ROOT / "tests" / "servers"))  # after site-packages: tests/servers has modules named like packages (medallion, moto)

from intel_http import Fault  # noqa: E402
from wia_gateway_feed import GatewayFeed, plain_stix_page_with_an_unmappable_indicator  # noqa: E402

TOKEN = "gateway-feed-token-61d0c7a94e2b"
SESSION_KEY = "splunkd-session-key-0b7f3e91"


def counts(stderr: str) -> dict[str, int]:
    line = next(line for line in stderr.splitlines() if line.startswith("INFO wia_events"))
    return {k: int(v) for k, v in re.findall(r"(emitted|invalid|duplicates|skipped)=(\d+)", line)}


@pytest.fixture
def splunkd():
    with Splunkd(session_key=SESSION_KEY) as server:
        server.passwords[("wia_security", "gw")] = TOKEN
        yield server


@pytest.fixture
def feed():
    with GatewayFeed(token=TOKEN) as server:
        yield server


def gateway_conf(splunkd, feed, tmp_path, **extra) -> str:
    return input_xml(splunkd, tmp_path / "ckpt", "gw", {"source_url": feed.url.replace("http://", "gateway+http://"),
                                                        "credential": "gw", **extra})


def alerts(n: int) -> list[dict]:
    return [AlertBuilder().title(f"alert {i}").severity(i % 10).build().to_dict() for i in range(n)]


def test_items_that_are_not_event_objects_are_reported_and_the_run_goes_on(built_app, splunkd, feed, tmp_path):
    """They used to end the run with a traceback before the checkpoint: every later run died on the
    same item, so the input never moved again."""
    app, _ = built_app
    good = alerts(3)
    feed.events.extend([good[0], "junk", 7, None, [good[1]], good[1], good[2]])
    conf = gateway_conf(splunkd, feed, tmp_path, page_size="3")
    run = run_input(app, [], conf)
    assert run.returncode == 0, run.stderr
    assert [g["event"] for g in streamed(run.stdout)] == good
    assert counts(run.stderr) == {"emitted": 3, "invalid": 4, "duplicates": 0, "skipped": 0}
    assert "a JSON str, not a WIA event object" in run.stderr and "a JSON NoneType" in run.stderr
    assert "Traceback" not in run.stderr
    again = run_input(app, [], conf)
    assert streamed(again.stdout) == [] and counts(again.stderr)["invalid"] == 0      # checkpoint moved past them


@pytest.mark.parametrize("body", [[1, 2], {"events": "none"}, "text"])
def test_an_answer_that_is_not_a_feed_page_stops_at_the_checkpoint(built_app, splunkd, feed, tmp_path, body):
    app, _ = built_app
    events = alerts(4)
    feed.events.extend(events)
    conf = gateway_conf(splunkd, feed, tmp_path, page_size="2")
    feed.faults.append(Fault(200, body, path_prefix="/v1/events"))
    feed.faults.insert(0, Fault(200, {"events": events[:2], "next": "2"}, path_prefix="/v1/events"))
    broken = run_input(app, [], conf)
    assert broken.returncode == 1 and "will resume from the last checkpoint" in broken.stderr
    assert "Traceback" not in broken.stderr
    resumed = run_input(app, [], conf)
    assert [g["event"] for g in streamed(broken.stdout) + streamed(resumed.stdout)] == events


def test_an_event_over_the_sourcetype_truncate_is_rejected_with_its_size(built_app, splunkd, feed, tmp_path):
    """props.conf TRUNCATE would cut it and index broken JSON; the input says so instead."""
    app, _ = built_app
    big, small = alerts(2)
    big["data"]["description"] = "x" * 1_100_000
    feed.events.extend([big, small])
    run = run_input(app, [], gateway_conf(splunkd, feed, tmp_path))
    assert run.returncode == 0, run.stderr
    assert [g["event"]["id"] for g in streamed(run.stdout)] == [small["id"]]
    assert f"event_id={big['id']} rejected: the event is 1,1" in run.stderr and "TRUNCATE of 1,048,576" in run.stderr
    assert counts(run.stderr) == {"emitted": 1, "invalid": 1, "duplicates": 0, "skipped": 0}


def test_max_event_bytes_is_the_truncate_of_every_wia_sourcetype():
    sys.path.insert(0, str(APP_SRC / "bin"))
    try:
        from wia_app.modinput import MAX_EVENT_BYTES
    finally:
        sys.path.remove(str(APP_SRC / "bin"))
    props = (APP_SRC / "default" / "props.conf").read_text()
    stanzas = re.findall(r"^\[(wia:security:[a-z_]+)\]", props, re.M)
    truncates = re.findall(r"^TRUNCATE\s*=\s*(\d+)", props, re.M)
    assert len(stanzas) == 7 and truncates == [str(MAX_EVENT_BYTES)] * len(stanzas)


def test_characters_xml_cannot_carry_are_escaped_in_the_event_json(built_app, splunkd, feed, tmp_path):
    """A lone surrogate (what a JSON \\ud800 escape decodes to) used to kill the run with
    UnicodeEncodeError; U+FFFF would make the stream invalid XML for splunkd."""
    app, _ = built_app
    odd, plain = alerts(2)
    odd["data"]["title"] = "攻撃 \ud800 \uffff \u0007 end"
    feed.events.extend([odd, plain])
    run = run_input(app, [], gateway_conf(splunkd, feed, tmp_path))
    assert run.returncode == 0, run.stderr
    got = streamed(run.stdout)                      # ET parses the whole stream: it is well-formed XML
    assert [g["event"] for g in got] == [odd, plain]
    data = ET.fromstring(run.stdout).find("event").findtext("data")
    assert "攻撃" in data and "\\ud800" in data and "\\uffff" in data


def test_a_corrupt_checkpoint_stops_the_input_with_a_clear_error(built_app, splunkd, feed, tmp_path):
    """Starting over would index everything the source still holds a second time."""
    app, _ = built_app
    feed.events.extend(alerts(2))
    conf = gateway_conf(splunkd, feed, tmp_path)
    assert len(streamed(run_input(app, [], conf).stdout)) == 2
    (checkpoint,) = (tmp_path / "ckpt").glob("wia_events_*.json")
    checkpoint.write_text('{"position": {"cursor": "2"}, "recent_')
    run = run_input(app, [], conf)
    assert run.returncode == 2 and f"checkpoint {checkpoint} is unreadable" in run.stderr
    assert "Traceback" not in run.stderr and "<event" not in run.stdout


@pytest.mark.parametrize("value", ["0", "-1", "²", "1e3", "9" * 12])
def test_page_size_and_max_events_must_be_positive_whole_numbers(built_app, value):
    app, _ = built_app
    for key in ("page_size", "max_events"):
        items = (f'<param name="source_url">gateway+https://gw.example</param>'
                 f'<param name="{key}">{escape(value)}</param>')
        run = run_input(app, ["--validate-arguments"], f'<items><item name="x">{items}</item></items>')
        assert run.returncode == 1 and f"{key} must be a whole number" in ET.fromstring(run.stdout).findtext("message")


def test_malformed_xml_from_splunkd_is_a_clear_error(built_app):
    app, _ = built_app
    run = run_input(app, ["--validate-arguments"], "<items><item")
    assert run.returncode == 1 and "not XML" in ET.fromstring(run.stdout).findtext("message")
    run = run_input(app, [], "<input><configuration>")
    assert run.returncode == 2 and "not XML" in run.stderr and "Traceback" not in run.stderr


def test_secrets_never_reach_splunkd_log(built_app, splunkd, tmp_path):
    """A source that repeats the request in its status line (here: a proxy) cannot put the bearer token
    or the session key into splunkd.log."""
    import http.server
    import threading

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(502, f"bad gateway for {self.headers.get('Authorization')} {SESSION_KEY}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        app, _ = built_app
        run = run_input(app, [], input_xml(splunkd, tmp_path, "gw", {
            "source_url": f"gateway+http://127.0.0.1:{server.server_address[1]}", "credential": "gw",
            "retries": "2", "retry_backoff": "0.01"}))
    finally:
        server.shutdown()
        server.server_close()
    assert run.returncode == 1 and "502" in run.stderr and "Bearer ***" in run.stderr
    assert run.stderr.count("WARNING wia_events") == 2          # the retry lines are masked too
    assert TOKEN not in run.stderr + run.stdout and SESSION_KEY not in run.stderr + run.stdout


@pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning", "ignore:open_text is deprecated:DeprecationWarning")
def test_kafka_tombstone_is_reported_and_the_partition_moves_on(built_app, splunkd, tmp_path):
    """A null-valued message (a compacted topic's tombstone) used to raise AttributeError and end every
    run at the same offset."""
    from servers.tansu import start_tansu
    app, _ = built_app
    events = alerts(3)
    broker = start_tansu()
    try:
        topic = broker.topic_with_a_tombstone(events)
        conf = input_xml(splunkd, tmp_path, "kafka", {"source_url": f"kafka://{broker.bootstrap}/{topic}"})
        run = run_input(app, [], conf)
        again = run_input(app, [], conf)
    finally:
        broker.kill()
    assert run.returncode == 0, run.stderr
    assert sorted(g["event"]["id"] for g in streamed(run.stdout)) == sorted(e["id"] for e in events)
    assert f"{topic}/0@1: not a WIA event: no value (a tombstone)" in run.stderr
    assert counts(run.stderr) == {"emitted": 3, "invalid": 0, "duplicates": 0, "skipped": 1}
    assert streamed(again.stdout) == []


@pytest.mark.parametrize("answer,why", [
    (b"<html>proxy login</html>", "no usable answer from splunkd: JSONDecodeError"),
    (b"[1, 2]", "splunkd answered a JSON list, not an object"),
    (b'{"entry": [{"content": {"realm": "wia_security"}}]}', "has no clear_password"),
])
def test_an_unusable_splunkd_answer_is_a_clear_error(built_app, tmp_path, answer, why):
    """splunkd (or a proxy in front of it) answering storage/passwords with something that is not a
    password entry used to end the input with a traceback."""
    class Odd(Splunkd):
        def handle(self, req, headers):
            if "storage/passwords" in req.path:
                return 200, answer, {}
            return super().handle(req, headers)

    app, _ = built_app
    with Odd(session_key=SESSION_KEY) as odd:
        run = run_input(app, [], input_xml(odd, tmp_path, "gw", {"source_url": "gateway+http://127.0.0.1:9",
                                                                "credential": "gw"}))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert why in run.stderr
    assert SESSION_KEY not in run.stderr


def test_a_taxii_date_header_that_is_not_a_timestamp_is_never_checkpointed(built_app, splunkd, feed, tmp_path):
    """Checkpointed, it used to fail every later run with a ValueError traceback."""
    from wia_security import convert
    app, _ = built_app
    alert = alerts(1)[0]
    feed.faults.append(Fault(200, {"more": False, "objects": convert(alert, to="stix")["objects"]},
                             headers={"X-TAXII-Date-Added-Last": "soon", "Content-Type": "application/taxii+json;version=2.1"},
                             path_prefix="/objects/"))
    conf = input_xml(splunkd, tmp_path, "taxii", {"source_url": feed.url.replace("http://", "taxii+http://"), "credential": "gw"})
    run = run_input(app, [], conf)
    assert run.returncode == 1 and "X-TAXII-Date-Added-Last 'soon' is not a timestamp" in run.stderr
    assert streamed(run.stdout) == [] and not list(tmp_path.glob("wia_events_*.json"))


def test_plain_stix_one_unreadable_indicator_skips_only_its_event(built_app, splunkd, feed, tmp_path):
    """stix_content=stix: a page used to be read all or nothing, so one indicator the reader cannot map
    dropped every event of the page; now it skips only itself, reported with its JSON pointer."""
    app, _ = built_app

    feed.faults.append(plain_stix_page_with_an_unmappable_indicator("2025-03-01"))
    conf = input_xml(splunkd, tmp_path, "taxii", {"source_url": feed.url.replace("http://", "taxii+http://"),
                                                  "credential": "gw", "stix_content": "stix"})
    run = run_input(app, [], conf)
    values = sorted(g["event"]["data"]["indicators"][0]["value"] for g in streamed(run.stdout))
    assert values == ["198.51.100.1", "bad.example"], run.stderr
    assert "stix at /1/pattern" in run.stderr and counts(run.stderr)["skipped"] == 1     # the page's objects array



@pytest.mark.parametrize("scheme", ["kafka+sasl_ssl", "kafka+sasl", "kafka+ssl"])
def test_a_kafka_url_with_a_password_is_refused_without_repeating_it(built_app, splunkd, tmp_path, scheme):
    """Credentials belong in the input's 'credential' (Splunk's password store), never in inputs.conf."""
    app, _ = built_app
    secret = "kafka-sasl-password-7d41c2"
    run = run_input(app, [], input_xml(splunkd, tmp_path, "kafka", {
        "source_url": f"{scheme}://svc-wia:{secret}@broker.example:9093/wia-events"}))
    assert run.returncode == 2 and "source_url must not carry user:password" in run.stderr
    assert secret not in run.stderr + run.stdout and "svc-wia" not in run.stderr


def test_kafka_sasl_ssl_urls_are_read_and_redacted(built_app):
    """`kafka+sasl_ssl://` was not split at all (urlsplit takes no underscore in a scheme): the source
    refused it with 'use one of ...', naming the URL with any user:password still in it."""
    app, _ = built_app
    code = """import sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/lib"]
from wia_app.pull import SourceError, _redact, open_source
source = open_source("kafka+sasl_ssl://b1.example:9093,b2.example:9093/wia-events", secret="pw", username="u")
print(source.config["security_protocol"], source.brokers, source.topic, repr(source))
try:
    open_source("kafka+sasl_ssl://svc:hunter2-secret@b1.example:9093/wia-events")
except SourceError as exc:
    print(exc)
print(_redact("taxii+https://svc:hunter2-secret@intel.example:x/api1/?token=hunter2-secret"))
print(_redact("svc:hunter2-secret@b1.example:9093/t?token=hunter2-secret"))
"""
    run = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(app / "bin")], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == ("SASL_SSL ['b1.example:9093', 'b2.example:9093'] wia-events "
                        "<KafkaSource kafka+sasl_ssl://b1.example:9093,b2.example:9093/wia-events>")
    assert "credentials go in 'credential'" in lines[1] and "(kafka+sasl_ssl://b1.example:9093/wia-events)" in lines[1]
    assert lines[2:] == ["taxii+https://intel.example/api1/", "b1.example:9093/t"]
    assert "hunter2" not in run.stdout + run.stderr


@pytest.mark.parametrize("url,position,why", [
    # docs: a TAXII position stored past the server's clock is moved back by hand; a typo ended every run with a
    # traceback (ValueError: Invalid isoformat string) instead of naming the file
    ("taxii+http://127.0.0.1:9/api1/collections/c/", {"added_after": "1 Dec 2026"},
     "\"added_after\" is '1 Dec 2026', not an RFC 3339 date-time"),
    ("taxii+http://127.0.0.1:9/api1/collections/c/", {"added_after": 5}, "\"added_after\" is '5'"),
    ("kafka://127.0.0.1:9/topic", {"offsets": {"0": "42"}}, "\"offsets\" is \"{'0': '42'}\", not partition numbers"),
    ("kafka://127.0.0.1:9/topic", {"offsets": [42]}, "\"offsets\" is '[42]'"),
    ("gateway+http://127.0.0.1:9", {"cursor": {"after": 3}}, "\"cursor\" is \"{'after': 3}\""),
    ("gateway+http://127.0.0.1:9", {"start_cutoff": "3 days"}, "'start_cutoff' is '3 days', not an RFC 3339"),
])
def test_a_checkpoint_position_edited_by_hand_is_named_not_a_traceback(built_app, splunkd, tmp_path, url, position, why):
    """Refused before any request, exit 2 (a configuration error), naming the file and the key."""
    import hashlib
    import json
    app, _ = built_app
    folder = tmp_path / "ckpt"
    folder.mkdir()
    path = folder / f"wia_events_{hashlib.sha256(b'wia_events://hand').hexdigest()[:32]}.json"   # checkpoint.py's name
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"position": position, "recent_ids": []}, fh)
    run = run_input(app, [], input_xml(splunkd, folder, "hand", {"source_url": url, "retries": "0"}))
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "<event" not in run.stdout
    assert f"checkpoint {path} is unusable for {url.split('://')[0]}:// sources: {why}" in run.stderr, run.stderr
    assert "fix or delete it" in run.stderr


def test_a_second_run_of_an_input_while_one_is_going_reads_nothing(built_app, splunkd, feed, tmp_path):
    """Two runs of one input at once (an orphan of a killed splunkd, a run started by hand to debug) read the same
    position and indexed the same events twice, and the slower saved an older position over the newer. The second
    now ends at once naming the process that holds the input's checkpoint; once that ends, runs go on as before."""
    import hashlib
    app, _ = built_app
    feed.events.extend(alerts(3))
    conf = gateway_conf(splunkd, feed, tmp_path)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    checkpoint = folder / f"wia_events_{hashlib.sha256(b'wia_events://gw').hexdigest()[:32]}.json"   # checkpoint.py's name
    holder = subprocess.Popen([sys.executable, "-I", "-S", "-c",
                               "import sys; sys.path[:0] = [sys.argv[1]]\n"
                               "from wia_security.outputs import held_exclusively\n"
                               "with held_exclusively(sys.argv[2], 'run'):\n"
                               "    print('held', flush=True); sys.stdin.read()",
                               str(app / "bin" / "lib"), str(checkpoint)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        second = run_input(app, [], conf)
    finally:
        holder.communicate("", timeout=30)
    assert second.returncode == 0, second.stderr
    assert "<event" not in second.stdout and not checkpoint.exists()
    assert (f"WARNING wia_events input=wia_events://gw: another run of the input wia_events://gw is running from this "
            f"checkpoint (lock {checkpoint}.lock held by process {holder.pid}); wait for it to end") in second.stderr
    after = run_input(app, [], conf)
    assert after.returncode == 0 and len(streamed(after.stdout)) == 3 and checkpoint.exists()


def test_a_run_stopped_by_splunkd_mid_page_ends_its_stream_and_the_next_indexes_the_rest_once(built_app, splunkd,
                                                                                              feed, tmp_path):
    """splunkd stops a run with SIGTERM (the input disabled or edited, splunkd stopping). Python's default ended it
    wherever it was: in the middle of an <event>, and after events of the page were written but before the page's
    checkpoint, so the next run indexed them again. Here the run is stopped while it writes a page (splunkd not
    reading: the pipe is full): the event being written is finished, the stream closed, and the next run indexes
    exactly the rest."""
    import os
    import signal
    import time
    app, _ = built_app
    events = [AlertBuilder().title(f"alert {i}").description("x" * 5000).build().to_dict() for i in range(60)]
    feed.events.extend(events)                  # ~300 KB in one page: far more than a pipe holds
    conf = gateway_conf(splunkd, feed, tmp_path, page_size="100")
    process = subprocess.Popen([sys.executable, "-I", "-S", str(app / "bin" / "wia_events.py")], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdin.write(conf.encode("utf-8"))
    process.stdin.close()
    process.stdin = None                        # closed: communicate() must not flush it
    # it is writing the page; the pipe fills up behind this read (unbuffered: communicate() reads the fd itself)
    head = os.read(process.stdout.fileno(), 200)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    rest, err = process.communicate(timeout=60)
    first = (head + rest).decode("utf-8")
    assert process.returncode == 0, err.decode()
    written = streamed(first)                   # a whole <stream>: no event cut
    assert 0 < len(written) < 60, len(written)
    assert "stopped by splunkd (SIGTERM); the next run resumes from the checkpoint" in err.decode()
    second = run_input(app, [], conf)
    assert second.returncode == 0, second.stderr
    ids = [e["event"]["id"] for e in written + streamed(second.stdout)]
    assert sorted(ids) == sorted(e["id"] for e in events) and len(ids) == len(set(ids)) == 60
    assert counts(second.stderr)["duplicates"] == len(written)     # read again with the page, skipped by their ids


def test_a_run_stopped_by_splunkd_while_waiting_for_the_source_ends_at_once(built_app, splunkd, feed, tmp_path):
    """Stopped while the next page is on its way (a slow source): the run ends at once, not when the answer comes,
    with the pages before checkpointed; the next run reads on from there."""
    import signal
    import time
    app, _ = built_app
    events = alerts(4)
    feed.events.extend(events)
    feed.faults += [Fault(200, {"events": events[:2], "next": "2"}, path_prefix="/v1/events"),
                    Fault(200, {"events": events[2:], "next": "4"}, delay=60, path_prefix="/v1/events")]
    conf = gateway_conf(splunkd, feed, tmp_path, page_size="2")
    process = subprocess.Popen([sys.executable, "-I", "-S", str(app / "bin" / "wia_events.py")], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdin.write(conf)
    process.stdin.close()
    process.stdin = None
    deadline = time.monotonic() + 60
    while not list((tmp_path / "ckpt").glob("wia_events_*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)                          # the first page is checkpointed: the second is being waited for
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert time.monotonic() - stopped < 30, "waited for the delayed answer"
    assert [e["event"]["id"] for e in streamed(out)] == [e["id"] for e in events[:2]]
    assert "stopped by splunkd (SIGTERM)" in err
    feed.faults.clear()
    rest = run_input(app, [], conf)
    assert [e["event"]["id"] for e in streamed(rest.stdout)] == [e["id"] for e in events[2:]]


def test_a_run_stopped_while_splunkd_reads_nothing_more_ends_within_its_grace(built_app, splunkd, feed, tmp_path):
    """The event being written is finished before a stop, but a splunkd that stopped reading would leave that write
    (and the stream's end) waiting for ever: after GRACE_SECONDS (10) the process ends as Python's default ended it
    (143), the checkpoint where it was."""
    import os
    import signal
    import time
    app, _ = built_app
    feed.events.extend(AlertBuilder().title(f"alert {i}").description("x" * 5000).build().to_dict() for i in range(60))
    conf = gateway_conf(splunkd, feed, tmp_path, page_size="100")
    process = subprocess.Popen([sys.executable, "-I", "-S", str(app / "bin" / "wia_events.py")], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    process.stdin.write(conf.encode("utf-8"))
    process.stdin.close()
    os.read(process.stdout.fileno(), 200)        # writing the page; nothing more is read
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    assert process.wait(timeout=60) == 143
    assert time.monotonic() - stopped < 30
    assert not list((tmp_path / "ckpt").glob("wia_events_*.json"))      # no page was whole: none checkpointed
    process.stdout.close()
