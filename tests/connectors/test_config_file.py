"""TOML destinations config: parsing, secrets by reference (never echoed), fan-out, dead letters."""
from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

from wia_security.connectors.config import Secret, load_config, parse_config, resolve_options
from wia_security.connectors.delivery import FanOut, SinkDeadLetter, SqliteDeadLetter, open_dead_letter
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.base import DeliveryReport, Rejected
from wia_security.errors import ConfigError

SECRET_VALUE = "s3cr3t-value-that-must-not-leak"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "wia.toml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_destinations_with_delivery_overrides_and_secret_references(tmp_path, monkeypatch):
    monkeypatch.setenv("WIA_TEST_TOKEN", SECRET_VALUE)
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET_VALUE + "\n")
    cfg = load_config(write(tmp_path, f"""
        [forward]
        dead_letter = "sqlite:///{tmp_path}/dlq.db"
        batch_size = 50

        [delivery]
        max_attempts = 4
        max_wait = 2

        [destinations.splunk]
        url = "splunk+https://splunk.example:8088"
        token_env = "WIA_TEST_TOKEN"
        index = "security"
        [destinations.splunk.delivery]
        max_attempts = 9

        [destinations.archive]
        url = "file://{tmp_path}/out.ndjson"
        format = "wia"

        [destinations.off]
        url = "file:///nowhere"
        enabled = false

        [destinations.other]
        url = "sqlite:///{tmp_path}/x.db"
        password_file = "{secret_file}"
    """))
    assert [d.name for d in cfg.destinations] == ["splunk", "archive", "other"]
    splunk, archive, other = cfg.destinations
    assert isinstance(splunk.options["token"], Secret) and splunk.options["token"].reveal() == SECRET_VALUE
    assert splunk.options["index"] == "security"
    assert splunk.delivery.max_attempts == 9 and splunk.delivery.max_wait == 2.0     # override on top of [delivery]
    assert archive.delivery.max_attempts == 4
    assert other.options["password"].reveal() == SECRET_VALUE
    assert cfg.forward == {"dead_letter": f"sqlite:///{tmp_path}/dlq.db", "batch_size": 50}
    for d in cfg.destinations:                                         # the value is never printed
        assert SECRET_VALUE not in repr(d) and SECRET_VALUE not in str(d.options)


