"""A console (or a proxy in front of it) that answers fewer offenses than the Range asked for, with a
Content-Range that says how many there are: `Range: items=0-49` answered `Content-Range: items 0-29/120`.
IBM's paging guide says each endpoint states its own limits on Range; the walk must not take such a short page
for the last one. It did, by id and by offset alike: 30 of 120 offenses, silently. QRadarClient (requests)
against the QRadar REST contract server."""
from __future__ import annotations

from typing import Any

import pytest

from servers.qradar_contract import QRadarContract, offenses
from wia_security.connectors.qradar import QRadarClient

TOKEN = "7e0a1b2c-test-token"


class PageLimit(QRadarContract):
    """Answers at most `limit` offenses per request, whatever the Range asks, with a true Content-Range."""

    def __init__(self, limit: int, *, content_range: bool = True) -> None:
        super().__init__(offenses(120), TOKEN)
        self.limit, self.content_range = limit, content_range

    def answer(self, path: str, headers: Any) -> tuple[int, Any, dict[str, str]]:
        status, body, extra = super().answer(path, headers)
        if status != 200 or not isinstance(body, list) or len(body) <= self.limit:
            return status, body, extra if self.content_range else {}
        first = int(extra["Content-Range"].split()[1].split("-")[0])
        total = extra["Content-Range"].rsplit("/", 1)[1]
        page = body[:self.limit]
        return status, page, ({"Content-Range": f"items {first}-{first + len(page) - 1}/{total}"}
                              if self.content_range else {})


@pytest.mark.parametrize("sort", [None, "+id", "-id"])
def test_a_page_shorter_than_asked_is_not_the_last_when_content_range_says_more(sort: str | None) -> None:
    server = PageLimit(30)
    client = QRadarClient(server.url, token=TOKEN)
    try:
        ids = [o["id"] for o in client.offenses(page_size=50, sort=sort)]
    finally:
        client.close()
        server.close()
    assert sorted(ids) == list(range(1, 121)) and len(ids) == 120
    assert len(server.paths) == 4                       # 30 + 30 + 30 + 30: the last one says it is the end


def test_without_content_range_a_short_page_still_ends_the_walk() -> None:
    server = PageLimit(30, content_range=False)
    client = QRadarClient(server.url, token=TOKEN)
    try:
        ids = [o["id"] for o in client.offenses(page_size=50)]
    finally:
        client.close()
        server.close()
    assert ids == list(range(1, 31)) and len(server.paths) == 1
