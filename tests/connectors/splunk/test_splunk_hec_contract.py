"""HEC sink against the HEC contract server (tests/servers/hec_contract.py): wire format, codes, ack, gzip, limits."""
from __future__ import annotations

import json
import logging
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest

from servers.hec_contract import Fault, HecContractServer  # noqa: E402

from wia_security.connectors import open_sink
from wia_security.connectors.config import Secret
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.splunk.hec import (HEC_CODES, HEC_DEFAULT_MAX_CONTENT_LENGTH, HEC_MAX_CONTENT_LENGTH_CEILING,
                                                HEC_MAX_EVENT_SIZE, HecSink, indexed_fields)
from wia_security.errors import ConfigError
from wia_security.formats import FORMATS
from wia_security.timeutil import to_epoch_ms

TOKEN = "7d1c6b9e-0c7f-4c55-9d1b-2f5d3c1a9e11"
ACK_TOKEN = "b0d8b0a4-9e2b-4f7e-8a44-1c2d3e4f5a6b"
FAST = DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.005, max_attempts=4)


@pytest.fixture
def hec():
    with HecContractServer({TOKEN: {}, ACK_TOKEN: {"ack": True}, "disabled-token": {"disabled": True},
                            "main-only": {"indexes": ["main"]}}) as server:
        yield server


def sink_for(server, token=TOKEN, delivery=FAST, **kw):
    sleeps: list[float] = []
    sink = HecSink(server.url, token=token, delivery=delivery, sleep=sleeps.append, **kw)
    sink.sleeps = sleeps
    return sink


def test_contract_events_arrive_in_the_documented_shape(hec, samples):
    events = list(samples.values())
    with sink_for(hec, index="security") as sink:
        report = sink.send(events)
        report.merge(sink.flush())
    assert report.delivered == len(events) and not report.failed
    got = {e["event"]["id"]: e for e in hec.events}
    for event in events:
        hec_event = got[event["id"]]
        assert hec_event["event"] == event                                   # the WIA event, unchanged
        assert hec_event["sourcetype"] == f"wia:security:{event['type']}"
        assert hec_event["index"] == "security"
        assert hec_event["time"] == pytest.approx(to_epoch_ms(event["timestamp"]) / 1000, abs=0.0005)
        assert hec_event["source"] == event["source"]["name"]
        hostname = (event.get("context") or {}).get("host", {}).get("hostname")
        assert hec_event.get("host") == hostname
    assert hec.state.event_requests == 1                                     # one batched request


def test_contract_body_is_concatenated_json_not_an_array(hec, samples):
    sink = sink_for(hec)
    payloads = [sink.encode(e) for e in samples.values()]
    body = sink.item_separator.join(payloads)
    assert not body.startswith(b"[")
    assert [json.loads(line)["event"]["id"] for line in body.splitlines()] == [e["id"] for e in samples.values()]
    sink.close()


def test_contract_gzip(hec, samples):
    with sink_for(hec, gzip=True) as sink:
        report = sink.send(list(samples.values()))
        report.merge(sink.flush())
    assert report.delivered == len(samples) and hec.state.gzip_requests == 1
    assert len(hec.events) == len(samples)


@pytest.mark.parametrize("token, code, text", [
    ("not-a-known-token", 4, "Invalid token"),
    ("disabled-token", 1, "Token disabled"),
])
def test_contract_auth_errors_fail_permanently_and_never_show_the_token(hec, samples, caplog, token, code, text):
    caplog.set_level(logging.DEBUG)
    sink = sink_for(hec, token=token)
    sink.send(list(samples.values()))
    report = sink.flush()
    sink.close()
    assert len(report.failed) == len(samples) and not report.delivered
    assert hec.state.event_requests == 1                                      # not retried
    assert all(f.reason == f"HEC 403 code {code}: {text}" and not f.retryable for f in report.failed)
    assert token not in repr(sink) and token not in caplog.text
    assert all(token not in f.reason and token not in json.dumps(f.errors) for f in report.failed)


def test_contract_incorrect_index_is_a_configuration_failure(hec, samples):
    sink = sink_for(hec, token="main-only", index="security")
    sink.send(list(samples.values()))
    report = sink.flush()
    assert not hec.events and len(report.failed) == len(samples)
    assert report.failed[0].reason.startswith("HEC 400 code 7: Incorrect index")


@pytest.mark.parametrize("code", [6, 12, 13, 15])
def test_contract_invalid_event_number_keeps_prefix_fails_one_resends_the_rest(hec, samples, code):
    events = list(samples.values())                                          # 7 events
    hec.state.faults.append(Fault("invalid_event", code=code, index=2))
    sink = sink_for(hec)
    sink.send(events)
    report = sink.flush()
    ids = [e["event"]["id"] for e in hec.events]
    assert ids == [e["id"] for i, e in enumerate(events) if i != 2]          # no duplicates, nothing lost
    assert report.delivered == 6 and [f.event["id"] for f in report.failed] == [events[2]["id"]]
    failed = report.failed[0]
    assert f"code {code}: {HEC_CODES[code][0]}" in failed.reason and "invalid-event-number 2" in failed.reason
    assert failed.errors[0]["details"]["invalid-event-number"] == 2
    assert hec.state.event_requests == 2 and not sink.sleeps                 # resent at once, no backoff


