"""TAXII 2.1 servers that say `more: true` without making progress (contract tests, taxii2-client's paging).

A walk already stopped on the same `next` cursor answering the same page again. A server handing out a new
cursor each time (one it ignores, one holding a counter) while answering pages it gave before, or nothing,
was followed for ever: the poll never ended, held the checkpoint's lock, and with pages it had read before
read them again and again. So was a server paged by date whose X-TAXII-Date-Added-Last moves on while its
page does not. Each server here gives up after 200 pages (`more: false`), so a client that does not notice
ends and the test fails instead of hanging.
"""
from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from wia_security.cli import main
from wia_security.connectors import taxii
from wia_security.connectors.taxii import Checkpoint, TaxiiClient, TaxiiPagingError, TaxiiSource

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))
from intel_http import ContractServer  # noqa: E402

COLLECTION = "5d0f7e0c-2a8e-4c53-bb1e-8f0d6f5a9e21"
TAXII = {"Content-Type": "application/taxii+json;version=2.1"}
GIVE_UP = 200


def indicator(n: int, stamp: str = "2025-03-01T00:00:00.000Z") -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.UUID(int=n + 1)}",
            "created": stamp, "modified": stamp, "name": f"bad ip {n}",
            "pattern": f"[ipv4-addr:value = '198.51.100.{n % 250}']", "pattern_type": "stix",
            "valid_from": "2025-03-01T00:00:00Z", "indicator_types": ["malicious-activity"]}


def dated(first: str, last: str) -> dict[str, str]:
    return {**TAXII, "X-TAXII-Date-Added-First": first, "X-TAXII-Date-Added-Last": last}


class Pages(ContractServer):
    """Get Objects answers `page(n)` -> (envelope, headers) for its n-th request; after GIVE_UP, the end."""

    def __init__(self, page: Callable[[int], tuple[dict[str, Any], dict[str, str]]]) -> None:
        super().__init__()
        self.page, self.pages_served = page, 0

    def handle(self, req: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if req.path == f"/api1/collections/{COLLECTION}/":
            return 200, {"id": COLLECTION, "title": "no progress", "can_read": True, "can_write": False,
                         "media_types": ["application/stix+json;version=2.1"]}, dict(TAXII)
        if req.path.endswith("/objects/"):
            self.pages_served += 1
            if self.pages_served > GIVE_UP:
                return 200, {"more": False}, dict(TAXII)
            envelope, extra = self.page(self.pages_served)
            return 200, envelope, extra
        return 404, {"title": "not found", "http_status": "404"}, dict(TAXII)

    @property
    def collection_url(self) -> str:
        return f"{self.url}/api1/collections/{COLLECTION}/"


STAMP = "2025-03-01T12:00:00.000000Z"


def same_page_new_cursor(n: int) -> tuple[dict[str, Any], dict[str, str]]:
    return {"more": True, "next": f"page-{n}", "objects": [indicator(1), indicator(2)]}, dated(STAMP, STAMP)


def two_pages_in_turn(n: int) -> tuple[dict[str, Any], dict[str, str]]:
    return {"more": True, "next": str(uuid.uuid4()), "objects": [indicator(n % 2)]}, dated(STAMP, STAMP)


def nothing_with_new_cursors(n: int) -> tuple[dict[str, Any], dict[str, str]]:
    return {"more": True, "next": f"c{n}"}, dict(TAXII)


def same_page_moving_date(n: int) -> tuple[dict[str, Any], dict[str, str]]:
    # no `next`: the client pages by date; the server ignores added_after and stamps the header with a new instant
    last = f"2025-03-01T12:{n // 60:02d}:{n % 60:02d}.000000Z"
    return {"more": True, "objects": [indicator(1), indicator(2)]}, dated(STAMP, last)


def nothing_with_a_date(n: int) -> tuple[dict[str, Any], dict[str, str]]:
    return {"more": True}, dated(STAMP, STAMP)


@pytest.mark.parametrize("page, why, pages", [
    (same_page_new_cursor, r"the server answered the same page again after 1 page\(s\) \(`next` 'page-2'\)", 2),
    (two_pages_in_turn, r"the same page again after 2 page\(s\)", 3),
    (same_page_moving_date, r"the same page again after 1 page\(s\) \(no `next`\)", 2),
    (nothing_with_new_cursors, r"answered 6 pages in a row without any \(after 5 page\(s\)\)", 6),
    (nothing_with_a_date, r"answered 6 pages in a row without any", 6),
], ids=["same-page-new-cursor", "two-pages-in-turn", "same-page-moving-date", "empty-new-cursors", "empty-dated"])
def test_a_walk_without_progress_is_a_paging_error_not_an_endless_walk(monkeypatch, page, why, pages):
    monkeypatch.setattr(taxii, "MAX_EMPTY_PAGES", 5)
    with Pages(page) as server:
        client = TaxiiClient(server.collection_url)
        with pytest.raises(TaxiiPagingError, match=why):
            list(client.pages(client.collection(), page_size=2))
        assert server.pages_served == pages


def test_empty_pages_up_to_the_bound_are_followed(monkeypatch):
    """A server filtering after it pages may answer empty pages before the next match: followed."""
    monkeypatch.setattr(taxii, "MAX_EMPTY_PAGES", 5)

    def sparse(n: int) -> tuple[dict[str, Any], dict[str, str]]:
        if n % 6:
            return {"more": True, "next": f"c{n}"}, dict(TAXII)
        return {"more": n < 18, "next": f"c{n}", "objects": [indicator(n)]}, dated(STAMP, STAMP)
    with Pages(sparse) as server:
        client = TaxiiClient(server.collection_url)
        assert len(list(client.objects(client.collection(), page_size=2))) == 3 and server.pages_served == 18


def test_pull_from_a_server_repeating_its_page_under_new_cursors_stops_with_exit_2(tmp_path, capsys):
    with Pages(same_page_new_cursor) as server:
        args = ["pull", f"taxii+{server.collection_url}?settle=0", "--to", f"sqlite:///{tmp_path}/s.db",
                "--checkpoint", str(tmp_path / "cp.json"), "--dead-letter", str(tmp_path / "dl.ndjson")]
        assert main(args) == 2
        assert "the same page again" in capsys.readouterr().err and server.pages_served == 2
    assert not (tmp_path / "cp.json").exists()


def test_a_source_poll_ends_on_a_server_answering_nothing_for_ever(monkeypatch):
    monkeypatch.setattr(taxii, "MAX_EMPTY_PAGES", 5)
    with Pages(nothing_with_new_cursors) as server:
        source = TaxiiSource(server.collection_url, settle=0)
        with pytest.raises(TaxiiPagingError, match="pages in a row without any"):
            list(source.poll(Checkpoint()))
        source.close()
