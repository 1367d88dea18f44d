"""Helpers for the TAXII settle-window tests of the Splunk app and the XSOAR pack, against the in-process
medallion (tests/servers/medallion.py): time passes on the server (`medallion.clock_offset` moves its
`Date` header and the date_added it stamps), not by sleeping."""
from __future__ import annotations

import json
import threading
from datetime import timedelta
import uuid
from contextlib import contextmanager
from typing import Iterator

from servers.medallion import PASSWORD, USER, WRITABLE

from wia_security import convert
from wia_security.taxii_settle import DEFAULT_SETTLE_SECONDS, iso_micro
from wia_security.timeutil import parse_iso

SETTLED = DEFAULT_SETTLE_SECONDS + 1       # the server's Date header has whole seconds


def stix_objects(events: list[dict]) -> list[dict]:
    """The objects an Add of `events` stores (the extension-definition left out: medallion 3.0.0 sorts by a
    `version` property, which that object has with another meaning)."""
    return list({o["id"]: o for e in events for o in convert(e, to="stix")["objects"]
                 if o["type"] != "extension-definition"}.values())


def indicator(n: int) -> dict:
    """A plain STIX indicator (read natively, with stix content, it makes one event)."""
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.UUID(int=n + 1)}",
            "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z", "pattern_type": "stix",
            "pattern": f"[ipv4-addr:value = '198.51.100.{n + 1}']", "valid_from": "2026-01-01T00:00:00Z"}


def add(medallion, events: list[dict]) -> None:
    """One Add Objects request for all of `events` (medallion stamps them with one date_added)."""
    from wia_security.connectors.delivery import DeliveryPolicy
    from wia_security.connectors.taxii import TaxiiSink
    policy = DeliveryPolicy(max_events=len(events), max_wait=0)
    with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD, delivery=policy) as sink:
        assert sink.send(events).merge(sink.flush()).delivered == len(events)


def listed(medallion) -> int:
    """How many objects Get Objects lists now."""
    from wia_security.connectors.taxii import TaxiiClient
    client = TaxiiClient(medallion.collection_url(), user=USER, password=PASSWORD)
    with client.collection() as collection:
        return len(list(client.objects(collection)))


@contextmanager
def add_in_progress(medallion, events: list[dict]) -> Iterator[int]:
    """A real Add Objects request of `events`, held inside medallion just after it stored its first indicator
    (each event's malware, which carries the WIA event, comes later in the request); yields how many objects
    Get Objects lists meanwhile, then lets the Add finish. The Add is served beside medallion's one-at-a-time
    turn-taking, so polls run while it is paused; nothing else changes the backend meanwhile."""
    from wia_security.connectors.delivery import DeliveryPolicy
    from wia_security.connectors.taxii import TaxiiSink
    assert any(o["type"] == "indicator" for o in stix_objects(events)), "pick events with an indicator"
    backend = medallion.app.medallion_backend
    reached, go = threading.Event(), threading.Event()
    update_manifest = backend._update_manifest

    def pausing(new_obj, *args, **kwargs):
        update_manifest(new_obj, *args, **kwargs)
        if new_obj["type"] == "indicator" and not reached.is_set():
            reached.set()
            go.wait(60)
    policy = DeliveryPolicy(max_events=len(events), max_wait=0)
    sink = TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD, delivery=policy)   # reads the API root
    reports: list = []
    backend._update_manifest = pausing
    medallion.server.app.unordered = lambda environ: environ["REQUEST_METHOD"] == "POST"
    adding = threading.Thread(target=lambda: reports.append(sink.send(events).merge(sink.flush())))
    try:
        adding.start()
        assert reached.wait(60), "the Add never reached its first indicator"
        yield listed(medallion)
    finally:
        go.set()
        adding.join(60)
        medallion.server.app.unordered = None
        backend._update_manifest = update_manifest
        sink.close()
    assert reports and reports[0].delivered == len(events), "the Add did not complete"


def watch_manifest(medallion, monkeypatch, manifest: str) -> list[str]:
    """Records the query of every Get Manifest medallion is asked (the list returned); `manifest` chooses its
    answer: "served" (medallion's own), "missing" (404) or "not json" (200 with an HTML page, as a front end
    answering unknown paths may)."""
    asked: list[str] = []
    flask_app = medallion.server.app.app

    def manifest_seen(environ, start_response):
        if environ["PATH_INFO"].endswith("/manifest/"):
            asked.append(environ["QUERY_STRING"])
            if manifest == "missing":
                start_response("404 Not Found", [("Content-Type", "application/taxii+json;version=2.1")])
                return [b'{"title": "Not Found"}']
            if manifest == "not json":
                start_response("200 OK", [("Content-Type", "text/html")])
                return [b"<html><body>TAXII</body></html>"]
        return flask_app(environ, start_response)
    monkeypatch.setattr(medallion.server.app, "app", manifest_seen)
    return asked


