"""The integration's TAXII settle window, through main() with the demistomock / CommonServerPython
stand-ins, against medallion 3 in-process (tests/servers/medallion.py): objects added within the last
`settle` seconds of the server's clock make no incident and last_run stays before them; a later fetch
makes them whole. Time passes on the server (`medallion.clock_offset`), not by sleeping."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from servers.medallion import PASSWORD, USER, WRITABLE
from strategies import event_dicts
from taxii_settle_helpers import (SETTLED, STAMPED_AHEAD, STUCK_POSITION, add, add_in_progress, clock_moves_during_the_walk,
                                  indicator,
                                  newest_add_then_date_behind, one_instant_then_one_later, settled_then_stamped_ahead,
                                  stix_objects, stuck_behind_a_stamp_ahead, watch_manifest)

from wia_security.taxii_settle import iso_micro
from wia_security.timeutil import parse_iso

from .conftest import run_command


class Fetcher:
    """One fetching instance on the medallion collection, with its last-run state."""

    def __init__(self, integration, demisto, medallion, **params: str) -> None:
        self.integration, self.demisto = integration, demisto
        self.params = {"url": medallion.collection_url(), "source_type": "taxii",
                       "credentials": {"identifier": USER, "password": PASSWORD}, **params}
        self.state: dict = {}
        self.ids: list[str] = []

    def fetch(self) -> tuple[list[dict], int]:
        """One fetch-incidents: (the events made incidents, how many objects it held)."""
        entries = run_command(self.integration, self.demisto, "fetch-incidents", params=self.params, last_run=self.state)
        assert entries == [], entries                         # no error entry
        self.state = self.demisto.last_run
        events = [json.loads(i["rawJSON"]) for i in self.demisto.incidents_out[-1]]
        self.ids += [e["id"] for e in events]
        held = [m for level, m in self.demisto.logs if "left for a later fetch" in m]
        return events, int(held[0].split(": ", 1)[1].split()[0]) if held else 0


def ids(events: list[dict]) -> list[str]:
    return sorted(e["id"] for e in events)


def test_a_fetch_overlapping_an_add_makes_no_partial_incident_and_a_later_fetch_makes_it_whole(integration, demisto,
                                                                                              medallion):
    # TAXII content stix reads STIX natively: the visible part of the Add (indicators without the malware that
    # carries the WIA event) would become incidents of their own, under derived ids.
    events = event_dicts(4, seed=6701, event_type="threat_intel", times="legacy")
    fetcher = Fetcher(integration, demisto, medallion, stix_content="stix", max_fetch="100")
    with add_in_progress(medallion, events) as visible:
        overlapping, held = fetcher.fetch()
    assert 0 < visible < len(stix_objects(events))            # the fetch saw part of the request
    assert overlapping == [] and held == visible              # no incident of it
    assert "added_after" not in fetcher.state                 # and last_run did not move past it
    settling, held = fetcher.fetch()                          # the Add is done, but still within the window
    assert settling == [] and held == len(stix_objects(events))
    medallion.clock_offset = SETTLED
    settled, held = fetcher.fetch()
    assert ids(settled) == ids(events) and held == 0          # every event whole, under its own id
    assert {e["id"]: e for e in settled} == {e["id"]: e for e in events}
    assert fetcher.fetch()[0] == []


@pytest.mark.parametrize("manifest", ["served", "missing", "not json"])
def test_a_quiet_collection_is_fetched_at_once_and_a_fresh_add_in_the_same_walk_is_held(integration, demisto, medallion,
                                                                                        monkeypatch, manifest):
    # Pages of 7 objects (max_fetch): one page holds the end of `older` (settled) and the start of `newer`
    # (not). It is split by Get Manifest (by Get Objects where the server answers the manifest with 404
    # or a page that is not JSON: a server stalls no fetch by its manifest).
    older, newer = event_dicts(10, seed=6712, event_type="threat_intel", times="legacy"), event_dicts(3, seed=6713, event_type="threat_intel", times="legacy")
    assert len(stix_objects(older)) % 7
    add(medallion, older)
    medallion.clock_offset = SETTLED                          # a quiet collection: its last Add is older than the window
    incremental = Fetcher(integration, demisto, medallion, max_fetch="7")
    while len(incremental.ids) < len(older):
        quiet, held = incremental.fetch()
        assert quiet and held == 0                            # every fetch makes progress, holds nothing
    assert sorted(incremental.ids) == ids(older)
    older_at = incremental.state["added_after"]
    add(medallion, newer)
    newer_at = parse_iso(medallion.now())
    asked = watch_manifest(medallion, monkeypatch, manifest)
    fresh = Fetcher(integration, demisto, medallion, max_fetch="100", settle="60")    # one page: all of it
    fresh.fetch()
    assert sorted(fresh.ids) == ids(older)
    first, held = incremental.fetch()
    assert first == [] and held > 0                           # nothing of `newer`
    for fetcher in (incremental, fresh):
        assert parse_iso(fetcher.state["added_after"]) < newer_at
    assert asked                                              # the straddling pages were split
    assert incremental.state["added_after"] == older_at
    medallion.clock_offset += SETTLED
    for fetcher in (incremental, fresh):
        later, held = fetcher.fetch()
        assert ids(later) == ids(newer) and held == 0
        assert sorted(fetcher.ids) == ids(older + newer)      # each event once


@pytest.mark.parametrize("skew", [-3600, 3600])
def test_the_window_is_measured_on_the_servers_clock_an_hour_off_ours(integration, demisto, medallion, skew):
    events = event_dicts(3, seed=6714, event_type="threat_intel", times="legacy")
    medallion.clock_offset = skew
    add(medallion, events)
    fetcher = Fetcher(integration, demisto, medallion, max_fetch="100")
    fresh, held = fetcher.fetch()
    assert fresh == [] and held == len(stix_objects(events))
    medallion.clock_offset += SETTLED
    assert ids(fetcher.fetch()[0]) == ids(events)


def test_settle_zero_fetches_at_once_and_get_events_holds_as_fetch_does(integration, demisto, medallion):
    events = event_dicts(3, seed=6715, event_type="threat_intel", times="legacy")
    add(medallion, events)
    assert ids(Fetcher(integration, demisto, medallion, max_fetch="100", settle="0").fetch()[0]) == ids(events)
    assert Fetcher(integration, demisto, medallion, max_fetch="100", settle="").fetch()[0] == []   # empty: 60 s
    params = {"url": medallion.collection_url(), "source_type": "taxii",
              "credentials": {"identifier": USER, "password": PASSWORD}}
    (entry,) = run_command(integration, demisto, "wia-get-events", args={"limit": "10"}, params=params)
    assert entry["Contents"] == []
    (entry,) = run_command(integration, demisto, "wia-get-events", args={"limit": "10"}, params={**params, "settle": "0"})
    assert sorted(e["id"] for e in entry["Contents"]) == ids(events)


@pytest.mark.parametrize("value", ["-1", "soon", "inf", "nan", "86401", "1e10"])
def test_a_settle_window_that_is_not_seconds_from_0_to_a_day_is_a_clear_error(integration, demisto, medallion, value):
    params = {"url": medallion.collection_url(), "source_type": "taxii", "settle": value,
              "credentials": {"identifier": USER, "password": PASSWORD}}
    (entry,) = run_command(integration, demisto, "fetch-incidents", params=params)
    assert entry["Type"] == 4 and "TAXII settle window (seconds) must be" in entry["Contents"]
    assert demisto.incidents_out == []


def test_what_a_split_page_reads_again_is_within_the_remembered_event_ids(integration, demisto, medallion,
                                                                         monkeypatch):
    # After a split, fetches read again from the split page's first date_added (until what it held settles):
    # its older objects come again and are skipped by the event ids last_run remembers (RECENT_IDS, 5,000). A
    # page was max_fetch objects (up to MAX_LIMIT, 10,000): the ids read first from a bigger page were already
    # forgotten, so every fetch while the page straddled made incidents of them again. Scaled down: 8 ids
    # remembered, max_fetch 16 (MAX_LIMIT is twice RECENT_IDS), 12 indicators added one by one.
    monkeypatch.setattr(integration, "RECENT_IDS", 8)
    now = parse_iso(medallion.now())
    older = [indicator(n) for n in range(12)]
    for n, obj in enumerate(older):                         # each at an instant of its own, settled long ago
        medallion.load(WRITABLE, [obj], iso_micro(now - timedelta(seconds=600) + timedelta(milliseconds=n)))
    newer = indicator(12)
    medallion.load(WRITABLE, [newer], iso_micro(now))       # still settling
    fetcher = Fetcher(integration, demisto, medallion, stix_content="stix", max_fetch="16")
    made: list[str] = []
    for _ in range(3):                                      # fetches while `newer` is within the window
        events, held = fetcher.fetch()
        assert held in (0, 1)
        made += [e["id"] for e in events]
        medallion.clock_offset += 10
    assert len(made) == len(set(made)) == len(older)          # each older indicator made one incident
    medallion.clock_offset += SETTLED
    later, held = fetcher.fetch()
    assert len(later) == 1 and held == 0
    assert len(fetcher.ids) == len(set(fetcher.ids)) == len(older) + 1


def test_an_instant_holding_more_events_than_the_remembered_ids_is_fetched_past(integration, demisto, medallion,
                                                                                monkeypatch):
    # Each fetch reads again from last_run's instant (added_after is exclusive); the 5,000 remembered event ids
    # forgot the instant's first ones, which looked new, filled max_fetch, and no fetch got past the instant:
    # duplicates for ever, the later indicator never fetched. last_run now keeps every event id read at its
    # instant. Scaled down: 8 ids remembered, max_fetch 4 (the reviewer's probe made 40 incidents of 12 events
    # in ten fetches, none of the later one).
    monkeypatch.setattr(integration, "RECENT_IDS", 8)
    one_instant_then_one_later(medallion)
    fetcher = Fetcher(integration, demisto, medallion, stix_content="stix", max_fetch="4", settle="0")
    made, warned = [], []
    for _ in range(6):
        made.append(len(fetcher.fetch()[0]))
        warned += [m for _, m in demisto.logs if "event ids added at" in m]
    assert made == [4, 4, 4, 1, 0, 0]
    assert len(fetcher.ids) == len(set(fetcher.ids)) == 13
    assert len(fetcher.state["ids_at_added_after"]) == 1          # the later instant's one event
    assert warned == []                                           # within the cap: no warning


def test_past_the_cap_of_ids_kept_at_an_instant_a_fetch_warns_and_last_run_stays_bounded(integration, demisto,
                                                                                         medallion, monkeypatch):
    # The ids kept at the instant are capped (TAXII_MAX_IDS_AT_INSTANT, 5,000): past it the first ones stay, the
    # remembered ids cover the rest (each event once while the instant holds up to both together), and a line
    # says so. Scaled down: 6 kept at the instant, 8 remembered, 12 events at one instant.
    monkeypatch.setattr(integration, "RECENT_IDS", 8)
    monkeypatch.setattr(integration, "TAXII_MAX_IDS_AT_INSTANT", 6)
    one_instant_then_one_later(medallion)
    fetcher = Fetcher(integration, demisto, medallion, stix_content="stix", max_fetch="4", settle="0")
    sizes, warned = [], []
    for _ in range(6):
        fetcher.fetch()
        sizes.append(len(fetcher.state.get("ids_at_added_after", [])))
        warned += [m for _, m in demisto.logs if "more than 6 event ids" in m]
    assert max(sizes) == 6 and sizes[-1] == 1
    assert len(fetcher.ids) == len(set(fetcher.ids)) == 13
    assert len(warned) == 3                                       # once in each fetch reading the instant past it


def test_a_last_run_without_ids_at_its_instant_resumes_and_gets_past_it(integration, demisto, medallion, monkeypatch):
    # A last_run written before (added_after and recent_ids only), part way into an instant of 12 events.
    monkeypatch.setattr(integration, "RECENT_IDS", 8)
    at = one_instant_then_one_later(medallion)
    everything = Fetcher(integration, demisto, medallion, stix_content="stix", max_fetch="100", settle="0")
    everything.fetch()
    assert len(everything.ids) == 13
    fetcher = Fetcher(integration, demisto, medallion, stix_content="stix", max_fetch="4", settle="0")
    fetcher.state = {"added_after": at, "recent_ids": everything.ids[:8]}
    made = [len(fetcher.fetch()[0]) for _ in range(4)]
    assert made == [4, 1, 0, 0]
    assert sorted(fetcher.ids) == sorted(everything.ids[8:])


def test_get_events_says_how_many_objects_the_settle_window_held(integration, demisto, medallion):
    """A user who just added objects and runs wia-get-events used to get an empty table and no reason (a debug line
    only): the war-room entry now says how many were held and that a later call reads them."""
    events = event_dicts(3, seed=6716, event_type="threat_intel", times="legacy")
    add(medallion, events)
    count = len(stix_objects(events))
    params = {"url": medallion.collection_url(), "source_type": "taxii",
              "credentials": {"identifier": USER, "password": PASSWORD}}
    note = (f"{count} TAXII object(s) added in the last 60 s of the server's clock are held (the server may still be "
            "adding the rest of their request); a later call reads them (parameter TAXII settle window (seconds)).")
    (entry,) = run_command(integration, demisto, "wia-get-events", args={"limit": "100"}, params=params)
    assert entry["Contents"] == [] and entry["HumanReadable"].endswith("\n\n" + note), entry["HumanReadable"]
    # a page of fewer objects than were added: those on later pages are counted too (Get Manifest lists them; it
    # said "2 or more")
    (entry,) = run_command(integration, demisto, "wia-get-events", args={"limit": "2"}, params={**params, "settle": "30"})
    assert entry["HumanReadable"].endswith(f"\n\n{count} TAXII object(s) added in the last 30 s of the server's clock "
                                           "are held (the server may still be adding the rest of their request); a "
                                           "later call reads them (parameter TAXII settle window (seconds)).")
    # nothing held: no note
    (entry,) = run_command(integration, demisto, "wia-get-events", args={"limit": "100"}, params={**params, "settle": "0"})
    assert ids(entry["Contents"]) == ids(events) and "held" not in entry["HumanReadable"]
    medallion.clock_offset = SETTLED
    (entry,) = run_command(integration, demisto, "wia-get-events", args={"limit": "100"}, params=params)
    assert ids(entry["Contents"]) == ids(events) and "held" not in entry["HumanReadable"]
    # fetch-incidents as before: no war-room entry, the count at debug level
    medallion.clock_offset = 0
    fetched, held = Fetcher(integration, demisto, medallion, max_fetch="100").fetch()
    assert fetched == [] and held == count


def test_the_held_count_takes_in_the_later_pages_after_a_split(integration, demisto, medallion):
    # A page split at the settle cutoff after a settled Add: the held objects of the later pages are counted too, in
    # wia-get-events' note and fetch-incidents' debug line (the split page's alone before).
    older = event_dicts(2, seed=6721, event_type="threat_intel", times="legacy")
    add(medallion, older)
    medallion.clock_offset = SETTLED
    newer = event_dicts(3, seed=6722, event_type="threat_intel", times="legacy")
    add(medallion, newer)
    added = len({o["id"] for o in stix_objects(newer)} - {o["id"] for o in stix_objects(older)})   # not shared ones
    params = {"url": medallion.collection_url(), "source_type": "taxii",
              "credentials": {"identifier": USER, "password": PASSWORD}}
    (entry,) = run_command(integration, demisto, "wia-get-events", args={"limit": "3"}, params=params)
    assert f"\n\n{added} TAXII object(s) added in the last 60 s" in entry["HumanReadable"], \
        entry["HumanReadable"]
    demisto.logs.clear()
    fetched, held = Fetcher(integration, demisto, medallion, max_fetch="3").fetch()
    assert held == added


@pytest.mark.parametrize("manifest", ["served", "missing"])
@pytest.mark.parametrize("settle", ["0", "60"])
@pytest.mark.parametrize("ahead", list(STAMPED_AHEAD.values()), ids=list(STAMPED_AHEAD))
def test_an_object_stamped_ahead_of_the_servers_clock_is_fetched_and_objects_added_later_still_are(
        integration, demisto, medallion, monkeypatch, settle, ahead, manifest):
    # A date_added beyond the server's clock plus the window (a broken publisher's year 2999, or hours ahead) was
    # kept as last_run (settle 0: added_after 2999, and no object added later with a true stamp was ever fetched),
    # or held until the server's clock reached it (settle 60: the cutoff was lifted to that stamp). It makes an
    # incident at once (it is data) and last_run stays at the server's clock less the window. Told apart by Get
    # Manifest's date_added, or, where it answers 404, by Get Objects after the cutoff and after the horizon.
    served = medallion.server.app.app
    asked = watch_manifest(medallion, monkeypatch, manifest)
    now = settled_then_stamped_ahead(medallion, ahead)
    fetcher = Fetcher(integration, demisto, medallion, stix_content="stix", settle=settle)
    first, _ = fetcher.fetch()
    assert len(first) == 2                                    # the one stamped ahead too
    # the server's clock less the window, not 2999; the lower bound allows for the Date header's whole seconds and
    # the round trip the cutoff takes off (seconds on a loaded machine: 1 s failed once under load average 15)
    assert parse_iso(now) - timedelta(seconds=int(settle) + 30) <= parse_iso(fetcher.state["added_after"]) \
        <= parse_iso(medallion.now())
    warned = [m for level, m in demisto.logs if level == "info" and "later than the server's clock" in m]
    assert len(warned) == 1 and "1 TAXII object(s)" in warned[0]
    newer = event_dicts(2, seed=6723, event_type="threat_intel", times="legacy")
    assert asked                                              # told apart by the manifest (or Get Objects)
    answering, medallion.server.app.app = medallion.server.app.app, served     # the sink's Add asks the manifest
    add(medallion, newer)                                     # medallion stamps them by its clock
    medallion.server.app.app = answering
    if settle != "0":
        demisto.logs.clear()
        settling, held = fetcher.fetch()                      # within the window: held, the one ahead not again
        assert settling == [] and held == len(stix_objects(newer))
        medallion.clock_offset = SETTLED
    later, _ = fetcher.fetch()
    assert ids(later) == ids(newer)
    assert fetcher.fetch()[0] == []
    assert len(fetcher.ids) == len(set(fetcher.ids)) == 2 + len(newer)        # each event once


def test_a_date_header_behind_the_stamps_by_more_than_the_window_is_said_once(integration, demisto, medallion):
    # The cutoff is taken from the newest date_added when the Date header lags it (a proxy's clock), so with a Date
    # an hour behind, a quiet collection's newest Add waits until a later Add is stamped a window past it. That
    # went unsaid; an info line now names the Date and the stamp.
    newest_add_then_date_behind(medallion)
    fetcher = Fetcher(integration, demisto, medallion, stix_content="stix")
    first, held = fetcher.fetch()
    assert len(first) == 1 and held == 1                      # the newest waits, as before
    assert len([m for level, m in demisto.logs if level == "info" and "is behind the date_added" in m]) == 1
    demisto.logs.clear()
    medallion.clock_offset = 0                                # the Date in step with the stamps: fetched, not said
    later, _ = fetcher.fetch()
    assert len(later) == 1 and not [m for _, m in demisto.logs if "is behind the date_added" in m]


@pytest.mark.parametrize("still_listed", [True, False], ids=["stamp still listed", "stamp gone"])
@pytest.mark.parametrize("settle", ["0", "60"])
def test_a_last_run_an_earlier_version_left_past_the_servers_clock_is_said_every_fetch_until_reset(
        integration, demisto, medallion, settle, still_listed):
    # 0.1.0 (and settle 0 before the horizon) kept an object stamped 2999 as last_run's added_after: every fetch since
    # asks for objects added after 2999 and makes no incident, with nothing said. Each fetch now logs one error line
    # naming last_run's added_after, the server's clock and how to reset it; last_run is not moved back by itself
    # (where it stood before is not known). Reset, the next fetch reads what was missed; wia-get-events, which never
    # reads last_run, lists it meanwhile and says nothing of a stored position.
    read_before, missed = stuck_behind_a_stamp_ahead(medallion, still_listed)
    fetcher = Fetcher(integration, demisto, medallion, stix_content="stix", settle=settle)
    fetcher.state = {"added_after": STUCK_POSITION, "recent_ids": read_before}       # 0.1.0's shape
    for _ in range(2):
        assert fetcher.fetch()[0] == []                       # indicator(2) is never fetched from there
        said = [m for level, m in demisto.logs if "stored position" in m]
        assert len(said) == 1 and ("error", said[0]) in demisto.logs, demisto.logs          # once per fetch
        assert f"added_after {STUCK_POSITION}" in said[0] and 'Reset the "last run" timestamp' in said[0]
        server = parse_iso(said[0].split("the TAXII server's clock (", 1)[1].split(")", 1)[0])
        assert abs((server - parse_iso(medallion.now())).total_seconds()) < 5, said[0]
        assert not [m for _, m in demisto.logs if "later than the server's clock plus" in m]
        assert fetcher.state["added_after"] == STUCK_POSITION                          # not moved back by itself
    after = iso_micro(parse_iso(medallion.now()) - timedelta(seconds=400))
    (entry,) = run_command(integration, demisto, "wia-get-events", args={"after": after, "limit": "10"},
                           params=fetcher.params)
    assert set(missed) <= set(ids(entry["Contents"])) and not [m for _, m in demisto.logs if "stored position" in m]
    fetcher.state = {}                                        # Reset the "last run" timestamp
    everything, _ = fetcher.fetch()
    assert set(missed) <= set(ids(everything)) and not [m for _, m in demisto.logs if "stored position" in m]


def test_what_the_server_adds_during_a_fetch_longer_than_the_window_is_held_and_counted(integration, demisto, medallion,
                                                                                        monkeypatch):
    # The horizon was measured at the fetch's first answer only: an object the server added during a longer walk,
    # stamped by its own (honest) clock, lay past it and was taken as stamped ahead of the clock (not counted as held;
    # on a server whose later pages list it, made an incident at once while still settling). A first fetch of one
    # event sets last_run; in the next, two minutes pass on the server's clock before its second page, and the server
    # adds indicator(1) then.
    now = parse_iso(medallion.now())
    medallion.load(WRITABLE, [indicator(0)], iso_micro(now - timedelta(seconds=600)))
    medallion.load(WRITABLE, [indicator(2)], iso_micro(now - timedelta(seconds=10)))      # settling
    fetcher = Fetcher(integration, demisto, medallion, stix_content="stix", max_fetch="1")
    asked = clock_moves_during_the_walk(medallion, monkeypatch, indicator(1))
    first, _ = fetcher.fetch()
    assert len(first) == 1 and not any("next=" in q for q in asked)
    second, held = fetcher.fetch()
    assert any("next=" in q for q in asked)                   # the clock moved within the walk
    assert second == [] and held == 2                         # indicator(2) and indicator(1), both settling
    assert not [m for _, m in demisto.logs if "later than the server's clock" in m]
    medallion.clock_offset += SETTLED
    fetcher.params["max_fetch"] = "10"
    later, held = fetcher.fetch()
    assert len(later) == 2 and held == 0
    assert len(fetcher.ids) == len(set(fetcher.ids)) == 3     # each event once