def test_contract_413_splits_the_batch_and_learns_the_limit(samples):
    events = list(samples.values()) * 3
    for i, e in enumerate(events):
        events[i] = {**e, "id": str(uuid.uuid4())}
    with HecContractServer({TOKEN: {}}, max_content_length=8000) as server:
        sink = sink_for(server, delivery=DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.002))
        sink.send(events)
        report = sink.flush()
        assert report.delivered == len(events) and not report.failed
        assert sorted(e["event"]["id"] for e in server.events) == sorted(e["id"] for e in events)
        assert sink.policy.max_bytes < 8000 + 500
        big = {**events[0], "id": str(uuid.uuid4()), "meta": {"raw": "x" * 9000}}
        report = sink.send([big])                           # refused before sending: over the learned limit
        report.merge(sink.flush())
        assert [f.event["id"] for f in report.failed] == [big["id"]]
        assert "over this destination's 8,339-byte request limit" in report.failed[0].reason


def test_max_content_length_is_a_batching_limit(hec, samples):
    one = len(HecSink(hec.url, token=TOKEN).encode(samples["alert-sample"]))
    sink = sink_for(hec, max_content_length=one * 2 + 1)
    events = [dict(samples["alert-sample"], id=str(uuid.uuid4())) for _ in range(6)]
    sink.send(events)
    sink.flush()
    assert hec.state.event_requests == 3 and len(hec.events) == 6


def test_contract_503_retry_after_seconds_is_honoured(hec, samples):
    hec.state.faults.append(Fault("status", status=503, code=9, retry_after="2"))
    sink = sink_for(hec)
    sink.send(list(samples.values()))
    report = sink.flush()
    assert report.delivered == len(samples) and sink.sleeps and sink.sleeps[0] >= 2
    assert len(hec.events) == len(samples)


def test_contract_429_retry_after_http_date_is_honoured(hec, samples):
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    hec.state.faults.append(Fault("status", status=429, code=9, retry_after=when))
    sink = sink_for(hec)
    sink.send(list(samples.values()))
    report = sink.flush()
    assert report.delivered == len(samples) and 28 <= sink.sleeps[0] <= 31


def test_contract_500_is_retried(hec, samples):
    hec.state.faults += [Fault("status", status=500, code=8), Fault("status", status=502, code=8)]
    sink = sink_for(hec)
    sink.send(list(samples.values()))
    report = sink.flush()
    assert report.delivered == len(samples) and len(sink.sleeps) == 2 and hec.state.event_requests == 3


def test_contract_health(hec):
    sink = sink_for(hec)
    assert sink.health() is True
    sink.close()


def test_contract_indexer_acknowledgement_polls_before_counting(samples):
    with HecContractServer({ACK_TOKEN: {"ack": True}}, ack_after_polls=3) as server:
        sink = sink_for(server, token=ACK_TOKEN, ack=True)
        sink.send(list(samples.values()))
        report = sink.flush()
        assert report.delivered == len(samples)
        assert server.state.ack_requests == 3
        [channel] = server.state.channels
        assert channel == sink.channel and server.state.channels[channel] == {0: 3}


def test_contract_ack_timeout_resends_then_dead_letters(samples):
    with HecContractServer({ACK_TOKEN: {"ack": True}}, never_ack=True) as server:
        clock = iter(range(0, 10_000))                  # a fake clock: every reading is 1 s later
        sink = sink_for(server, token=ACK_TOKEN, ack=True, ack_timeout=3,
                        delivery=DeliveryPolicy(max_wait=0, initial_backoff=0.001, max_backoff=0.002,
                                                max_attempts=2, max_elapsed=0),
                        clock=lambda: float(next(clock)))
        sink.send([samples["alert-sample"]])
        report = sink.flush()
        [failed] = report.failed
        assert failed.retryable and "indexer acknowledgement for ackId" in failed.reason
        assert "gave up after 2 attempt(s)" in failed.reason
        assert server.state.event_requests == 2            # re-sent once: at-least-once (2 copies indexed)


def test_contract_expired_channel_gets_a_new_one(samples):
    with HecContractServer({ACK_TOKEN: {"ack": True}}) as server:
        sink = sink_for(server, token=ACK_TOKEN, ack=True, channel="not-a-guid")
        sink.send([samples["alert-sample"]])
        report = sink.flush()
        assert report.delivered == 1 and sink.channel != "not-a-guid"
        uuid.UUID(sink.channel)


def test_ack_requested_but_token_without_ack_counts_on_200_and_says_so(hec, samples, caplog):
    caplog.set_level(logging.ERROR)
    sink = sink_for(hec, ack=True)
    sink.send([samples["alert-sample"]])
    assert sink.flush().delivered == 1
    assert "indexer acknowledgement is off for this token" in caplog.text