def one_instant_then_one_later(medallion) -> str:
    """12 indicators stamped with one date_added (as one Add stamps its objects), one more a second later; both
    settled long ago. Returns the first instant."""
    now = parse_iso(medallion.now())
    at = iso_micro(now - timedelta(seconds=600))
    medallion.load(WRITABLE, [indicator(n) for n in range(12)], at)
    medallion.load(WRITABLE, [indicator(12)], iso_micro(now - timedelta(seconds=599)))
    return at


#: date_added stamps ahead of the server's clock, as a broken publisher or server may give them: a far-future
#: instant, or hours ahead (a timedelta from the server's clock).
STAMPED_AHEAD = {"year 2999": "2999-01-01T00:00:00.000000Z", "3 hours ahead": timedelta(hours=3)}


def settled_then_stamped_ahead(medallion, ahead: "str | timedelta") -> str:
    """indicator(0) added ten minutes ago (settled), indicator(1) stamped `ahead` of the server's clock, written
    into medallion's backend as its Add would store them (medallion stamps date_added itself on Add). Returns the
    server's clock."""
    now = medallion.now()
    medallion.load(WRITABLE, [indicator(0)], iso_micro(parse_iso(now) - timedelta(seconds=600)))
    medallion.load(WRITABLE, [indicator(1)], ahead if isinstance(ahead, str) else iso_micro(parse_iso(now) + ahead))
    return now


def newest_add_then_date_behind(medallion) -> None:
    """indicator(0) added ten minutes ago and indicator(1), the newest, two minutes ago (older than the default window
    by the stamps' clock), written into medallion's backend; then the server's Date header set an hour behind those
    stamps (as a proxy's clock, or a stuck Date, would give it)."""
    now = parse_iso(medallion.now())
    medallion.load(WRITABLE, [indicator(0)], iso_micro(now - timedelta(seconds=600)))
    medallion.load(WRITABLE, [indicator(1)], iso_micro(now - timedelta(seconds=120)))
    medallion.clock_offset = -3600


#: The position an earlier version (0.1.0, or settle 0 before the horizon) kept after reading an object stamped in
#: the year 2999: every later walk asks for objects added after it, and none added with a true stamp is ever read.
STUCK_POSITION = "2999-01-01T00:00:00.000000Z"


def stuck_behind_a_stamp_ahead(medallion, still_listed: bool = True) -> tuple[list[str], list[str]]:
    """A collection an earlier version read up to an object stamped STUCK_POSITION, keeping that as its position:
    indicator(0), added ten minutes ago, and indicator(1), stamped 2999 (removed since, unless `still_listed`), were
    read; indicator(2), added five minutes ago, was not (settled: any window reads it). Written into medallion's
    backend. Returns (the event ids that version read, for its remembered ids; those it missed), with stix content."""
    from wia_security.formats import get_format
    now = parse_iso(medallion.now())
    medallion.load(WRITABLE, [indicator(0)], iso_micro(now - timedelta(seconds=600)))
    if still_listed:
        medallion.load(WRITABLE, [indicator(1)], STUCK_POSITION)
    medallion.load(WRITABLE, [indicator(2)], iso_micro(now - timedelta(seconds=300)))
    stix = get_format("stix")
    made = [[e["id"] for outcome in stix.to_wia_each([indicator(n)]) for e in outcome.events] for n in range(3)]
    return made[0] + made[1], made[2]


def clock_moves_during_the_walk(medallion, monkeypatch, added: dict, *, date_paged: bool = False) -> list[str]:
    """A walk lasting longer than the window (many pages, a slow server): before the first Get Objects request that
    continues a walk (one with `next`, or, `date_paged`, the second of all), two minutes pass on the server's clock
    and it adds `added`, stamped by that clock. `date_paged`: the server leaves `next` out of its answers (TAXII makes
    it optional), so a client pages by date and its later pages list what was added meanwhile (medallion's `next`
    pages list what was there at the first). Returns the Get Objects queries asked."""
    served = medallion.server.app.app
    asked: list[str] = []

    def slow_walk(environ, start_response):
        if environ["REQUEST_METHOD"] != "GET" or not environ["PATH_INFO"].endswith("/objects/"):
            return served(environ, start_response)
        asked.append(environ["QUERY_STRING"])
        continues = len(asked) == 2 if date_paged else "next=" in environ["QUERY_STRING"]
        if continues and not any(o["id"] == added["id"] for o in _stored(medallion)):
            medallion.clock_offset += 120
            medallion.load(WRITABLE, [added], medallion.now())
        if not date_paged:
            return served(environ, start_response)
        answer: dict = {}
        body = b"".join(served(environ, lambda status, headers, exc_info=None: answer.update(status=status,
                                                                                             headers=headers)))
        if answer["status"].startswith("200"):
            envelope = json.loads(body)
            envelope.pop("next", None)
            body = json.dumps(envelope).encode()
        start_response(answer["status"], [(k, v) for k, v in answer["headers"] if k.lower() != "content-length"]
                       + [("Content-Length", str(len(body)))])
        return [body]
    monkeypatch.setattr(medallion.server.app, "app", slow_walk)
    return asked


def _stored(medallion) -> list[dict]:
    backend = medallion.app.medallion_backend
    return [o for c in backend.data["api1"]["collections"] if c["id"] == WRITABLE for o in c["objects"]]
