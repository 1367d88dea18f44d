"""The wia_events input's TAXII settle window, run as Splunk runs it (the built app, `bin/wia_events.py`),
against medallion 3 in-process (tests/servers/medallion.py): objects added within the last `settle`
seconds of the server's clock are not indexed and the checkpoint stays before them; a later run reads them
whole. Time passes on the server (`medallion.clock_offset`), not by sleeping."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from servers.medallion import PASSWORD, USER, WRITABLE
from strategies import event_dicts
from taxii_settle_helpers import (SETTLED, STAMPED_AHEAD, STUCK_POSITION, add, add_in_progress, clock_moves_during_the_walk,
                                  indicator,
                                  newest_add_then_date_behind, one_instant_then_one_later, settled_then_stamped_ahead,
                                  stix_objects, stuck_behind_a_stamp_ahead, watch_manifest)

from wia_security.taxii_settle import iso_micro
from wia_security.timeutil import parse_iso

from .splunkd_stub import Splunkd
from .test_modular_input import input_xml, run_input, streamed


@pytest.fixture
def splunkd():
    with Splunkd() as server:
        server.passwords[("wia_security", "taxii")] = PASSWORD
        yield server


class Input:
    """One wia_events input on the medallion collection, with its own checkpoint directory."""

    def __init__(self, app: Path, splunkd: Splunkd, medallion, folder: Path, **params: str) -> None:
        self.app, self.folder = app, folder
        folder.mkdir()
        self.conf = input_xml(splunkd, folder, "intel", {
            "source_url": "taxii+" + medallion.collection_url(), "credential": "taxii", "username": USER, **params})
        self.ids: list[str] = []

    def run(self) -> tuple[list[dict], str]:
        """One run: (the events it indexed, its stderr)."""
        run = run_input(self.app, [], self.conf)
        assert run.returncode == 0, run.stderr
        events = [s["event"] for s in streamed(run.stdout)]
        self.ids += [e["id"] for e in events]
        return events, run.stderr

    def position(self) -> dict:
        (path,) = self.folder.glob("wia_events_*.json")
        return json.loads(path.read_text())["position"]


def held(stderr: str) -> int:
    summary = next(line for line in stderr.splitlines() if " emitted=" in line)
    return int(summary.split(" held=", 1)[1].split()[0]) if " held=" in summary else 0


def ids(events: list[dict]) -> list[str]:
    return sorted(e["id"] for e in events)


def test_a_run_overlapping_an_add_indexes_no_partial_event_and_a_later_run_indexes_it_whole(built_app, splunkd,
                                                                                           medallion, tmp_path):
    # stix_content=stix reads STIX natively: the visible part of the Add (indicators without the malware that
    # carries the WIA event) would be indexed as events of their own, under derived ids.
    app, _ = built_app
    events = event_dicts(4, seed=6701, event_type="threat_intel", times="legacy")
    source = Input(app, splunkd, medallion, tmp_path / "a", stix_content="stix")
    with add_in_progress(medallion, events) as visible:
        overlapping, log = source.run()
    assert 0 < visible < len(stix_objects(events))            # the run saw part of the request
    assert overlapping == [] and held(log) == visible          # nothing indexed of it
    assert "added_after" not in source.position()             # and the checkpoint did not move past it
    settling, log = source.run()                               # the Add is done, but still within the window
    assert settling == [] and held(log) == len(stix_objects(events))
    medallion.clock_offset = SETTLED
    settled, log = source.run()
    assert ids(settled) == ids(events) and held(log) == 0      # every event whole, under its own id
    assert {e["id"]: e for e in settled} == {e["id"]: e for e in events}
    assert source.run()[0] == []


@pytest.mark.parametrize("manifest", ["served", "missing", "not json"])
def test_a_quiet_collection_is_read_at_once_and_a_fresh_add_in_the_same_walk_is_held(built_app, splunkd, medallion,
                                                                                      tmp_path, monkeypatch, manifest):
    # Pages of 7 objects: one page holds the end of `older` (settled) and the start of `newer` (not). That page
    # is split by Get Manifest (by Get Objects where the server answers the manifest with 404 or a page that is
    # not JSON: a server stalls no run by its manifest), the checkpoint kept before `newer`, from scratch and
    # from a checkpoint.
    app, _ = built_app
    older, newer = event_dicts(10, seed=6702, event_type="threat_intel", times="legacy"), event_dicts(3, seed=6703, event_type="threat_intel", times="legacy")
    assert len(stix_objects(older)) % 7
    add(medallion, older)
    medallion.clock_offset = SETTLED                          # a quiet collection: its last Add is older than the window
    incremental = Input(app, splunkd, medallion, tmp_path / "incremental", page_size="7")
    quiet, log = incremental.run()
    assert ids(quiet) == ids(older) and held(log) == 0
    older_at = incremental.position()["added_after"]
    add(medallion, newer)
    newer_at = parse_iso(medallion.now())
    asked = watch_manifest(medallion, monkeypatch, manifest)
    fresh = Input(app, splunkd, medallion, tmp_path / "fresh", page_size="7")      # the whole collection in one run
    for source, reads in ((incremental, []), (fresh, older)):
        first, log = source.run()
        assert ids(first) == ids(reads) and held(log) > 0     # nothing of `newer`
        assert parse_iso(source.position()["added_after"]) < newer_at
    assert asked                                              # the straddling page was split
    if manifest != "served":
        assert "Get Manifest failed" in log, log              # said once per run, at the end
    assert incremental.position()["added_after"] == older_at
    medallion.clock_offset += SETTLED
    for source in (incremental, fresh):
        later, log = source.run()
        assert ids(later) == ids(newer) and held(log) == 0
        assert sorted(source.ids) == ids(older + newer)       # each event once


@pytest.mark.parametrize("quiet_before", [False, True])
def test_held_counts_every_object_the_run_holds_not_only_its_last_pages(built_app, splunkd, medallion, tmp_path,
                                                                        quiet_before):
    # A run ends at the first page reaching past the settle cutoff; held= counted that page's held objects alone
    # (7 of a fresh Add of more), where the page was wholly past the cutoff or split after a quiet collection's
    # settled objects. Get Manifest of what was added after the cutoff counts those of later pages too.
    app, _ = built_app
    newer = event_dicts(6, seed=6720, event_type="threat_intel", times="legacy")
    assert len(stix_objects(newer)) > 2 * 7
    older = event_dicts(2, seed=6721, event_type="threat_intel", times="legacy") if quiet_before else []
    if older:
        add(medallion, older)
        medallion.clock_offset = SETTLED
    add(medallion, newer)
    added = len({o["id"] for o in stix_objects(newer)} - {o["id"] for o in stix_objects(older)})   # not shared ones
    _, log = Input(app, splunkd, medallion, tmp_path / "a", page_size="7").run()
    assert held(log) == added and " or more " not in log, log


@pytest.mark.parametrize("manifest", ["served", "missing"])
@pytest.mark.parametrize("settle", ["0", "60"])
@pytest.mark.parametrize("ahead", list(STAMPED_AHEAD.values()), ids=list(STAMPED_AHEAD))
def test_an_object_stamped_ahead_of_the_servers_clock_is_indexed_and_objects_added_later_still_are(
        built_app, splunkd, medallion, tmp_path, monkeypatch, settle, ahead, manifest):
    # A date_added beyond the server's clock plus the window (a broken publisher's year 2999, or hours ahead) was
    # taken as the checkpoint (settle 0: added_after 2999, and no object added later with a true stamp was ever
    # read), or held until the server's clock reached it (settle 60: the cutoff was lifted to that stamp). It is
    # indexed at once (it is data) and the checkpoint stays at the server's clock less the window. Told apart by Get
    # Manifest's date_added, or, where it answers 404, by Get Objects after the cutoff and after the horizon.
    app, _ = built_app
    served = medallion.server.app.app
    asked = watch_manifest(medallion, monkeypatch, manifest)
    now = settled_then_stamped_ahead(medallion, ahead)
    source = Input(app, splunkd, medallion, tmp_path / "a", stix_content="stix", settle=settle)
    first, log = source.run()
    assert len(first) == 2, log                                # the one stamped ahead too
    assert parse_iso(now) - timedelta(seconds=int(settle) + 1) <= parse_iso(source.position()["added_after"]) \
        <= parse_iso(medallion.now())                          # the server's clock (less the window), not 2999
    warned = [line for line in log.splitlines() if line.startswith("WARNING") and "later than the server's clock" in line]
    assert len(warned) == 1 and "1 TAXII object(s)" in warned[0], log
    assert asked                                               # told apart by the manifest (or Get Objects)
    newer = event_dicts(2, seed=6723, event_type="threat_intel", times="legacy")
    answering, medallion.server.app.app = medallion.server.app.app, served      # the sink's Add asks the manifest
    add(medallion, newer)                                      # medallion stamps them by its clock
    medallion.server.app.app = answering
    if settle != "0":
        settling, log = source.run()                           # within the window: held, the one ahead not again
        assert settling == [] and held(log) == len(stix_objects(newer)), log
        medallion.clock_offset = SETTLED
    later, log = source.run()
    assert ids(later) == ids(newer), log
    assert source.run()[0] == []
    assert len(source.ids) == len(set(source.ids)) == 2 + len(newer)      # each event once


def test_a_date_header_behind_the_stamps_by_more_than_the_window_is_warned_once(built_app, splunkd, medallion, tmp_path):
    # The cutoff is taken from the newest date_added when the Date header lags it (a proxy's clock), so with a Date
    # an hour behind, a quiet collection's newest Add waits until a later Add is stamped a window past it. That
    # went unsaid (a debug-free splunkd.log, held=1 run after run); a WARNING now names the Date and the stamp.
    app, _ = built_app
    newest_add_then_date_behind(medallion)
    source = Input(app, splunkd, medallion, tmp_path / "a", stix_content="stix")
    first, log = source.run()
    assert len(first) == 1 and held(log) == 1                 # the newest waits, as before
    warned = [line for line in log.splitlines() if line.startswith("WARNING") and "is behind the date_added" in line]
    assert len(warned) == 1, log
    medallion.clock_offset = 0                                # the Date in step with the stamps: read, not warned
    later, log = source.run()
    assert len(later) == 1 and "is behind the date_added" not in log


@pytest.mark.parametrize("skew", [-3600, 3600])
def test_the_window_is_measured_on_the_servers_clock_an_hour_off_ours(built_app, splunkd, medallion, tmp_path, skew):
    # Behind ours, a fresh Add would look an hour old by our clock (read at once); ahead, an hour in the future
    # (held an hour). The server's Date header measures it.
    app, _ = built_app
    events = event_dicts(3, seed=6704, event_type="threat_intel", times="legacy")
    medallion.clock_offset = skew
    add(medallion, events)
    source = Input(app, splunkd, medallion, tmp_path / "a")
    fresh, log = source.run()
    assert fresh == [] and held(log) == len(stix_objects(events))
    medallion.clock_offset += SETTLED
    assert ids(source.run()[0]) == ids(events)


def test_settle_zero_reads_at_once_and_a_shorter_window_sooner(built_app, splunkd, medallion, tmp_path):
    app, _ = built_app
    events = event_dicts(3, seed=6705, event_type="threat_intel", times="legacy")
    add(medallion, events)
    assert ids(Input(app, splunkd, medallion, tmp_path / "zero", settle="0").run()[0]) == ids(events)
    medallion.clock_offset = 31
    assert ids(Input(app, splunkd, medallion, tmp_path / "thirty", settle="30").run()[0]) == ids(events)
    default, log = Input(app, splunkd, medallion, tmp_path / "default").run()
    assert default == [] and held(log) == len(stix_objects(events))     # 31 s is inside the default 60


@pytest.mark.parametrize("value,ok", [("0", True), ("60", True), ("0.5", True), ("86400", True), ("-1", False),
                                      ("soon", False), ("inf", False), ("nan", False), ("86401", False),
                                      ("1e10", False)])
def test_validate_arguments_settle(built_app, value, ok):
    app, _ = built_app
    params = {"source_url": "taxii+https://t.example/api1/collections/x/", "settle": value}
    items = "".join(f'<param name="{k}">{escape(v)}</param>' for k, v in params.items())
    run = run_input(app, ["--validate-arguments"], f'<items><item name="x">{items}</item></items>')
    assert (run.returncode == 0) is ok
    if not ok:
        assert "settle (the TAXII settle window) must be" in ET.fromstring(run.stdout).findtext("message")


def test_what_a_split_page_reads_again_is_within_the_remembered_event_ids(built_app, splunkd, medallion, tmp_path):
    # After a split, runs read again from the split page's first date_added (until what it held settles): its
    # older objects come again and are skipped by the event ids the checkpoint remembers (RECENT_IDS, 20,000). A
    # page was page_size objects (any number up to 999999999): the ids read first from a bigger page were already
    # forgotten, so every run while the page straddled indexed them again. Scaled down: 8 ids remembered (the
    # input run with the checkpoint module's RECENT_IDS set so), page_size 16, 12 indicators added one by one.
    app, _ = built_app
    now = parse_iso(medallion.now())
    older = [indicator(n) for n in range(12)]
    for n, obj in enumerate(older):                         # each at an instant of its own, settled long ago
        medallion.load(WRITABLE, [obj], iso_micro(now - timedelta(seconds=600) + timedelta(milliseconds=n)))
    medallion.load(WRITABLE, [indicator(12)], iso_micro(now))      # still settling
    folder = tmp_path / "a"
    folder.mkdir()
    conf = input_xml(splunkd, folder, "intel", {"source_url": "taxii+" + medallion.collection_url(),
                                                "credential": "taxii", "username": USER, "stix_content": "stix",
                                                "page_size": "16"})
    indexed: list[str] = []
    for _ in range(3):                                      # runs while the newest is within the window
        indexed += run_scaled(app, conf)[0]
        medallion.clock_offset += 10
    assert len(indexed) == len(set(indexed)) == len(older)          # each older indicator indexed once
    medallion.clock_offset += SETTLED
    indexed += run_scaled(app, conf)[0]
    assert len(indexed) == len(set(indexed)) == len(older) + 1


def run_scaled(app: Path, conf: str, recent: int = 8, at_instant: int | None = None) -> tuple[list[str], str]:
    """One run of the input with the checkpoint module's RECENT_IDS set to `recent` (and pull's
    MAX_IDS_AT_INSTANT to `at_instant`): (the ids of the events it indexed, its stderr)."""
    code = ("import sys\nsys.path[:0] = [sys.argv[1] + '/lib', sys.argv[1]]\nimport wia_app.checkpoint, wia_app.pull\n"
            "wia_app.checkpoint.RECENT_IDS = int(sys.argv[2])\n"
            "wia_app.pull.MAX_IDS_AT_INSTANT = int(sys.argv[3]) or wia_app.pull.MAX_IDS_AT_INSTANT\n"
            "from wia_app.modinput import main\nsys.exit(main(['wia_events.py']))\n")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(app / "bin"), str(recent), str(at_instant or 0)],
                          input=conf, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [s["event"]["id"] for s in streamed(done.stdout)], done.stderr


def scaled_input(splunkd, medallion, folder: Path, **params: str) -> str:
    folder.mkdir()
    return input_xml(splunkd, folder, "intel", {"source_url": "taxii+" + medallion.collection_url(), "credential": "taxii",
                                                "username": USER, "stix_content": "stix", "settle": "0", **params})


def checkpoint(folder: Path) -> dict:
    (path,) = folder.glob("wia_events_*.json")
    return json.loads(path.read_text())


def test_an_instant_holding_more_events_than_the_remembered_ids_is_read_past(built_app, splunkd, medallion, tmp_path):
    # Each run reads again from the checkpoint's instant (added_after is exclusive); the 20,000 remembered event ids
    # forgot the instant's first ones, which looked new, filled max_events, and no run got past the instant:
    # duplicates for ever, the later indicator never read. The position now keeps every event id read at its
    # instant. Scaled down: 8 ids remembered (pages of 4), max_events 4.
    app, _ = built_app
    one_instant_then_one_later(medallion)
    conf = scaled_input(splunkd, medallion, tmp_path / "a", max_events="4")
    indexed, logs = [], []
    for _ in range(6):
        ids_, log = run_scaled(app, conf)
        indexed.append(ids_)
        logs.append(log)
    assert [len(i) for i in indexed] == [4, 4, 4, 1, 0, 0]
    everything = [i for run in indexed for i in run]
    assert len(everything) == len(set(everything)) == 13
    assert len(checkpoint(tmp_path / "a")["position"]["ids_at_added_after"]) == 1     # the later instant's one event
    assert " emitted=1 invalid=0 duplicates=12 " in logs[3]   # the instant read again, left out, counted
    assert not [line for log in logs for line in log.splitlines() if line.startswith("WARNING")]


def test_past_the_cap_of_ids_kept_at_an_instant_a_run_warns_and_the_checkpoint_stays_bounded(built_app, splunkd,
                                                                                             medallion, tmp_path):
    # The ids kept at the instant are capped (MAX_IDS_AT_INSTANT, 20,000): past it the first ones stay, the
    # remembered ids cover the rest (each event once while the instant holds up to both together), and a
    # WARNING line says so. Scaled down: 6 kept at the instant, 8 remembered, 12 events at one instant.
    app, _ = built_app
    one_instant_then_one_later(medallion)
    folder = tmp_path / "a"
    conf = scaled_input(splunkd, medallion, folder, max_events="4")
    indexed, sizes, warned = [], [], []
    for _ in range(6):
        ids_, log = run_scaled(app, conf, at_instant=6)
        indexed += ids_
        sizes.append(len(checkpoint(folder)["position"]["ids_at_added_after"]))
        warned += [line for line in log.splitlines() if line.startswith("WARNING") and "more than 6 event ids" in line]
    assert max(sizes) == 6 and sizes[-1] == 1
    assert len(indexed) == len(set(indexed)) == 13
    assert len(warned) == 3                                   # once in each run reading the instant past it


def test_a_checkpoint_without_ids_at_its_instant_resumes_and_gets_past_it(built_app, splunkd, medallion, tmp_path):
    # A checkpoint written before (position added_after, recent_ids), part way into an instant of 12 events.
    app, _ = built_app
    at = one_instant_then_one_later(medallion)
    everything, _ = run_scaled(app, scaled_input(splunkd, medallion, tmp_path / "all"))
    assert len(everything) == 13
    folder = tmp_path / "a"
    conf = scaled_input(splunkd, medallion, folder, max_events="4")
    name = hashlib.sha256(b"wia_events://intel").hexdigest()[:32]
    (folder / f"wia_events_{name}.json").write_text(json.dumps({"position": {"added_after": at},
                                                                "recent_ids": everything[:8]}))
    indexed = [run_scaled(app, conf)[0] for _ in range(4)]
    assert [len(i) for i in indexed] == [4, 1, 0, 0]
    assert sorted(i for run in indexed for i in run) == sorted(everything[8:])


def stuck_warnings(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("WARNING") and "stored position" in line]


@pytest.mark.parametrize("still_listed", [True, False], ids=["stamp still listed", "stamp gone"])
@pytest.mark.parametrize("settle", ["0", "60"])
def test_a_checkpoint_an_earlier_version_left_past_the_servers_clock_is_warned_every_run_until_reset(
        built_app, splunkd, medallion, tmp_path, settle, still_listed):
    # 0.1.0 (and settle 0 before the horizon) took an object stamped 2999 as the checkpoint: every run since asks
    # for objects added after 2999 and indexes nothing, with nothing in splunkd.log saying so. Each run now says so
    # in one WARNING line naming the input, the stored position, the server's clock and the checkpoint file to
    # reset; the position is not moved back by itself (where it stood before is not known). Once reset by hand to
    # an instant before what was missed, the run reads it and warns no more.
    app, _ = built_app
    read_before, missed = stuck_behind_a_stamp_ahead(medallion, still_listed)
    source = Input(app, splunkd, medallion, tmp_path / "a", stix_content="stix", settle=settle)
    name = hashlib.sha256(b"wia_events://intel").hexdigest()[:32]
    checkpoint_file = source.folder / f"wia_events_{name}.json"
    checkpoint_file.write_text(json.dumps({"position": {"added_after": STUCK_POSITION}, "recent_ids": read_before}))
    for _ in range(2):
        stuck, log = source.run()
        assert stuck == [], log                                # indicator(2) is never read from there
        (warned,) = stuck_warnings(log)                        # once per run, the one WARNING
        assert not [line for line in log.splitlines() if line.startswith("WARNING") and line != warned], log
        assert "input=wia_events://intel:" in warned and f"added_after {STUCK_POSITION}" in warned
        assert f"set \"added_after\" under \"position\" in {checkpoint_file}" in warned
        server = parse_iso(warned.split("the TAXII server's clock (", 1)[1].split(")", 1)[0])
        assert abs((server - parse_iso(medallion.now())).total_seconds()) < 5, warned
        assert source.position()["added_after"] == STUCK_POSITION          # not moved back by itself
    # reset as the warning says: added_after set to an instant before what was missed (the remembered ids kept)
    saved = json.loads(checkpoint_file.read_text())
    saved["position"]["added_after"] = iso_micro(parse_iso(medallion.now()) - timedelta(seconds=400))
    checkpoint_file.write_text(json.dumps(saved))
    resumed, log = source.run()
    assert ids(resumed) == missed, log                        # what was missed, and nothing read before again
    assert not stuck_warnings(log) and parse_iso(source.position()["added_after"]) <= parse_iso(medallion.now())


def test_what_the_server_adds_during_a_walk_longer_than_the_window_is_held_and_counted(built_app, splunkd, medallion,
                                                                                       tmp_path, monkeypatch):
    # The horizon was measured at the walk's first answer only: an object the server added during a longer walk,
    # stamped by its own (honest) clock, lay past it and was taken as stamped ahead of the clock (not counted in
    # held=; on a server whose later pages list it, read at once while still settling). Two minutes pass on the
    # server's clock before the walk's second page, and it adds indicator(1) then.
    app, _ = built_app
    now = parse_iso(medallion.now())
    medallion.load(WRITABLE, [indicator(0)], iso_micro(now - timedelta(seconds=600)))
    medallion.load(WRITABLE, [indicator(2)], iso_micro(now - timedelta(seconds=10)))      # settling
    asked = clock_moves_during_the_walk(medallion, monkeypatch, indicator(1))
    source = Input(app, splunkd, medallion, tmp_path / "a", stix_content="stix", page_size="1")
    first, log = source.run()
    assert any("next=" in q for q in asked)                   # the clock moved within the walk
    assert len(first) == 1 and held(log) == 2, log            # indicator(2) and indicator(1), both settling
    assert "later than the server's clock" not in log
    medallion.clock_offset += SETTLED
    later, log = source.run()
    assert len(later) == 2 and held(log) == 0, log
    assert len(source.ids) == len(set(source.ids)) == 3       # each event once
