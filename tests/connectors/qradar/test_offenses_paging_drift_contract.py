"""Offense read-back while offenses change: offset paging (Range items=x-y) skipped one offense for every
offense that left the filter ahead of the walk (closed under `status = "OPEN"`), silently. Without a sort
the client now pages by id (sort=+id, filter `id > last`); a server that ignores that sort or filter is an
error, not a short or endless walk. QRadarClient (requests) against the QRadar REST contract server."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from servers.qradar_contract import QRadarContract, offenses
from wia_security.connectors.qradar import QRadarClient
from wia_security.errors import ConfigError, DeliveryError

TOKEN = "7e0a1b2c-test-token"


class ClosingWhileRead(QRadarContract):
    """After serving the first page, closes the first `close` offenses it served (an analyst at work)."""

    def __init__(self, close: int) -> None:
        super().__init__([{**o, "status": "OPEN"} for o in offenses(120)], TOKEN)
        self.close_after_first, self.served = close, 0

    def answer(self, path: str, headers: Any) -> tuple[int, Any, dict[str, str]]:
        reply = super().answer(path, headers)
        self.served += 1
        if self.served == 1:
            for offense in reply[1][:self.close_after_first]:
                offense["status"] = "CLOSED"
        return reply


def test_offenses_closed_during_the_walk_do_not_hide_others():
    server = ClosingWhileRead(close=10)
    client = QRadarClient(server.url, token=TOKEN)
    try:
        ids = [o["id"] for o in client.offenses(filter='status = "OPEN"', page_size=50)]
    finally:
        client.close()
        server.close()
    assert ids == list(range(1, 121))          # every offense open when the walk began
    assert parse_qs(urlsplit(server.paths[1]).query)["filter"] == ['id > 50 and (status = "OPEN")']


def test_fields_without_id_get_it_for_paging(qradar_api):
    client = QRadarClient(qradar_api.url, token=TOKEN)
    got = list(client.offenses(fields="status,rules(id,type)", page_size=100))
    assert len(got) == 120
    assert parse_qs(urlsplit(qradar_api.paths[0]).query)["fields"] == ["id,status,rules(id,type)"]


class IgnoresSortOrFilter(QRadarContract):
    def __init__(self, drop: str) -> None:
        super().__init__(offenses(120), TOKEN)
        self.drop = drop

    def answer(self, path: str, headers: Any) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(path)
        query = {k: v for k, v in parse_qs(parts.query).items() if k != self.drop}
        if self.drop == "sort":
            query["sort"] = ["-id"]                # its own order: newest first
        rebuilt = parts.path + "?" + urlencode({k: v[0] for k, v in query.items()})
        return super().answer(rebuilt, headers)


@pytest.mark.parametrize("drop", ["sort", "filter"])
def test_a_server_that_ignores_the_id_paging_is_an_error_not_a_short_or_endless_walk(drop):
    server = IgnoresSortOrFilter(drop)
    client = QRadarClient(server.url, token=TOKEN)
    try:
        seen = []
        with pytest.raises(DeliveryError, match="the server ignores sort=\\+id or filter=id >") as caught:
            for offense in client.offenses(page_size=50):
                seen.append(offense)
                assert len(seen) <= 120, "walked past every offense the server has"
    finally:
        client.close()
        server.close()
    assert not caught.value.retryable and len(seen) == (0 if drop == "sort" else 50)


@pytest.mark.parametrize("page_size", [0, -1, "50", 2.5, True])
def test_a_page_size_that_is_no_whole_number_above_zero_is_refused(page_size):
    # "50" raised a bare TypeError, 2.5 sent Range items=0-1.5 and True paged one offense at a time
    with pytest.raises(ConfigError, match="page_size"):
        list(QRadarClient("https://qradar.example", token=TOKEN).offenses(page_size=page_size))


class MostClosedAfterFirstPage(QRadarContract):
    """After the first page, every open offense but the last 40 is closed: the next offset is past the end."""

    def __init__(self) -> None:
        super().__init__([{**o, "status": "OPEN"} for o in offenses(120)], TOKEN)
        self.served = 0

    def answer(self, path: str, headers: Any) -> tuple[int, Any, dict[str, str]]:
        reply = super().answer(path, headers)
        self.served += 1
        if self.served == 1:
            for offense in self.offenses[:80]:
                offense["status"] = "CLOSED"
        return reply


def test_an_offset_walk_whose_next_page_starts_past_the_shrunk_total_ends_as_ibm_documents():
    # IBM's paging guide: a Range beyond the records returns none, with Content-Range `items */<total>` (the
    # contract server answered 416 instead, so this walk ended in a DeliveryError against it)
    server = MostClosedAfterFirstPage()
    client = QRadarClient(server.url, token=TOKEN)
    try:
        ids = [o["id"] for o in client.offenses(filter='status = "OPEN"', sort="+id", page_size=50)]
    finally:
        client.close()
        server.close()
    assert ids == list(range(1, 51))        # the documented skip of offset paging: 81-120 moved below offset 50
    assert [r.get("Range") for r in server.requests] == ["items=0-49", "items=50-99"]


def test_a_first_page_with_an_id_twice_is_named_without_a_none():
    # the message said "(items=0-49, after id None) ... not ascending past None ... filter=id > None"
    from servers.qradar_contract import ScriptedQRadar
    server = ScriptedQRadar((200, [{"id": 1}, {"id": 1}], {"Content-Range": "items 0-1/2"}), TOKEN)
    client = QRadarClient(server.url, token=TOKEN)
    try:
        with pytest.raises(DeliveryError, match="the offense ids are 1, 1, not ascending") as caught:
            list(client.offenses(page_size=50))
    finally:
        client.close()
        server.close()
    assert "None" not in str(caught.value)
