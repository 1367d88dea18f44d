"""QRadar offense pages are read within a byte limit and a total time: requests bounded each socket read
only, so a console or proxy sending a byte now and then held offenses() for hours, and a huge or
gzip-bombed answer filled memory. QRadarClient (requests) against tests/servers/misbehaving_http.py."""
from __future__ import annotations

import json

import pytest

from servers.misbehaving_http import MisbehavingHttp
from servers.qradar_contract import offenses
from wia_security.connectors.qradar import QRadarClient
from wia_security.errors import DeliveryError

TOKEN = "7e0a1b2c-test-token"


def test_a_page_that_trickles_is_given_up_after_page_seconds():
    page = json.dumps(offenses(2)).encode()
    with MisbehavingHttp(body=page, trickle=True, pause=0.1, give_up=6.0,
                         headers={"Content-Range": "items 0-1/2"}) as server:
        client = QRadarClient(server.url, token=TOKEN, page_seconds=1.0)
        with pytest.raises(DeliveryError, match=r"\(items=0-49\): the answer was still arriving after 1 s") as caught:
            list(client.offenses())
        client.close()
    assert caught.value.retryable


@pytest.mark.parametrize("gzip_body", [False, True], ids=["plain", "gzip-bomb"])
def test_a_page_over_the_byte_limit_is_refused_not_read_into_memory(gzip_body):
    huge = json.dumps([{"id": 1, "description": " " * 3_000_000}]).encode()
    with MisbehavingHttp(body=huge, gzip_body=gzip_body, headers={"Content-Range": "items 0-0/1"}) as server:
        client = QRadarClient(server.url, token=TOKEN, max_page_bytes=1_000_000)
        with pytest.raises(DeliveryError, match=r"\(items=0-49\): the answer is over the 1,000,000-byte limit") as caught:
            list(client.offenses())
        client.close()
    assert not caught.value.retryable


def test_an_error_answer_is_bounded_too():
    with MisbehavingHttp(body=b'{"message": "' + b"x" * 2_000_000 + b'"}', status=500) as server:
        client = QRadarClient(server.url, token=TOKEN, max_page_bytes=1_000_000)
        with pytest.raises(DeliveryError, match="over the 1,000,000-byte limit"):
            list(client.offenses())
        client.close()


def test_pages_within_the_bounds_are_read_as_before(qradar_api):
    client = QRadarClient(qradar_api.url, token=TOKEN, max_page_bytes=100_000, page_seconds=10)
    assert [o["id"] for o in client.offenses(page_size=50)] == list(range(1, 121))
    client.close()
