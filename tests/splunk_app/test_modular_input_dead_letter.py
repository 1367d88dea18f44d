"""What the modular input cannot index goes to the dead-letter log whole, with the reason, before the checkpoint
moves past it. It was only named in splunkd.log (event id, JSON pointer), so once the checkpoint moved on the event
itself was gone from everything the input keeps: a Kafka message past its retention, or a feed page no longer
served, could not be looked at or re-sent after the producer was fixed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wia_security import AlertBuilder

from .splunkd_stub import Splunkd
from .test_modular_input import input_xml, streamed

sys.path.append(str(Path(__file__).resolve().parents[2] / "tests" / "servers"))  # after site-packages, as the others
from wia_gateway_feed import GatewayFeed  # noqa: E402

TOKEN = "gateway-dead-letter-token"


@pytest.fixture
def splunkd():
    with Splunkd() as server:
        server.passwords[("wia_security", "gw")] = TOKEN
        yield server


def run_input(app: Path, stdin: str, splunk_home: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SPLUNK_HOME"}
    if splunk_home is not None:
        env["SPLUNK_HOME"] = str(splunk_home)
    return subprocess.run([sys.executable, "-I", "-S", str(app / "bin" / "wia_events.py")], input=stdin,
                          capture_output=True, text=True, timeout=120, env=env)


def dead_letters(home: Path) -> list[dict]:
    path = home / "var" / "log" / "splunk" / "wia_security_dead_letter.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def alerts(n: int) -> list[dict]:
    return [AlertBuilder().title(f"alert {i}").severity(3).build().to_dict() for i in range(n)]


def test_rejected_events_are_dead_lettered_whole_with_the_reason(built_app, splunkd, tmp_path):
    app, _ = built_app
    home = tmp_path / "splunk"
    (home / "var" / "log" / "splunk").mkdir(parents=True)
    good = alerts(2)
    invalid = dict(alerts(1)[0], severity=99)
    bad_time = dict(alerts(1)[0], timestamp="0000-01-01T00:00:00Z")
    too_big = dict(alerts(1)[0])
    too_big["data"] = dict(too_big["data"], description="x" * 1_100_000)
    with GatewayFeed(token=TOKEN) as feed:
        feed.events.extend([good[0], invalid, 42, bad_time, too_big, good[1]])
        conf = input_xml(splunkd, tmp_path / "checkpoints", "gw", {
            "source_url": feed.url.replace("http://", "gateway+http://"), "credential": "gw"})
        run = run_input(app, conf, home)
        again = run_input(app, conf, home)
    assert run.returncode == 0, run.stderr
    assert [g["event"]["id"] for g in streamed(run.stdout)] == [good[0]["id"], good[1]["id"]]
    records = dead_letters(home)
    assert [r["input"] for r in records] == ["wia_events://gw"] * 4
    by_id = {r["event"]["id"]: r for r in records if "event" in r}
    assert by_id[invalid["id"]]["event"] == invalid and by_id[invalid["id"]]["reason"].startswith("/severity")
    assert by_id[bad_time["id"]]["event"] == bad_time                    # whichever check refused it, it is kept
    assert by_id[too_big["id"]]["event"] == too_big and "TRUNCATE" in by_id[too_big["id"]]["reason"]
    (item,) = [r for r in records if "item" in r]
    assert item == {"input": "wia_events://gw", "reason": "a JSON int, not a WIA event object", "item": 42}
    assert TOKEN not in json.dumps(records) and splunkd.session_key not in json.dumps(records)
    # the checkpoint moved past them: the next run neither indexes nor dead-letters them again
    assert again.returncode == 0 and streamed(again.stdout) == [] and len(dead_letters(home)) == 4


def test_without_splunk_home_the_rejected_event_goes_to_splunkd_log(built_app, splunkd, tmp_path):
    app, _ = built_app
    invalid = dict(alerts(1)[0], severity=-5)
    with GatewayFeed(token=TOKEN) as feed:
        feed.events.append(invalid)
        run = run_input(app, input_xml(splunkd, tmp_path, "gw", {
            "source_url": feed.url.replace("http://", "gateway+http://"), "credential": "gw"}), None)
    assert run.returncode == 0, run.stderr
    (line,) = [line for line in run.stderr.splitlines() if line.startswith("ERROR wia_events dead_letter=")]
    record = json.loads(line.split("=", 1)[1])
    assert record["input"] == "wia_events://gw" and record["event"] == invalid and record["reason"].startswith("/severity")


@pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning", "ignore:open_text is deprecated:DeprecationWarning")
def test_kafka_messages_that_are_no_event_are_dead_lettered_with_their_offset_and_value(built_app, splunkd, tmp_path):
    from confluent_kafka import Producer
    from servers.tansu import start_tansu
    app, _ = built_app
    home = tmp_path / "splunk"
    (home / "var" / "log" / "splunk").mkdir(parents=True)
    events = alerts(2)
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=1)
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        for value in (json.dumps(events[0]).encode(), b'{"half": ', b"\xff\xfe binary", b"[1, 2]", None,
                      json.dumps(events[1]).encode()):
            producer.produce(topic, key=b"k", value=value, partition=0)
        assert producer.flush(15) == 0
        del producer                      # librdkafka stops its threads when the Producer is freed
        run = run_input(app, input_xml(splunkd, tmp_path / "checkpoints", "kafka",
                                       {"source_url": f"kafka://{broker.bootstrap}/{topic}"}), home)
    finally:
        broker.kill()
    assert run.returncode == 0, run.stderr
    assert [g["event"]["id"] for g in streamed(run.stdout)] == [e["id"] for e in events]
    records = dead_letters(home)
    assert [(r["where"], r.get("value"), r.get("value_base64")) for r in records] == [
        (f"{topic}/0@1", '{"half": ', None),
        (f"{topic}/0@2", None, "//4gYmluYXJ5"),
        (f"{topic}/0@3", "[1, 2]", None),
    ]                                      # the tombstone (offset 4) holds nothing to keep: only logged
    assert all(r["input"] == "wia_events://kafka" and r["reason"].startswith("not a WIA event: ") for r in records)


def test_an_event_holding_nan_or_infinity_is_dead_lettered_and_the_run_goes_on(built_app, splunkd, tmp_path):
    """Python's json (and many producers) write NaN and Infinity, which are no JSON numbers; json.loads reads them
    back, an event holding one where the schema does not look (data's own extra keys) validates, and writing it as
    JSON for Splunk raised ValueError: the run ended with a traceback before the page's checkpoint, so every later run
    ended at the same event and nothing after it was ever indexed."""
    app, _ = built_app
    home = tmp_path / "splunk"
    (home / "var" / "log" / "splunk").mkdir(parents=True)
    good = alerts(3)
    nan = dict(good[1], id="00000000-0000-4000-8000-00000000000a")
    nan["data"] = dict(nan["data"], score=float("nan"))
    inf = dict(good[1], id="00000000-0000-4000-8000-00000000000b")
    inf["data"] = dict(inf["data"], scores=[0.5, float("-inf")])
    with GatewayFeed(token=TOKEN) as feed:       # its answers are written with Python's json: NaN, -Infinity as such
        feed.events.extend([good[0], nan, inf, good[1]])
        conf = input_xml(splunkd, tmp_path / "checkpoints", "gw", {
            "source_url": feed.url.replace("http://", "gateway+http://"), "credential": "gw"})
        run = run_input(app, conf, home)
        feed.events.append(good[2])
        again = run_input(app, conf, home)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert [g["event"]["id"] for g in streamed(run.stdout)] == [good[0]["id"], good[1]["id"]]
    assert f"event_id={nan['id']} rejected: /data/score: nan is not a JSON number" in run.stderr
    assert f"event_id={inf['id']} rejected: /data/scores/1: -inf is not a JSON number" in run.stderr
    assert "invalid=2" in run.stderr
    assert [(r["event"]["id"], r["reason"].split(":")[0]) for r in dead_letters(home)] == [
        (nan["id"], "/data/score"), (inf["id"], "/data/scores/1")]
    assert again.returncode == 0 and [g["event"]["id"] for g in streamed(again.stdout)] == [good[2]["id"]]
