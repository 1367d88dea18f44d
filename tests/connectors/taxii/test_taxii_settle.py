"""The TAXII source's settle window, against medallion 3 (the OASIS reference server).

medallion adds one request's objects one at a time, all stamped with the request's date_added, so a
poll running meanwhile lists part of them. The source holds back what was added within the last
`settle` seconds of the server's clock and reads it once it has settled. Time passes on the server
(`medallion.clock_offset`: its Date header and the date_added it stamps), not by sleeping.
"""
from __future__ import annotations

import copy
import json
import os
import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
from crash_checks import stored_ids
from servers.medallion import PASSWORD, USER, WRITABLE
from strategies import event_dicts
from taxii_settle_helpers import (STAMPED_AHEAD, STUCK_POSITION, clock_moves_during_the_walk, indicator,
                                  newest_add_then_date_behind, settled_then_stamped_ahead, stuck_behind_a_stamp_ahead,
                                  watch_manifest)

from wia_security import convert
from wia_security.cli import main
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.sqlite import SqliteSink
from wia_security.connectors.taxii import DEFAULT_SETTLE_SECONDS, Checkpoint, TaxiiClient, TaxiiSink, TaxiiSource
from wia_security.errors import ConfigError
from wia_security.pipeline import normalize
from wia_security.taxii_settle import iso_micro
from wia_security.timeutil import parse_iso

SETTLED = DEFAULT_SETTLE_SECONDS + 1       # the server's Date header has whole seconds


def stix_objects(events: list[dict]) -> list[dict]:
    return list({o["id"]: o for e in events for o in convert(e, to="stix")["objects"]
                 if o["type"] != "extension-definition"}.values())


def added_by(events: list[dict], before: list[dict] = ()) -> int:
    """How many objects an Add of `events` stores after one of `before` (events may share an identity)."""
    return len({o["id"] for o in stix_objects(events)} - {o["id"] for o in stix_objects(list(before))})


def add(medallion, events: list[dict]) -> None:
    """One Add Objects request for all of `events` (medallion stamps them with one date_added)."""
    policy = DeliveryPolicy(max_events=len(events), max_wait=0)
    with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD, delivery=policy) as sink:
        assert sink.send(events).merge(sink.flush()).delivered == len(events)


class Poller:
    """A source polling one collection into one SQLite store, with its checkpoint and dead letters."""

    def __init__(self, medallion, tmp_path, name: str = "a", **options) -> None:
        self.source = TaxiiSource(medallion.collection_url(), user=USER, password=PASSWORD, **options)
        self.checkpoint = str(tmp_path / f"{name}-checkpoint.json")
        self.store, self.dead = SqliteSink(str(tmp_path / f"{name}.db")), DeadLetterFile(str(tmp_path / f"{name}-dead.ndjson"))

    def poll(self) -> dict:
        return self.source.run(self.store, self.dead, self.checkpoint)

    def stored(self) -> dict[str, dict]:
        return {e.id: e.event for e in self.store.store.query(limit=None)}

    def close(self) -> None:
        self.store.close()
        self.dead.close()
        self.source.close()


@pytest.fixture
def poller(medallion, tmp_path):
    made: list[Poller] = []

    def make(**options) -> Poller:
        made.append(Poller(medallion, tmp_path, f"p{len(made)}", **options))
        return made[-1]
    yield make
    for p in made:
        p.close()


def whole(events: list[dict]) -> dict[str, dict]:
    return {e["id"]: normalize(copy.deepcopy(e)) for e in events}


