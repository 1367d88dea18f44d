"""A TAXII 2.1 server that sends no X-TAXII-Date-Added-First/-Last headers (contract tests, taxii2-client).

The source places a page by those headers: without them its objects never moved the checkpoint (every poll
asked for the whole collection again and delivered every object again: a duplicate storm into any sink not keyed
by event id) and never met the settle window (an Add still running was read in part). Get Manifest lists each
object's date_added (TAXII 2.1 section 5.6): the source now places such a page by it. The server here follows
TAXII 2.1 otherwise: added_after, match[id], limit and `next` on Get Objects and Get Manifest.
"""
from __future__ import annotations

import logging
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from wia_security.connectors.taxii import Checkpoint, TaxiiSource
from wia_security.timeutil import parse_iso

sys.path.append(str(Path(__file__).resolve().parents[2] / "servers"))
from intel_http import ContractServer  # noqa: E402

COLLECTION = "7a1e5c1b-3f0d-4b8e-9a51-2e9c6f4d8b10"
TAXII = {"Content-Type": "application/taxii+json;version=2.1"}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def indicator(n: int) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.UUID(int=n + 1)}",
            "created": "2025-03-01T00:00:00.000Z", "modified": "2025-03-01T00:00:00.000Z", "name": f"bad ip {n}",
            "pattern": f"[ipv4-addr:value = '198.51.100.{n % 250}']", "pattern_type": "stix",
            "valid_from": "2025-03-01T00:00:00Z", "indicator_types": ["malicious-activity"]}


class UndatedCollection(ContractServer):
    """Objects with their date_added; Get Objects and Get Manifest without the X-TAXII-Date-Added headers."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[str, dict[str, Any]]] = []        # (date_added, object), in date_added order

    def add(self, objects: list[dict[str, Any]], added: datetime) -> None:
        self.held += [(stamp(added), o) for o in objects]

    def handle(self, req: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        base = f"/api1/collections/{COLLECTION}/"
        if req.path == base:
            return 200, {"id": COLLECTION, "title": "undated", "can_read": True, "can_write": False,
                         "media_types": ["application/stix+json;version=2.1"]}, dict(TAXII)
        if req.path in (base + "objects/", base + "manifest/"):
            rows = self.held
            after = req.query.get("added_after", [None])[0]
            if after:
                rows = [r for r in rows if parse_iso(r[0]) > parse_iso(after)]
            ids = req.query.get("match[id]", [None])[0]
            if ids:
                rows = [r for r in rows if r[1]["id"] in ids.split(",")]
            start = int(req.query.get("next", ["0"])[0])
            limit = int(req.query.get("limit", ["100"])[0])
            page, more = rows[start:start + limit], start + limit < len(rows)
            if req.path.endswith("/objects/"):
                items = [o for _, o in page]
            else:
                items = [{"id": o["id"], "date_added": added, "version": o["modified"],
                          "media_type": "application/stix+json;version=2.1"} for added, o in page]
            envelope = {"more": more, **({"next": str(start + limit)} if more else {}), "objects": items}
            return 200, envelope, dict(TAXII)
        return 404, {"title": "not found", "http_status": "404"}, dict(TAXII)

    @property
    def collection_url(self) -> str:
        return f"{self.url}/api1/collections/{COLLECTION}/"


def poll(source: TaxiiSource, checkpoint: Checkpoint) -> tuple[int, int, Checkpoint]:
    pages = list(source.poll(checkpoint))
    return sum(p.objects for p in pages), sum(p.held for p in pages), pages[-1].checkpoint


def test_pages_without_date_headers_move_the_checkpoint_so_each_object_is_read_once(caplog):
    now = datetime.now(timezone.utc)
    with UndatedCollection() as server:
        server.add([indicator(i) for i in range(7)], now - timedelta(minutes=10))
        source = TaxiiSource(server.collection_url, settle=0, page_size=3)
        with caplog.at_level(logging.WARNING, logger="wia_security.connectors.taxii"):
            read, _, checkpoint = poll(source, Checkpoint())
        assert read == 7 and checkpoint.added_after == stamp(now - timedelta(minutes=10))
        assert "sends no X-TAXII-Date-Added-First/-Last headers" in caplog.text
        assert poll(source, checkpoint)[0] == 0                     # before: 7 again, at every poll
        server.add([indicator(i) for i in range(7, 10)], now - timedelta(minutes=5))
        read, _, checkpoint = poll(source, checkpoint)
        assert read == 3 and checkpoint.added_after == stamp(now - timedelta(minutes=5))
        source.close()


def test_pages_without_date_headers_meet_the_settle_window():
    now = datetime.now(timezone.utc)
    with UndatedCollection() as server:
        server.add([indicator(i) for i in range(4)], now - timedelta(minutes=10))
        server.add([indicator(i) for i in range(4, 6)], now)             # still being added, maybe
        source = TaxiiSource(server.collection_url, settle=60, page_size=3)
        read, held, checkpoint = poll(source, Checkpoint())
        assert (read, held) == (4, 2)                                     # before: 6 read, 0 held
        assert checkpoint.added_after == stamp(now - timedelta(minutes=10))
        source.close()


class UndatedWithoutManifest(UndatedCollection):
    def handle(self, req: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if req.path.endswith("/manifest/"):
            return 404, {"title": "Not Found", "http_status": "404"}, dict(TAXII)
        return super().handle(req, headers)


def test_without_a_manifest_either_the_page_is_read_as_it_stands_and_the_warning_says_what_that_costs(caplog):
    with UndatedWithoutManifest() as server:
        server.add([indicator(i) for i in range(5)], datetime.now(timezone.utc) - timedelta(minutes=10))
        source = TaxiiSource(server.collection_url, settle=0, page_size=3)
        with caplog.at_level(logging.WARNING, logger="wia_security.connectors.taxii"):
            read, _, checkpoint = poll(source, Checkpoint())
        assert read == 5 and checkpoint.added_after is None
        assert "Get Manifest failed (HTTP 404)" in caplog.text and "every poll reads them again" in caplog.text
        assert len([r for r in server.calls() if r.path.endswith("/manifest/")]) == 1     # asked once, not a page
        source.close()


def test_an_undated_page_with_a_malformed_entry_is_placed_by_its_other_objects():
    now = datetime.now(timezone.utc)
    with UndatedCollection() as server:
        server.add([indicator(0), {"type": "indicator", "id": 5, "modified": "2025-03-01T00:00:00.000Z"}, indicator(1)],
                   now - timedelta(minutes=10))
        source = TaxiiSource(server.collection_url, settle=0, page_size=10)
        pages = list(source.poll(Checkpoint()))
        assert sum(len(p.rejected) for p in pages) == 1                   # the malformed entry, dead-lettered
        checkpoint = pages[-1].checkpoint
        assert checkpoint.added_after == stamp(now - timedelta(minutes=10))
        assert poll(source, checkpoint)[0] == 0
        source.close()
