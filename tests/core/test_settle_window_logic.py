"""wia_security.taxii_settle: the pure logic of the TAXII settle window (shared by the TAXII source, the Splunk
app and the XSOAR pack; their tests against medallion exercise it end to end)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from wia_security.taxii_settle import (SettleWindow, classify, cutoff, date_behind, just_before, measure, page_bounds,
                                       reaches_past, recent_ids, server_clock, settle_seconds, stored_past_horizon,
                                       stored_past_warning)
from wia_security.timeutil import parse_iso

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("timestamp,before", [
    ("2026-01-05T10:00:00.000000Z", "2026-01-05T09:59:59.999999Z"),
    ("2026-01-05T11:00:00+01:00", "2026-01-05T09:59:59.999999Z"),
    ("0232-06-01T00:00:00Z", "0232-05-31T23:59:59.999999Z"),        # glibc's strftime wrote the year as "232"
    ("0001-01-01T00:00:00.000001Z", "0001-01-01T00:00:00.000000Z"),
])
def test_just_before(timestamp, before):
    assert just_before(timestamp) == before


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00"])
def test_nothing_is_before_the_first_instant_of_the_year_1(timestamp):
    # It overflowed (OverflowError): a checkpoint or date header at the year 1 ended every poll.
    assert just_before(timestamp) is None


def test_just_before_refuses_what_is_not_a_timestamp():
    with pytest.raises(ValueError):
        just_before("soon")


@pytest.mark.parametrize("value,seconds", [("0", 0.0), (60, 60.0), ("0.5", 0.5), ("86400", 86400.0)])
def test_settle_seconds(value, seconds):
    assert settle_seconds(value) == seconds


@pytest.mark.parametrize("value,why", [("-1", ">= 0"), ("soon", "a number of seconds"), ("inf", ">= 0"),
                                       ("nan", ">= 0"), (None, "a number of seconds"), ("86401", "at most 86400")])
def test_settle_seconds_refused(value, why):
    with pytest.raises(ValueError, match=why):
        settle_seconds(value)


def test_server_clock_is_the_date_header_less_the_round_trip():
    assert server_clock("Sun, 01 Mar 2026 12:00:00 GMT", timedelta(seconds=3)) == NOW - timedelta(seconds=3)
    for unusable in (None, "", "not a date", "Fri, 31 Dec 9999 23:59:59 -2359", "Sun, 01 Mar 2026 12:00:00"):
        assert server_clock(unusable) is None


def test_cutoff_takes_the_servers_clock_or_its_newest_stamp_or_ours():
    assert cutoff(60, NOW) == NOW - timedelta(seconds=60)
    later = "2026-03-01T12:00:30Z"                  # a Date header lagging the stamps (a proxy's clock)
    assert cutoff(60, NOW, latest=later, our_now=NOW) == parse_iso(later) - timedelta(seconds=60)
    # ours is later still: the Date header is stuck behind, and a stamp up to ours (plus the window) is not ahead
    assert cutoff(60, NOW, latest="2026-03-01T12:05:00Z", our_now=NOW + timedelta(minutes=5)) == \
        parse_iso("2026-03-01T12:04:00Z")
    assert cutoff(60, None, round_trip=timedelta(seconds=2), our_now=NOW) == NOW - timedelta(seconds=62)
    assert cutoff(60, datetime(1, 1, 1, 0, 0, 30, tzinfo=timezone.utc)).year == 1      # no OverflowError


def test_page_bounds_and_reaching_past():
    cut = NOW
    assert page_bounds("2026-03-01T11:00:00Z", None, 1) == ("2026-03-01T11:00:00Z", "2026-03-01T11:00:00Z")
    assert page_bounds("2026-03-01T11:00:00Z", None, 2) == ("2026-03-01T11:00:00Z", None)
    assert not reaches_past("2026-03-01T11:00:00Z", "2026-03-01T12:00:00Z", 5, cut)
    assert reaches_past("2026-03-01T11:00:00Z", "2026-03-01T12:00:00.000001Z", 5, cut)
    assert reaches_past("2026-03-01T11:00:00Z", None, 5, cut)          # its end unknown
    assert not reaches_past(None, None, 5, cut)                          # no headers: read as it stands


def test_recent_ids_leave_out_entries_dated_at_or_before_the_cutoff():
    entries = [{"id": "a", "date_added": "2026-03-01T12:00:01Z"}, {"id": "b", "date_added": "2026-03-01T12:00:00Z"},
               {"id": "c"}, {"date_added": "2026-03-01T12:00:01Z"}, "junk"]
    assert recent_ids(entries, NOW) == {"a", "c"}


def page(window: SettleWindow, objects, first, last, recent=lambda cut: []):
    return window.page(objects, first, last, date_header="Sun, 01 Mar 2026 12:01:00 GMT", recent=recent)


def test_a_window_reads_settled_pages_splits_the_straddling_one_and_holds_the_rest():
    window = SettleWindow(60)                      # cutoff 12:00:00
    settled = page(window, [{"id": "x"}], "2026-03-01T11:00:00Z", "2026-03-01T11:59:59Z")
    assert (settled.objects, settled.held, settled.position, settled.done) == ([{"id": "x"}], [], "2026-03-01T11:59:59Z", False)
    asked = []

    def recent(cut):
        asked.append(cut)
        return [{"id": "new", "date_added": "2026-03-01T12:00:30Z"}]
    split = page(window, [{"id": "old"}, {"id": "new"}, {"no": "id"}], "2026-03-01T11:59:59Z", "2026-03-01T12:00:30Z",
                 recent)
    assert asked == [NOW]
    assert split.objects == [{"id": "old"}] and split.held == [{"id": "new"}, {"no": "id"}]
    assert split.position == "2026-03-01T11:59:59Z" and split.done     # before every held object


def test_a_window_holds_a_page_wholly_past_the_cutoff_or_one_it_cannot_split():
    # the manifest of what was added after the cutoff counts the held objects of later pages too (b, c)
    later = [{"id": i, "date_added": "2026-03-01T12:00:40Z"} for i in ("a", "b", "c")]
    held = page(SettleWindow(60), [{"id": "a"}], "2026-03-01T12:00:01Z", "2026-03-01T12:00:30Z", lambda cut: later)
    assert (held.objects, held.position, held.done, held.held_in_all) == ([], None, True, 3)
    unlisted = page(SettleWindow(60), [{"id": "a"}, {"id": "b"}], "2026-03-01T11:00:00Z", "2026-03-01T12:00:30Z",
                    lambda cut: None)
    assert (unlisted.objects, len(unlisted.held), unlisted.position, unlisted.held_in_all) == ([], 2, None, None)
    split = page(SettleWindow(60), [{"id": "old"}, {"id": "a"}], "2026-03-01T11:00:00Z", "2026-03-01T12:00:30Z",
                 lambda cut: later)
    assert (split.objects, split.held, split.held_in_all) == ([{"id": "old"}], [{"id": "a"}], 3)


def test_settle_zero_reads_everything():
    everything = SettleWindow(0).page([{"id": "a"}], "2026-03-01T12:00:59Z", "2026-03-01T12:00:59Z",
                                      date_header="Sun, 01 Mar 2026 12:01:00 GMT", recent=lambda cut: None)
    assert (everything.objects, everything.done, everything.position) == ([{"id": "a"}], False, "2026-03-01T12:00:59Z")


def test_a_stamp_beyond_the_horizon_does_not_move_the_cutoff():
    # The horizon: the later of the server's clock (Date, the round trip added back) and ours, plus the window and a
    # second (Date has whole seconds). A stamp past it (the year 2999) lifted the cutoff to itself.
    clocks = measure(60, NOW, round_trip=timedelta(seconds=2), latest="2999-01-01T00:00:00Z", our_now=NOW)
    assert clocks.horizon == NOW + timedelta(seconds=2 + 60 + 1) and clocks.cutoff == NOW - timedelta(seconds=60)
    assert measure(0, None, latest="2026-03-01T12:00:00.5Z", our_now=NOW).horizon == NOW + timedelta(seconds=1)
    assert measure(86400, datetime(9999, 12, 31, 12, tzinfo=timezone.utc)).horizon.year == 9999    # no OverflowError


def test_classify_tells_settling_objects_from_those_stamped_ahead():
    clocks = measure(60, NOW, our_now=NOW)                # cutoff 11:59:00, horizon 12:01:01
    entries = [{"id": "s", "date_added": "2026-03-01T11:59:30Z"}, {"id": "a", "date_added": "2999-01-01T00:00:00Z"},
               {"id": "old", "date_added": "2026-03-01T11:00:00Z"}, {"id": "both", "date_added": "2999-01-01T00:00:00Z"},
               {"id": "both", "date_added": "2026-03-01T11:59:59Z"}]
    assert classify(lambda at: entries, clocks, 60) == ({"s", "both"}, {"a"})
    # Get Objects (no date_added): what was added after the horizon is asked for too
    asked = []

    def objects(at):
        asked.append(at)
        return [{"id": "s"}, {"id": "a"}] if at == clocks.cutoff else [{"id": "a"}]
    assert classify(objects, clocks, 60) == ({"s"}, {"a"}) and asked == [clocks.cutoff, clocks.horizon]
    assert classify(lambda at: [{"id": "a"}] if at == clocks.horizon else pytest.fail("asked"), clocks, 0) == \
        (set(), {"a"})
    assert classify(lambda at: None, clocks, 60) is None


@pytest.mark.parametrize("settle", [0, 60])
def test_a_window_reads_objects_stamped_ahead_and_keeps_the_position_at_the_cutoff(settle):
    window = SettleWindow(settle)
    listed = [{"id": "a", "date_added": "2999-01-01T00:00:00Z"}, {"id": "b", "date_added": "2999-01-02T00:00:00Z"}]
    read = window.page([{"id": "old"}, {"id": "a"}], "2026-03-01T11:00:00Z", "2999-01-01T00:00:00Z",
                       date_header="Sun, 01 Mar 2026 12:01:00 GMT", recent=lambda at: listed,
                       our_now=NOW + timedelta(minutes=1))
    assert read.objects == [{"id": "old"}, {"id": "a"}] and read.held == [] and not read.done
    assert read.capped and read.ahead == 1 and read.position == f"2026-03-01T12:{1 - settle // 60:02d}:00.000000Z"
    assert "1 TAXII object(s) carry a date_added later than the server's clock" in window.ahead_warning()
    # a later page, all stamped ahead: read, same position, the manifest not asked again
    more = window.page([{"id": "b"}], "2999-01-02T00:00:00Z", None, recent=lambda at: pytest.fail("asked again"))
    assert (more.objects, more.capped, more.position) == ([{"id": "b"}], True, read.position)


def test_a_window_holding_settling_objects_reads_those_stamped_ahead_with_the_position_at_the_cutoff():
    window = SettleWindow(60)                      # cutoff 12:00:00
    listed = [{"id": "new", "date_added": "2026-03-01T12:00:30Z"}, {"id": "a", "date_added": "2999-01-01T00:00:00Z"}]
    split = window.page([{"id": "old"}, {"id": "new"}, {"id": "a"}], "2026-03-01T11:59:59Z", "2999-01-01T00:00:00Z",
                        date_header="Sun, 01 Mar 2026 12:01:00 GMT", recent=lambda at: listed,
                        our_now=NOW + timedelta(minutes=1))
    assert split.objects == [{"id": "old"}, {"id": "a"}] and split.held == [{"id": "new"}] and split.done
    assert split.position == "2026-03-01T12:00:00.000000Z" and split.held_in_all == 1


def test_a_date_header_behind_the_stamps_by_more_than_the_window_is_named():
    ours = NOW + timedelta(hours=1)                # the Date an hour behind ours and the stamps
    behind = measure(60, NOW, latest="2026-03-01T12:58:00Z", our_now=ours)
    assert behind.cutoff == parse_iso("2026-03-01T12:57:00Z")           # from the stamp, as before
    assert "Date header (2026-03-01T12:00:00Z" in date_behind(behind) and "2026-03-01T12:58:00.000000Z" in date_behind(behind)
    assert date_behind(measure(60, NOW, latest="2026-03-01T12:01:00Z", our_now=ours)) is None     # within the window
    assert date_behind(measure(0, NOW, latest="2026-03-01T12:58:00Z", our_now=ours)) is None      # nothing is held
    assert date_behind(measure(60, None, latest="2026-03-01T12:58:00Z", our_now=ours)) is None    # no Date


def test_a_stored_position_past_the_horizon_is_named_with_the_servers_clock():
    clocks = measure(60, NOW, our_now=NOW)
    assert stored_past_horizon("2999-01-01T00:00:00Z", clocks)
    assert not stored_past_horizon("2026-03-01T12:01:01Z", clocks)      # within the window and the Date's second
    assert not stored_past_horizon(None, clocks) and not stored_past_horizon("not a date", clocks)
    said = stored_past_warning("2999-01-01T00:00:00.000000Z", clocks)
    assert "added_after 2999-01-01T00:00:00.000000Z" in said and "the TAXII server's clock (2026-03-01T12:00:00Z)" in said
    assert "our clock (the TAXII server sent no Date header) (2026-03-01T12:00:00Z)" in \
        stored_past_warning("2999-01-01T00:00:00Z", measure(60, None, our_now=NOW))
    window = SettleWindow(0)
    assert window.stored_past("2999-01-01T00:00:00Z") is None              # no clocks before the first page