@pytest.mark.parametrize("body, key, words", [
    ('[destinations.a]\nurl = "x://y"\ntoken = "' + SECRET_VALUE + '"', "token", "token_env"),
    ('[destinations.a]\nurl = "x://y"\ntoken_env = "WIA_NOT_SET_ANYWHERE"', "token_env", "not set"),
    ('[destinations.a]\nurl = "x://y"\napi_key_file = "/nonexistent/key"', "api_key_file", "cannot read"),
    ('[destinations.a]\nindex = "main"', "destinations.a.url", "needs a url"),
    ('[delivery]\nmax_events = 0\n[destinations.a]\nurl = "x://y"', "max_events", ">= 1"),
    ('[destinatons.a]\nurl = "x://y"', "destinatons", "unknown table"),
    ('[forward]\nbatchsize = 3\n[destinations.a]\nurl = "x://y"', "forward.batchsize", "unknown key"),
    ('', None, "no destinations"),
    # "false" in quotes left the destination on: events went where the file said not to send them
    ('[destinations.a]\nurl = "x://y"\nenabled = "false"', "destinations.a.enabled", "must be true or false"),
    ('[forward]\nbatch_size = true\n[destinations.a]\nurl = "x://y"', "forward.batch_size", "got True"),
])
def test_config_errors_name_the_key_and_never_the_secret(tmp_path, body, key, words):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, body))
    assert words in str(err.value)
    assert err.value.key == key or (key and key in str(err.value))
    assert SECRET_VALUE not in str(err.value) and str(tmp_path) in err.value.source


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[destinations\n"))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "absent.toml"))


def test_secret_repr_and_literal_policy():
    s = Secret(SECRET_VALUE, "env X")
    assert SECRET_VALUE not in repr(s) and SECRET_VALUE not in str(s) and SECRET_VALUE not in f"{s}"
    assert resolve_options({"token": SECRET_VALUE}, allow_literal_secrets=True)["token"].reveal() == SECRET_VALUE
    with pytest.raises(ConfigError):
        resolve_options({"client_secret": SECRET_VALUE})


class Memory:
    """A minimal sink: delivers, or fails every event with `reason`."""

    def __init__(self, name, reason=None):
        self.name, self.reason, self.got = name, reason, []

    def send(self, events):
        self.got += [e["id"] for e in events]
        if self.reason:
            return DeliveryReport(self.name, failed=[Rejected(self.reason, event=e, sink=self.name) for e in events])
        return DeliveryReport(self.name, delivered=len(events))

    def flush(self):
        return DeliveryReport(self.name)

    def close(self):
        return None


def test_fanout_names_the_failing_destination_and_resends_nothing_elsewhere():
    good, bad = Memory("good"), Memory("bad", reason="HTTP 403: invalid token")
    fan = FanOut({"primary": good, "backup": bad})
    evs = [{"id": str(uuid.uuid4())} for _ in range(10)]
    report = fan.send(evs)
    assert report.delivered == 10 and len(report.failed) == 10
    assert {f.sink for f in report.failed} == {"backup"}
    assert good.got == [e["id"] for e in evs] and bad.got == good.got        # once each, no re-sends
    assert fan.stats["primary"].delivered == 10 and fan.stats["backup"].failed == 10
    assert fan.stats["backup"].reasons == {"HTTP 403": 10}
    fan.close()


def test_fanout_contains_a_destination_that_raises():
    class Broken(Memory):
        def send(self, events):
            raise RuntimeError("boom")
    fan = FanOut({"ok": Memory("ok"), "broken": Broken("broken")})
    report = fan.send([{"id": "1"}, {"id": "2"}])
    assert report.delivered == 2 and [f.sink for f in report.failed] == ["broken", "broken"]
    assert "RuntimeError: boom" in report.failed[0].reason
    fan.close()


def test_config_open_builds_a_fanout_of_real_sinks(tmp_path):
    cfg = parse_config({"destinations": {
        "a": {"url": f"file://{tmp_path}/a.ndjson"},
        "b": {"url": f"sqlite:///{tmp_path}/b.db"},
    }})
    fan = cfg.open()
    ev = json.loads((Path(__file__).resolve().parents[2] / "samples" / "alert-sample.json").read_text())
    report = fan.send([ev])
    report.merge(fan.flush())
    fan.close()
    assert report.delivered == 2 and not report.failed
    assert json.loads((tmp_path / "a.ndjson").read_text())["id"] == ev["id"]


@pytest.mark.parametrize("table, key, words", [
    ({"url": "file:///tmp/x.ndjson", "formta": "ocsf"}, "destinations.a.formta", "unknown option for a file destination"),
    ({"url": "file:///tmp/x.ndjson?fmt=ocsf"}, "destinations.a.fmt", "unknown option"),
    ({"url": "file:///tmp/x.ndjson", "format": "nope"}, "destinations.a.format", "unknown format 'nope'"),
    ({"url": "sqlite:///x.db", "index": "main"}, "destinations.a.index", "takes no options"),
    ({"url": "opensearch+http://127.0.0.1:9", "indx": "wia"}, "destinations.a.indx", "unknown option for the opensearch"),
    ({"url": "opensearch+http://127.0.0.1:9", "naming": "hourly"}, "destinations.a.naming", "naming must be one of"),
])
def test_opening_a_destination_names_its_bad_option_and_the_file(tmp_path, table, key, words):
    cfg = parse_config({"destinations": {"a": table}}, source=str(tmp_path / "wia.toml"))
    with pytest.raises(ConfigError) as err:
        cfg.open()
    assert err.value.key == key and words in str(err.value)
    assert str(err.value).startswith(f"{tmp_path / 'wia.toml'}: {key}: ")


def test_dead_letter_targets(tmp_path):
    rejected = Rejected("HTTP 400: Invalid data format", event={"id": "e1"}, sink="splunk", retryable=False)
    sq = open_dead_letter(f"sqlite:///{tmp_path}/dlq.db")
    assert isinstance(sq, SqliteDeadLetter)
    sq.put(rejected)
    [record] = sq.records()
    assert record["reason"] == "HTTP 400: Invalid data format" and record["sink"] == "splunk"
    assert record["event"] == {"id": "e1"}
    sq.close()
    f = open_dead_letter(str(tmp_path / "dl.ndjson"))
    assert isinstance(f, DeadLetterFile)
    f.put(rejected)
    f.close()
    assert json.loads((tmp_path / "dl.ndjson").read_text())["sink"] == "splunk"


def test_any_sink_as_dead_letter_keeps_a_valid_annotated_event(tmp_path, samples):
    dl = open_dead_letter(f"sink+file://{tmp_path}/dl-events.ndjson", fallback_path=str(tmp_path / "fb.ndjson"))
    assert isinstance(dl, SinkDeadLetter)
    event = samples["alert-sample"]
    dl.put(Rejected("gave up after 6 attempt(s): HTTP 503", event=event, sink="splunk", retryable=True))
    dl.put(Rejected("unparseable input: truncated", raw=b"{\"id\":", where="in.ndjson:3"))
    dl.close()
    [line] = (tmp_path / "dl-events.ndjson").read_text().splitlines()
    stored = json.loads(line)
    assert stored["id"] == event["id"]
    assert stored["meta"]["custom"]["dead_letter"]["sink"] == "splunk"
    assert "meta" not in event or "dead_letter" not in event.get("meta", {}).get("custom", {})   # original untouched
    from wia_security import validate_event
    assert validate_event(stored).valid
    assert json.loads((tmp_path / "fb.ndjson").read_text())["where"] == "in.ndjson:3"


@pytest.mark.parametrize("table, key, words", [
    ({"bogus": 1}, "destinations.siem.bogus", "unknown Splunk HEC option(s) bogus"),
    ({"timeout": float("nan")}, "destinations.siem.timeout", "must be a number of seconds > 0, got nan"),
    ({"timeout": 0}, "destinations.siem.timeout", "must be a number of seconds > 0, got 0"),
    ({"ack": True, "ack_timeout": float("inf")}, "destinations.siem.ack_timeout", "got inf"),
    ({"max_content_length": 1.9}, "destinations.siem.max_content_length", "must be an integer between 1 and"),
    ({"url": "splunk+https://splunk.example.com:8088?max_content_length=1.9"}, "destinations.siem.max_content_length",
     "must be an integer, got '1.9'"),
    ({"url": "splunk+https://splunk.example.com:8088?max_content_length=nan"}, "destinations.siem.max_content_length",
     "must be an integer, got 'nan'"),
])
def test_a_bad_hec_option_names_the_file_the_destination_and_the_key(tmp_path, monkeypatch, table, key, words):
    """The file was left out whenever the sink's error named its URL (every parse_sink_url error): 'splunk+https://
    splunk.example.com:8088: destinations.siem.bogus: ...'. A HEC timeout of 0 or nan was taken and failed every
    request as a permanent 'unexpected error: ValueError' (every event dead-lettered); an ack_timeout of inf or nan
    polled a lost ackId for ever; max_content_length=1.9 was read as 1 (every event refused) and nan raised a
    bare ValueError."""
    monkeypatch.setenv("WIA_TEST_HEC_TOKEN", "hec-token")
    path = tmp_path / "wia.toml"
    cfg = parse_config({"destinations": {"siem": {"url": "splunk+https://splunk.example.com:8088",
                                                  "token_env": "WIA_TEST_HEC_TOKEN", **table}}}, source=str(path))
    with pytest.raises(ConfigError) as err:
        cfg.open()
    assert err.value.key == key and words in str(err.value), str(err.value)
    assert str(err.value).startswith(f"{path} (splunk+https://splunk.example.com:8088): {key}: "), str(err.value)