@contextmanager
def add_paused_after_first_indicator(medallion):
    """Holds a real Add Objects request inside medallion just after it stored its first indicator (the
    event's malware, which carries the WIA event, comes later in the request). The Add is served
    beside the turn-taking of tests/servers/medallion.py, so polls run while it is paused; nothing
    else changes the backend meanwhile, so the unlocked MemoryBackend is safe."""
    backend = medallion.app.medallion_backend
    reached, go = threading.Event(), threading.Event()
    update_manifest = backend._update_manifest

    def pausing(new_obj, *args, **kwargs):
        update_manifest(new_obj, *args, **kwargs)
        if new_obj["type"] == "indicator" and not reached.is_set():
            reached.set()
            go.wait(60)
    backend._update_manifest = pausing
    medallion.server.app.unordered = lambda environ: environ["REQUEST_METHOD"] == "POST"
    try:
        yield reached, go
    finally:
        go.set()
        medallion.server.app.unordered = None


def test_a_poll_overlapping_an_add_stores_no_partial_event_and_a_later_poll_reads_it_whole(medallion, poller):
    events = event_dicts(4, seed=5701, event_type="threat_intel", times="legacy")
    total = len(stix_objects(events))
    sink = TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD)     # reads the API root first
    p = poller()
    client = TaxiiClient(medallion.collection_url(), user=USER, password=PASSWORD)
    reports: list = []
    with add_paused_after_first_indicator(medallion) as (reached, go):
        adding = threading.Thread(target=lambda: reports.append(sink.send(events).merge(sink.flush())))
        adding.start()
        assert reached.wait(60), "the Add never reached its first indicator"
        listed = len(list(client.objects(client.collection())))
        overlapping = p.poll()
        go.set()
        adding.join(60)
    sink.close()
    assert 0 < listed < total                                 # the poll saw part of the request
    assert reports and reports[0].delivered == len(events)
    assert set(p.stored()) == set()                           # no partial event stored (under a derived uuid5 id)
    assert (overlapping["events"], overlapping["held"]) == (0, listed)
    assert Checkpoint.load(p.checkpoint).added_after is None  # and the checkpoint did not move past them
    settling = p.poll()                                       # the Add is done, but still within the window
    assert (settling["events"], settling["held"]) == (0, total)
    medallion.clock_offset = SETTLED
    settled = p.poll()
    assert (settled["events"], settled["held"]) == (len(events), 0)
    assert p.stored() == whole(events)                        # every event whole, under its own id
    assert not os.path.exists(p.dead.path)
    assert p.poll()["objects"] == 0


def test_a_one_shot_pull_reads_what_settled_at_once_and_holds_only_the_recent_add(medallion, poller):
    older, newer = event_dicts(10, seed=5702, event_type="threat_intel", times="legacy"), event_dicts(3, seed=5703, event_type="threat_intel", times="legacy")
    add(medallion, older)
    medallion.clock_offset = SETTLED                         # a quiet collection: its last Add is older than the window
    page = 7
    assert len(stix_objects(older)) % page                    # a page holds the end of `older` and the start of `newer`
    incremental = poller(page_size=page)
    quiet = incremental.poll()
    assert (quiet["events"], quiet["held"]) == (len(older), 0) and incremental.stored() == whole(older)
    older_at = Checkpoint.load(incremental.checkpoint).added_after
    add(medallion, newer)
    newer_at = medallion.now()
    fresh = poller(page_size=page)                            # the whole collection in one pull
    for p, reads in ((incremental, []), (fresh, older)):
        first = p.poll()
        assert (first["events"], first["held"]) == (len(reads), added_by(newer, older))
        assert p.stored() == whole(older)                     # no partial event of `newer`
        added_after = Checkpoint.load(p.checkpoint).added_after
        assert added_after == older_at and parse_iso(added_after) < parse_iso(newer_at)
    medallion.clock_offset += SETTLED
    for p in (incremental, fresh):
        later = p.poll()
        assert (later["events"], later["held"]) == (len(newer), 0)
        assert p.stored() == whole(older + newer)
        assert not os.path.exists(p.dead.path)


