"""The format checks (date-time, uri, uuid, email) give jsonschema FormatChecker's verdicts."""
from __future__ import annotations

import string
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import FormatChecker

from wia_security.validation import formats

REFERENCE = FormatChecker()
CHECKS = {"date-time": formats.is_date_time, "uri": formats.is_uri, "uuid": formats.is_uuid, "email": formats.is_email}
FAST = formats.FAST_FORMAT_CHECKS


def agree(fmt: str, value: str) -> None:
    expected = REFERENCE.conforms(value, fmt)
    assert CHECKS[fmt](value) == expected, (fmt, value)
    if FAST[fmt](value):
        assert expected, ("fast check accepted an invalid value", fmt, value)


DATE_TIMES = [
    "2025-12-14T04:30:00Z", "2025-12-14T04:30:00.000Z", "2025-12-14t04:30:00z", "2025-12-14T04:30:00+09:00",
    "2025-12-14T04:30:00.123456789-05:30", "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "0000-01-01T00:00:00Z",
    "2025-12-14T24:00:00Z", "2025-12-14T23:59:60Z", "2025-12-14T04:30:00", "2025-12-14 04:30:00Z",
    "2025-12-14T04:30:00Z\n", "2025-12-14T04:30:00Z\n\n", "2025-13-01T00:00:00Z", "2025-04-31T00:00:00Z",
    "2025-12-14T04:30:00+24:00", "2025-12-14T04:30:00.Z", "٢٠٢٥-12-14T04:30:00Z", "2025-12-14T04:30:00ｚ",
    "2025-12-14T04:30:00.1+00:00", " 2025-12-14T04:30:00Z", "2025-1-14T04:30:00Z", "",
]
URIS = [
    "https://wia.live/security/v1/schema.json", "http://a", "urn:isbn:0451450523", "mailto:a@b.c", "a:",
    "http://[::1]:80/", "http://[v7.x]/", "http://[V7.x]/", "http://[::ffff:01.2.3.4]/", "http://[::ffff:1.2.3.4]/",
    "http://a b", "http://a%20b", "http://a%2", "//no-scheme", "1http://x", "http://x\n", "http://x\n\n",
    "http://x#frag#frag", "http://x?q=1#f?g", "http://user:pass@host:8080/p?q#f", "http://ü.example/",
    "file:///etc/passwd", "http://host:port/", "http://a:b/c", "x:/", "x://", "http://[1:2:3:4:5:6:7:8]/",
    "http://[1:2:3:4:5:6:7:8:9]/", "http://[::1.2.3.4]/", "http://[1::2::3]/", "http://[]/", "",
]
UUIDS = [
    "550e8400-e29b-41d4-a716-446655440000", "550E8400-E29B-41D4-A716-446655440000",
    "550e8400e29b41d4a716446655440000", "{550e8400-e29b-41d4-a716-446655440000}",
    "urn:uuid:550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-44665544000",
    "550e8400-e29b-41d4-a716-446655440000-", "550e8400-e29b-41d4-a716-4466554400000", "550e8400-e29b-41d4-a716-44665544000g",
    "550e8400-e29b-41d4-a716-446655440000\n", "", "-" * 36,
]


@pytest.mark.parametrize("value", DATE_TIMES)
def test_date_time_cases(value):
    agree("date-time", value)


@pytest.mark.parametrize("value", URIS)
def test_uri_cases(value):
    agree("uri", value)


@pytest.mark.parametrize("value", UUIDS)
def test_uuid_cases(value):
    agree("uuid", value)


@pytest.mark.parametrize("value", ["a@b", "@", "no-at", "", "x@y.z", "\n@"])
def test_email_cases(value):
    agree("email", value)


_dt_alphabet = "0123456789-:TtZz.+ \n٣"


@st.composite
def date_time_like(draw):
    base = draw(st.datetimes()).isoformat() + draw(st.sampled_from(["Z", "z", "+00:00", "-23:59", "+24:00", "", "\n"]))
    chars = list(base)
    for _ in range(draw(st.integers(0, 2))):
        if chars:
            i = draw(st.integers(0, len(chars) - 1))
            chars[i] = draw(st.sampled_from(_dt_alphabet))
    return "".join(chars)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(date_time_like(), st.text(alphabet=_dt_alphabet, max_size=30)))
def test_date_time_property(value):
    agree("date-time", value)


_uri_alphabet = string.ascii_letters + string.digits + ":/?#[]@!$&'()*+,;=-._~% \n\"<>\\^`{|}ü"


@st.composite
def uri_like(draw):
    scheme = draw(st.sampled_from(["http", "https", "urn", "x", "1x", "", "file", "mailto"]))
    sep = draw(st.sampled_from(["://", ":", ":/", "//", ""]))
    host = draw(st.sampled_from(["example.com", "[::1]", "[v1.a]", "[1:2:3:4:5:6:7:8]", "[::ffff:1.2.3.4]",
                                 "1.2.3.4", "user@host", "u:p@h", "", "h:80", "h:x", "[fe80::1%25eth0]"]))
    rest = draw(st.text(alphabet=_uri_alphabet, max_size=20))
    return scheme + sep + host + rest


@settings(max_examples=3000, deadline=None)
@given(st.one_of(uri_like(), st.text(alphabet=_uri_alphabet, max_size=25)))
def test_uri_property(value):
    agree("uri", value)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), st.uuids().map(lambda u: u.hex),
                 st.uuids().map(lambda u: "{%s}" % u), st.text(alphabet="0123456789abcdefABCDEF-{}urn:", max_size=45),
                 st.builds(lambda u, junk: str(u) + junk, st.uuids(), st.text(alphabet="-}{ \n", max_size=3))))
def test_uuid_property(value):
    agree("uuid", value)


def test_non_strings_always_pass():
    for fmt, check in CHECKS.items():
        for value in (None, 1, 2.5, True, [], {}):
            assert check(value) is True
            assert REFERENCE.conforms(value, fmt)


def test_uuid4_from_the_standard_library_is_fast_path_valid():
    for _ in range(100):
        assert FAST["uuid"](str(uuid.uuid4()))
