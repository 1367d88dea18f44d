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