def test_a_server_adding_at_one_instant_all_along_is_read_once_the_instant_settles(medallion, poller):
    # No livelock: whatever keeps arriving under one date_added, the instant ages on the server's
    # clock; once it is older than the window, what is there is read, and later arrivals after it.
    events = event_dicts(6, seed=5704, event_type="threat_intel", times="legacy")
    instant, step = medallion.now(), 25
    p = poller()
    for round_, event in enumerate(events):
        medallion.load(WRITABLE, stix_objects([event]), instant)
        p.poll()
        settled = round_ * step > DEFAULT_SETTLE_SECONDS
        assert p.stored() == (whole(events[:round_ + 1]) if settled else {}), round_
        medallion.clock_offset += step


def test_a_server_adding_all_along_has_what_settled_read_at_each_poll(medallion, poller):
    # No livelock either when every poll meets a new, unsettled instant: older ones are read.
    events = event_dicts(7, seed=5705, event_type="threat_intel", times="legacy")
    step = 25
    p = poller()
    for i, event in enumerate(events):
        add(medallion, [event])
        totals = p.poll()
        settled = [e for j, e in enumerate(events[:i + 1]) if (i - j) * step > DEFAULT_SETTLE_SECONDS]
        assert p.stored() == whole(settled), i
        assert totals["held"] == added_by(events[:i + 1], settled)
        medallion.clock_offset += step
    medallion.clock_offset += SETTLED
    p.poll()
    assert p.stored() == whole(events)