def test_open_sink_url_options_and_secret_handling(hec, monkeypatch):
    monkeypatch.setenv("HEC_TOKEN_FOR_TEST", TOKEN)
    sink = open_sink(f"splunk+{hec.url}/?index=sec&token_env=HEC_TOKEN_FOR_TEST&gzip=1&ack=0&max_events=7&max_wait=0")
    assert isinstance(sink, HecSink)
    assert (sink.index, sink.gzip, sink.ack, sink.policy.max_events) == ("sec", True, False, 7)
    assert sink.name == f"splunk:127.0.0.1:{hec.port}" and TOKEN not in repr(sink) and TOKEN not in repr(vars(sink))
    sink.close()
    with pytest.raises(ConfigError, match="token_env") as err:
        open_sink(f"splunk+{hec.url}/?token={TOKEN}")
    assert TOKEN not in str(err.value)
    with pytest.raises(ConfigError, match="unknown Splunk HEC option"):
        open_sink(f"splunk+{hec.url}/?token_env=HEC_TOKEN_FOR_TEST&idx=main")
    with pytest.raises(ConfigError, match="token is required"):
        open_sink(f"splunk+{hec.url}/")
    config_sink = open_sink(f"splunk+{hec.url}", token=Secret(TOKEN, "env X"), index="a")
    assert config_sink.index == "a"
    config_sink.close()


def test_named_limits():
    assert HEC_DEFAULT_MAX_CONTENT_LENGTH == 1_000_000
    assert HEC_MAX_CONTENT_LENGTH_CEILING == 838_860_800
    assert HEC_MAX_EVENT_SIZE == 5 * 1024 * 1024
    assert HecSink("https://h", token="t").policy.max_bytes == HEC_DEFAULT_MAX_CONTENT_LENGTH
    with pytest.raises(ConfigError):
        HecSink("https://h", token="t", max_content_length=HEC_MAX_CONTENT_LENGTH_CEILING + 1)


def test_indexed_fields_are_flat():
    assert indexed_fields({"a": {"b": 1, "c": [1, "x", {"no": 1}]}, "d": None, "e": True}) == \
        {"a.b": "1", "a.c": ["1", "x"], "e": "true"}


def test_fields_cim_uses_the_cim_format_when_present(hec, samples):
    if "cim" not in FORMATS:
        with pytest.raises(ConfigError, match="CIM format"):
            HecSink(hec.url, token=TOKEN, fields="cim")
        return
    with sink_for(hec, fields="cim") as sink:
        sink.send([samples["alert-sample"]])
        assert sink.flush().delivered == 1
    fields = hec.events[0]["fields"]
    assert fields and all(isinstance(v, (str, list)) for v in fields.values())
    assert fields["wia_id"] == samples["alert-sample"]["id"] and fields["wia_type"] == "alert"
    assert fields["src"] == samples["alert-sample"]["context"]["network"]["source"]["ip"]
    assert not any(k.startswith("_") or k.startswith("fields.") for k in fields)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def test_contract_tls_is_verified_by_default(tls_files, samples):
    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with HecContractServer({TOKEN: {}}, ssl_context=context) as server:
        untrusted = sink_for(server)
        untrusted.send([samples["alert-sample"]])
        report = untrusted.flush()
        assert "TLS verification failed" in report.failed[0].reason and not report.failed[0].retryable
        assert not untrusted.sleeps                                            # not retried
        trusted = sink_for(server, ca_file=str(cert))
        trusted.send([samples["alert-sample"]])
        assert trusted.flush().delivered == 1 and len(server.events) == 1


def test_contract_single_event_over_the_server_limit_is_a_413_failure(samples):
    with HecContractServer({TOKEN: {}}, max_content_length=1000) as server:
        sink = sink_for(server)
        sink.send([samples["alert-sample"]])
        [failed] = sink.flush().failed
        assert failed.reason.startswith("HEC 413") and "over this HEC's max_content_length" in failed.reason


def test_contract_413_with_gzip_learns_the_limit_in_the_bytes_it_batches_by(samples):
    """With gzip the request is smaller than the batch it carries. A 413 lowered the byte limit (which batches
    count uncompressed) to the compressed body's size, about 5x too low: then an event that compresses well
    within the HEC's limit was refused before sending as 'over this destination's request limit' and
    dead-lettered, and batches shrank for the rest of the run."""
    events = list(samples.values()) * 6
    for i, e in enumerate(events):
        events[i] = {**e, "id": str(uuid.uuid4())}
    with HecContractServer({TOKEN: {}}, max_content_length=3000) as server:      # Content-Length, as Splunk
        sink = sink_for(server, gzip=True, delivery=DeliveryPolicy(max_wait=0, initial_backoff=0.001,
                                                                   max_backoff=0.002))
        report = sink.send(events).merge(sink.flush())
        assert report.delivered == len(events) and not report.failed
        assert sink.policy.max_bytes > 2 * 3000             # learnt in uncompressed bytes (3,069 before)
        long = {**events[0], "id": str(uuid.uuid4()), "meta": {"raw": "x" * 4000}}     # ~6 KB, ~1.3 KB gzipped
        report = sink.send([long]).merge(sink.flush())
        assert [r.reason for r in report.failed] == [] and report.delivered == 1
        assert sorted(e["event"]["id"] for e in server.events) == sorted(e["id"] for e in events + [long])
