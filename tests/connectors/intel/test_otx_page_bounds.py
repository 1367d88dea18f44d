"""OTX pages are read within a byte limit and a total time: requests bounded each socket read only, so a
server (or proxy) sending a byte now and then held a poll for hours, and a huge or gzip-bombed answer filled
memory. requests against tests/servers/misbehaving_http.py."""
from __future__ import annotations

import json

import pytest

from misbehaving_http import MisbehavingHttp
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.intel.otx import OtxSource
from wia_security.errors import DeliveryError

KEY = "otx-test-key"
FAST = DeliveryPolicy(initial_backoff=0.001, max_backoff=0.002, max_attempts=2)
PAGE = json.dumps({"count": 0, "next": None, "previous": None, "results": []}).encode()


def test_a_page_that_trickles_is_given_up_after_page_seconds_and_retried():
    with MisbehavingHttp(body=PAGE, trickle=True, pause=0.1, give_up=6.0) as server:
        source = OtxSource(KEY, base_url=server.url, retry=FAST, page_seconds=1.0)
        with pytest.raises(DeliveryError, match=r"still arriving after 1 s .* giving up on a server that trickles") \
                as caught:
            list(source.poll())
        assert server.requests == 2                  # retryable: tried again, then given up
    assert caught.value.retryable and "/api/v1/pulses/subscribed" in str(caught.value)


@pytest.mark.parametrize("gzip_body", [False, True], ids=["plain", "gzip-bomb"])
def test_a_page_over_the_byte_limit_is_refused_not_read_into_memory(gzip_body):
    huge = b'{"count": 0, "next": null, "results": [], "padding": "' + b" " * 3_000_000 + b'"}'
    with MisbehavingHttp(body=huge, gzip_body=gzip_body) as server:
        source = OtxSource(KEY, base_url=server.url, retry=FAST, max_page_bytes=1_000_000)
        with pytest.raises(DeliveryError, match="over the 1,000,000-byte limit") as caught:
            list(source.poll())
        assert server.requests == 1                  # the same answer would come again: not retried
    assert not caught.value.retryable


def test_a_page_within_the_bounds_is_read_as_before():
    with MisbehavingHttp(body=PAGE, gzip_body=True) as server:
        assert list(OtxSource(KEY, base_url=server.url, max_page_bytes=len(PAGE), page_seconds=5).poll()) == []


def test_an_answer_that_is_not_json_says_so_not_unreachable():
    with MisbehavingHttp(body=b"<html>maintenance window</html>") as server:
        source = OtxSource(KEY, base_url=server.url, retry=FAST)
        with pytest.raises(DeliveryError) as caught:
            list(source.poll())
    assert "answered with something that is not JSON: '<html>maintenance window</html>'" in str(caught.value)
    assert caught.value.retryable and server.requests == 2