def test_a_slow_answer_does_not_shorten_the_window(medallion, poller):
    # The server lists the objects, then takes 3 s to answer: its Date header is 3 s later than the
    # listing. Measured from that Date, part of an Add that began 3.2 s before the listing would look
    # older than a 5 s window and be read; the request's round trip is taken off the Date.
    events = event_dicts(4, seed=5708, event_type="threat_intel", times="legacy")
    objects = stix_objects(events)
    cut = next(i for i, o in enumerate(objects) if o["type"] == "indicator") + 1   # its malware comes later
    backend = medallion.app.medallion_backend
    get_objects = backend.get_objects

    def listed_then_slow(*args, **kwargs):
        answer = get_objects(*args, **kwargs)
        threading.Event().wait(3)                  # a slow server, on purpose: the delay is what is tested
        return answer
    backend.get_objects = listed_then_slow
    p = poller(settle=5)
    started = (parse_iso(medallion.now()) - timedelta(seconds=3.2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    medallion.load(WRITABLE, objects[:cut], started)              # an Add that began 3.2 s ago, still going
    totals = p.poll()
    assert p.stored() == {} and totals["held"] == cut
    backend.get_objects = get_objects
    medallion.load(WRITABLE, objects[cut:], started)              # it is done
    medallion.clock_offset = 6
    assert p.poll()["events"] == len(events) and p.stored() == whole(events)


@pytest.mark.parametrize("skew", [-3600, 3600])
def test_the_window_is_measured_on_the_servers_clock_not_ours(medallion, poller, skew):
    # Behind ours, a fresh Add would look an hour old by our clock (read partial); ahead, it would
    # look an hour in the future (held an hour). The server's Date header measures it.
    events = event_dicts(3, seed=5706, event_type="threat_intel", times="legacy")
    medallion.clock_offset = skew
    add(medallion, events)
    p = poller()
    assert (p.poll()["events"], p.stored()) == (0, {})
    medallion.clock_offset += SETTLED
    assert p.poll()["events"] == len(events) and p.stored() == whole(events)


def test_pull_takes_the_settle_window_from_the_url_and_says_what_it_held(medallion, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WIA_TAXII_PASSWORD", PASSWORD)
    events = event_dicts(3, seed=5707, event_type="threat_intel", times="legacy")
    add(medallion, events)
    base = "taxii+" + medallion.collection_url() + f"?user={USER}&password_env=WIA_TAXII_PASSWORD"

    def pull(query: str, name: str) -> dict:
        args = ["pull", base + query, "--to", f"sqlite:///{tmp_path}/{name}.db", "--checkpoint",
                str(tmp_path / f"{name}.json"), "--dead-letter", str(tmp_path / f"{name}.ndjson"), "--summary", "json"]
        assert main(args) == 0
        return json.loads(capsys.readouterr().out)

    held = pull("", "default")                                      # the default window: not settled yet
    assert (held["delivered"], held["held"], held["settle_seconds"]) == (0, len(stix_objects(events)), DEFAULT_SETTLE_SECONDS)
    assert pull("&settle=0", "at-once")["delivered"] == len(events)
    medallion.clock_offset = 31
    assert pull("&settle=30", "thirty")["delivered"] == len(events)
    assert pull("", "default")["held"] == len(stix_objects(events))   # 31 s is inside the default 60
    assert stored_ids(tmp_path / "default.db") == set()
    args = ["pull", base + "&settle=-1", "--to", f"sqlite:///{tmp_path}/x.db", "--checkpoint", str(tmp_path / "x.json")]
    assert main(args) == 2 and "settle" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-1", "soon", "inf", "nan"])
def test_a_settle_window_that_is_not_seconds_is_a_config_error(value):
    with pytest.raises(ConfigError, match="settle: must be a number of seconds"):
        TaxiiSource.from_url(f"taxii+https://h/api/collections/{uuid.UUID(int=1)}/?settle={value}")


@pytest.mark.parametrize("manifest", ["missing", "unfiltered", "html", "not json"])
def test_a_straddling_page_is_split_by_a_manifest_that_is_missing_or_ignores_added_after(medallion, poller,
                                                                                           monkeypatch, manifest):
    # Get Manifest is optional in practice (servers answer 404 or 501): the straddling page's recent ids come
    # from Get Objects added after the cutoff instead. The poll failed with the manifest's HTTP error, every
    # time a page straddled, so a collection added to more often than the window was never read past it.
    # A manifest that ignores added_after lists old entries too: their date_added says they are not recent.
    flask_app = medallion.server.app.app
    asked: list[str] = []

    def changed_manifest(environ, start_response):
        if environ["PATH_INFO"].endswith("/manifest/"):
            asked.append(environ["PATH_INFO"])
            if manifest == "missing":
                start_response("404 Not Found", [("Content-Type", "application/taxii+json;version=2.1")])
                return [b'{"title": "Not Found"}']
            if manifest in ("html", "not json"):    # 200 and no TAXII envelope: a front end's page for unknown paths
                start_response("200 OK", [("Content-Type", "text/html" if manifest == "html" else
                                           "application/taxii+json;version=2.1")])
                return [b"<html><body>TAXII</body></html>"]
            query = [q for q in environ["QUERY_STRING"].split("&") if not q.startswith("added_after=")]
            environ = {**environ, "QUERY_STRING": "&".join(query)}
        return flask_app(environ, start_response)
    older, newer = event_dicts(10, seed=5709, event_type="threat_intel", times="legacy"), event_dicts(3, seed=5710, event_type="threat_intel", times="legacy")
    add(medallion, older)
    medallion.clock_offset = SETTLED
    page = 7
    assert len(stix_objects(older)) % page                    # a page holds the end of `older` and the start of `newer`
    add(medallion, newer)
    monkeypatch.setattr(medallion.server.app, "app", changed_manifest)  # after the Adds: the sink reads the manifest
    p = poller(page_size=page)
    first = p.poll()
    assert asked                                              # the manifest was asked for
    assert (first["events"], first["held"]) == (len(older), added_by(newer, older))
    assert p.stored() == whole(older)                         # no partial event of `newer`
    medallion.clock_offset += SETTLED
    later = p.poll()
    assert (later["events"], later["held"]) == (len(newer), 0)
    assert p.stored() == whole(older + newer)
    assert not os.path.exists(p.dead.path)


@pytest.mark.parametrize("earlier_cutoff", [False, True])
def test_objects_read_from_a_straddling_page_are_not_read_again_when_the_next_walk_pages_differently(medallion,
                                                                                                    earlier_cutoff):
    # The straddling page's settled objects were read and the checkpoint moved to that page's first instant
    # with them as `seen`. The next walk starts at that instant, so its pages fall differently: a page ending at
    # a later instant reset `seen` to its own keys, and an object read before but on the page after came again
    # (here b2: read by both walks; an object of a larger event would come back alone as a partial event).
    def indicator(name: str) -> dict:
        return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid5(uuid.NAMESPACE_DNS, name)}",
                "created": "2025-03-01T00:00:00.000Z", "modified": "2025-03-01T00:00:00.000Z", "name": name,
                "pattern": "[ipv4-addr:value = '198.51.100.7']", "pattern_type": "stix",
                "valid_from": "2025-03-01T00:00:00Z"}
    now = parse_iso(medallion.now())

    def at(seconds_ago: float) -> str:
        return (now - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for names, seconds_ago in ((["z1", "z2"], 400), (["a1", "a2", "a3"], 300), (["b1"], 200), (["b2"], 100),
                               (["c1"], 0)):
        medallion.load(WRITABLE, [indicator(n) for n in names], at(seconds_ago))
    source = TaxiiSource(medallion.collection_url(), user=USER, password=PASSWORD, page_size=4)
    try:
        first = list(source.poll(Checkpoint()))               # pages [z1 z2 a1 a2] [a3 b1 b2 | c1]: c1 held
        assert (sum(p.objects for p in first), first[-1].held) == (7, 1)
        checkpoint = first[-1].checkpoint
        if earlier_cutoff:
            # The next walk's cutoff falls between b1 and b2 (its first answer was slow, or came from a server
            # whose clock is behind): b1 is passed, b2 met past the cutoff, so it must stay in the checkpoint.
            medallion.clock_offset = -100
            between = list(source.poll(checkpoint))           # pages [a1 a2 a3 b1] | [b2 c1]
            assert (sum(p.objects for p in between), between[-1].held) == (0, 1)
            checkpoint = between[-1].checkpoint
        medallion.clock_offset = SETTLED
        second = list(source.poll(checkpoint))                # pages [a1 a2 a3 b1] [b2 c1]
        assert (sum(p.objects for p in second), second[-1].held) == (1, 0)   # c1 only
        third = list(source.poll(second[-1].checkpoint))
        assert sum(p.objects for p in third) == 0
        assert len(second[-1].checkpoint.seen) <= 4           # at most its last page's keys: no growth with what was read
    finally:
        source.close()


@pytest.mark.parametrize("value", ["1e10", "86401"])
def test_a_settle_window_longer_than_a_day_is_a_config_error(value):
    # 1e10 s was taken, then every poll ended in OverflowError (a date before year 1), a traceback from pull.
    with pytest.raises(ConfigError, match="settle: must be at most 86400 seconds"):
        TaxiiSource.from_url(f"taxii+https://h/api/collections/{uuid.UUID(int=1)}/?settle={value}")
    assert TaxiiSource.from_url(f"taxii+https://h/api/collections/{uuid.UUID(int=1)}/?settle=86400").settle == 86400


@pytest.mark.parametrize("date", ["Fri, 31 Dec 9999 23:59:59 -2359", "not a date", "Fri, 31 Feb 2026 10:00:00 GMT"])
def test_a_date_header_that_is_no_usable_instant_measures_the_window_by_our_clock(medallion, poller, monkeypatch,
                                                                                   date):
    # The last of the year 9999 in a western time zone is past what datetime holds in UTC: OverflowError
    # ended the poll (a traceback from pull). Unusable, like an unparsable one: our clock measures the window.
    events = event_dicts(3, seed=5711, event_type="threat_intel", times="legacy")
    add(medallion, events)
    handler = medallion.server.RequestHandlerClass
    monkeypatch.setattr(handler, "date_time_string", lambda self, timestamp=None: date)   # its Date header
    p = poller()
    totals = p.poll()
    assert (totals["events"], totals["held"], p.stored()) == (0, len(stix_objects(events)), {})


def test_a_checkpoint_at_the_first_instant_of_the_year_1_reads_from_the_beginning(medallion, poller):
    # One microsecond before it is no datetime: _just_before raised OverflowError, so loading that checkpoint
    # and every poll from it ended in a traceback. Nothing is earlier: the poll asks without added_after.
    events = event_dicts(3, seed=5712, event_type="threat_intel", times="legacy")
    add(medallion, events)
    medallion.clock_offset = SETTLED
    p = poller()
    Checkpoint("0001-01-01T00:00:00Z", []).save(p.checkpoint)
    assert Checkpoint.load(p.checkpoint).added_after == "0001-01-01T00:00:00Z"
    assert p.poll()["events"] == len(events) and p.stored() == whole(events)


@pytest.mark.parametrize("manifest", ["served", "missing"])
@pytest.mark.parametrize("settle", [0, 60])
@pytest.mark.parametrize("ahead", list(STAMPED_AHEAD.values()), ids=list(STAMPED_AHEAD))
def test_an_object_stamped_ahead_of_the_servers_clock_is_read_and_objects_added_later_still_are(
        medallion, poller, caplog, monkeypatch, settle, ahead, manifest):
    # A date_added beyond the server's clock plus the window (a broken publisher's year 2999, or hours ahead) was
    # taken as the checkpoint (settle 0: added_after 2999, and no object added later with a true stamp was ever
    # read), or held until the server's clock reached it (settle 60: the cutoff was lifted to that stamp). It is
    # read at once (it is data) and the checkpoint stays at the server's clock less the window.
    served = medallion.server.app.app
    asked = watch_manifest(medallion, monkeypatch, manifest)        # missing: Get Objects after the cutoff and the horizon
    now = settled_then_stamped_ahead(medallion, ahead)
    source = poller(settle=settle)
    with caplog.at_level("WARNING", logger="wia_security.connectors.taxii"):
        assert source.poll()["events"] == 2                   # the one stamped ahead too
    with open(source.checkpoint) as fh:
        kept = parse_iso(json.load(fh)["added_after"])
    assert parse_iso(now) - timedelta(seconds=settle + 1) <= kept <= parse_iso(medallion.now())    # not 2999
    assert [r for r in caplog.records if "1 TAXII object(s) carry a date_added later" in r.getMessage()]
    newer = event_dicts(2, seed=6723, event_type="threat_intel", times="legacy")
    assert asked                                              # told apart by the manifest (or Get Objects)
    answering, medallion.server.app.app = medallion.server.app.app, served     # the sink's Add asks the manifest
    add(medallion, newer)                                     # medallion stamps them by its clock
    medallion.server.app.app = answering
    if settle:
        settling = source.poll()                              # within the window: held, the one ahead not again
        assert settling["events"] == 0 and settling["held"] == len(stix_objects(newer))
        medallion.clock_offset = SETTLED
    later = source.poll()
    assert later["events"] == len(newer) and set(whole(newer)) <= set(source.stored())
    assert source.poll()["events"] == 0
    assert len(source.stored()) == 2 + len(newer)


def test_a_date_header_behind_the_stamps_by_more_than_the_window_is_warned_once(medallion, poller, caplog):
    # The cutoff is taken from the newest date_added when the Date header lags it (a proxy's clock), so with a Date
    # an hour behind, a quiet collection's newest Add waits until a later Add is stamped a window past it. That
    # went unsaid; a warning now names the Date and the stamp.
    newest_add_then_date_behind(medallion)
    source = poller()
    with caplog.at_level("WARNING", logger="wia_security.connectors.taxii"):
        first = source.poll()
    assert (first["events"], first["held"]) == (1, 1)        # the newest waits, as before
    assert len([r for r in caplog.records if "is behind the date_added" in r.getMessage()]) == 1
    caplog.clear()
    medallion.clock_offset = 0                                # the Date in step with the stamps: read, not warned
    with caplog.at_level("WARNING", logger="wia_security.connectors.taxii"):
        assert source.poll()["events"] == 1
    assert not [r for r in caplog.records if "is behind the date_added" in r.getMessage()]


@pytest.mark.parametrize("still_listed", [True, False], ids=["stamp still listed", "stamp gone"])
@pytest.mark.parametrize("settle", [0, 60])
def test_a_checkpoint_an_earlier_version_left_past_the_servers_clock_is_warned_every_poll_until_reset(
        medallion, poller, caplog, settle, still_listed):
    # An earlier version (settle 0 before the horizon) took an object stamped 2999 as the checkpoint: every poll
    # since asks for objects added after 2999 and reads nothing, with nothing logged. Each poll now says so in one
    # WARNING naming the stored added_after, the server's clock and the checkpoint file to reset; the checkpoint is
    # not moved back (where it stood before is not known). Reset by hand as said, the next poll reads what was missed.
    stuck_behind_a_stamp_ahead(medallion, still_listed)
    source = poller(settle=settle)
    read = [[indicator(n)["id"], indicator(n)["modified"]] for n in (0, 1)]
    Checkpoint(STUCK_POSITION, [read[1]]).save(source.checkpoint)       # as that walk left it: the 2999 object seen
    for _ in range(2):
        caplog.clear()
        with caplog.at_level("WARNING", logger="wia_security.connectors.taxii"):
            assert source.poll()["events"] == 0                           # indicator(2) is never read from there
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warned) == 1 and "the stored position" in warned[0], warned                 # once per poll
        assert f"added_after {STUCK_POSITION}" in warned[0] and f'set "added_after" in {source.checkpoint}' in warned[0]
        server = parse_iso(warned[0].split("the TAXII server's clock (", 1)[1].split(")", 1)[0])
        assert abs((server - parse_iso(medallion.now())).total_seconds()) < 5, warned[0]
        assert Checkpoint.load(source.checkpoint).added_after == STUCK_POSITION       # not moved back
    reset = Checkpoint.load(source.checkpoint)
    reset.added_after = iso_micro(parse_iso(medallion.now()) - timedelta(seconds=400))
    reset.save(source.checkpoint)
    caplog.clear()
    with caplog.at_level("WARNING", logger="wia_security.connectors.taxii"):
        assert source.poll()["events"] == 1                               # indicator(2), the one missed
    assert not [r for r in caplog.records if "the stored position" in r.getMessage()]
    assert len(source.stored()) == 1


def test_an_object_the_server_adds_during_a_walk_longer_than_the_window_is_held_not_read_as_stamped_ahead(
        medallion, poller, caplog, monkeypatch):
    # A walk may last longer than the window (many pages, a slow server). The horizon was measured at its first
    # answer only, so an object the server added meanwhile, stamped by its own (honest) clock, lay past it: it was
    # read at once although still settling (its Add may be half done: partial events), the checkpoint kept at the
    # cutoff, and a WARNING blamed a publisher stamping ahead. The server pages by date here (no `next`), so its
    # later pages list what it adds meanwhile; two minutes pass on its clock between the first page and the second.
    now = parse_iso(medallion.now())
    for n, age in ((0, 600), (2, 500), (3, 400)):
        medallion.load(WRITABLE, [indicator(n)], iso_micro(now - timedelta(seconds=age)))
    asked = clock_moves_during_the_walk(medallion, monkeypatch, indicator(1), date_paged=True)
    source = poller(page_size=2)
    with caplog.at_level("WARNING", logger="wia_security.connectors.taxii"):
        first = source.poll()
    assert len(asked) >= 3                                    # paged by date, past the clock's move
    assert first["events"] == 3 and first["held"] == 1, first   # the new object is settling: held
    assert not [r for r in caplog.records if "carry a date_added later" in r.getMessage()]
    medallion.clock_offset += SETTLED
    assert source.poll()["events"] == 1                       # read once settled
    assert source.poll()["events"] == 0
    assert len(source.stored()) == 4
