"""Retry-After parsing (RFC 9110 §10.2.3), HTTP status classification, transport exception classification."""
from __future__ import annotations

import random
from email.utils import format_datetime
from datetime import datetime, timezone

import pytest

from wia_security.connectors.delivery import classify_exception, parse_retry_after
from wia_security.connectors.delivery.http import is_retryable_status
from wia_security.connectors.delivery.policy import DeliveryPolicy


@pytest.mark.parametrize("value, expected", [
    ("120", 120.0), ("0", 0.0), (" 7 ", 7.0), ("1.5", 1.5), ("", None), (None, None), ("soon", None), ("-3", 0.0),
])
def test_retry_after_delta_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_http_date():
    now = 1_700_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 90, timezone.utc), usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(90, abs=1)
    past = format_datetime(datetime.fromtimestamp(now - 90, timezone.utc), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


@pytest.mark.parametrize("status, retryable", [
    (400, False), (401, False), (403, False), (404, False), (413, False), (408, True), (425, True), (429, True),
    (500, True), (501, False), (502, True), (503, True), (504, True), (505, False), (599, True),
])
def test_status_classification(status, retryable):
    assert is_retryable_status(status) is retryable


def test_exception_classification():
    import requests
    assert classify_exception(requests.ConnectionError("refused")).retryable
    assert classify_exception(requests.ReadTimeout("slow")).retryable
    assert classify_exception(requests.exceptions.ChunkedEncodingError("cut")).retryable
    assert classify_exception(ConnectionResetError()).retryable
    tls = classify_exception(requests.exceptions.SSLError("certificate verify failed: self signed"))
    assert not tls.retryable and "TLS verification failed" in tls.reason
    assert not classify_exception(ValueError("x")).retryable


def test_the_backoff_ceiling_holds_at_max_backoff_past_a_float_s_range():
    """retry 1,100 of an unlimited policy: 2.0 ** 1099 is past a float, and delay() raised OverflowError
    (a long outage then ended the delivery with a traceback instead of waiting max_backoff)."""
    policy = DeliveryPolicy(max_attempts=5000, max_elapsed=0, initial_backoff=0.5, max_backoff=30.0)
    assert policy.backoff_ceiling(1100) == 30.0
    assert 0.0 <= policy.delay(1100, rng=random.Random(1)) <= 30.0
    assert policy.delay(5000, retry_after=45.0) == 45.0


@pytest.mark.parametrize("key, value", [
    ("max_backoff", "nan"), ("initial_backoff", "nan"), ("max_wait", "nan"), ("max_elapsed", "nan"),
    ("backoff_multiplier", "nan"), ("max_wait", "inf"), ("max_backoff", "inf"), ("initial_backoff", "inf"),
])
def test_not_a_number_and_endless_waits_are_refused_naming_the_file_and_key(tmp_path, key, value):
    """TOML has nan and inf. max_backoff = nan made every retry sleep(nan): ValueError in the delivery thread,
    and the batch it was retrying was lost; max_wait = inf killed the flush timer (OverflowError)."""
    from wia_security.connectors.config import load_config
    from wia_security.errors import ConfigError
    path = tmp_path / "wia.toml"
    path.write_text(f'[delivery]\n{key} = {value}\n[destinations.out]\nurl = "file:///tmp/x.ndjson"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert caught.value.key == key and str(path) in str(caught.value) and value in str(caught.value)


def test_an_endless_budget_is_still_unlimited():
    assert DeliveryPolicy.from_mapping({"max_elapsed": float("inf")}).max_elapsed == float("inf")


def test_contract_a_huge_retry_after_is_waited_as_a_day_not_a_lost_batch():
    """Retry-After: 99999999999999999999 under an unlimited budget: time.sleep(1e20) raised OverflowError in
    the delivery thread and the batch was gone (send/flush raised it). Now the wait is a day (the sink's
    sleep is recorded here instead of slept) and the events are delivered on the retry."""
    from servers.hec_contract import Fault, HecContractServer
    from strategies import event_dicts
    from wia_security.connectors.delivery.policy import RETRY_AFTER_CEILING
    from wia_security.connectors.splunk.hec import HecSink
    slept: list[float] = []
    events = event_dicts(3, seed=11)
    with HecContractServer({"t0k3n": {}}) as server:
        server.state.faults.append(Fault("status", status=503, code=9, retry_after="99999999999999999999"))
        policy = DeliveryPolicy(max_wait=0, max_attempts=3, max_elapsed=0)
        with HecSink(server.url, token="t0k3n", delivery=policy, sleep=slept.append) as sink:
            report = sink.send(events).merge(sink.flush())
        assert report.delivered == 3 and not report.failed
        assert [e["event"]["id"] for e in server.events] == [e["id"] for e in events]
    assert slept == [RETRY_AFTER_CEILING]
