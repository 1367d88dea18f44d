"""TAXII 2.1 client, sink and source against medallion 3 (OASIS reference server, memory backend)."""
from __future__ import annotations

import copy
import uuid

import pytest
from servers.medallion import PASSWORD, READ_ONLY, USER, WRITABLE
from strategies import event_dicts

from wia_security import convert
from wia_security.connectors import open_sink
from wia_security.connectors.dead_letter import DeadLetterFile
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.sqlite import SqliteSink
from wia_security.connectors.taxii import Checkpoint, TaxiiClient, TaxiiSink, TaxiiSource
from wia_security.errors import ConfigError
from wia_security.pipeline import normalize

STAMP = "2025-03-01T12:00:00.000000Z"


def indicator(n: int, modified: str = "2025-03-01T00:00:00.000Z") -> dict:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.UUID(int=n + 1)}",
            "created": "2025-03-01T00:00:00.000Z", "modified": modified, "name": f"bad ip {n}",
            "pattern": f"[ipv4-addr:value = '198.51.100.{n % 250}']", "pattern_type": "stix",
            "valid_from": "2025-03-01T00:00:00Z", "indicator_types": ["malicious-activity"]}


def client(medallion, url=None) -> TaxiiClient:
    return TaxiiClient(url or medallion.collection_url(), user=USER, password=PASSWORD)


def test_discovery_api_root_and_collections(medallion):
    c = client(medallion, medallion.discovery_url)
    info = c.discover()
    assert info["title"] == "medallion (test)"
    assert info["api_roots"] == [medallion.api_root_url] and info["default"] == medallion.api_root_url
    collections = {x["id"]: x for x in c.collections(medallion.api_root_url)}
    assert set(collections) == {WRITABLE, READ_ONLY}
    assert collections[WRITABLE]["can_write"] and not collections[READ_ONLY]["can_write"]


def test_paging_survives_more_than_a_page_sharing_one_date_added(medallion):
    objects = [indicator(i) for i in range(250)]
    medallion.load(WRITABLE, objects, STAMP)           # 250 objects, one date_added, page size 100
    c = client(medallion)
    coll = c.collection()
    pages = list(c.pages(coll, page_size=100))
    assert [len(p.items) for p in pages] == [100, 100, 50]
    got = [o["id"] for p in pages for o in p.items]
    assert len(got) == len(set(got)) == 250 and set(got) == {o["id"] for o in objects}
    assert {p.date_added_last for p in pages} == {STAMP}
    # The trap avoided: moving added_after to X-TAXII-Date-Added-Last after page one finds nothing more.
    first = coll.get_objects(limit=100)
    naive = coll.get_objects(limit=100, added_after=pages[0].date_added_last)
    assert first["more"] and not naive.get("objects")
    assert len(list(c.manifest(coll, page_size=100))) == 250


def test_filters_type_id_version_and_added_after(medallion):
    c = client(medallion)
    coll = c.collection()
    v1, v2 = indicator(1, "2025-03-01T00:00:00.000Z"), indicator(1, "2025-03-02T00:00:00.000Z")
    medallion.load(WRITABLE, [v1, indicator(2)], "2025-03-01T12:00:00.000000Z")
    medallion.load(WRITABLE, [v2], "2025-03-02T12:00:00.000000Z")
    ident = {"type": "identity", "spec_version": "2.1", "id": f"identity--{uuid.UUID(int=99)}", "name": "x",
             "created": "2025-03-01T00:00:00.000Z", "modified": "2025-03-01T00:00:00.000Z"}
    medallion.load(WRITABLE, [ident], "2025-03-03T12:00:00.000000Z")
    assert {o["type"] for o in c.objects(coll, type="identity")} == {"identity"}
    assert [o["modified"] for o in c.objects(coll, id=v1["id"])] == [v2["modified"]]          # latest by default
    assert sorted(o["modified"] for o in c.objects(coll, id=v1["id"], version="all")) == [v1["modified"], v2["modified"]]
    assert [o["modified"] for o in c.objects(coll, id=v1["id"], version="first")] == [v1["modified"]]
    later = list(c.objects(coll, added_after="2025-03-02T00:00:00Z"))
    assert {o["id"] for o in later} == {v1["id"], ident["id"]}


def test_sink_adds_converted_events_and_resends_are_duplicates(medallion):
    events = event_dicts(12, seed=30, event_type="threat_intel")
    url = "taxii+" + medallion.collection_url()
    with open_sink(url, user=USER, password=PASSWORD) as sink:
        first = sink.send(events)
        first.merge(sink.flush())
        again = sink.send(events)
        again.merge(sink.flush())
    assert (first.delivered, first.failed) == (12, [])
    assert (again.delivered, again.duplicates, again.failed) == (0, 12, [])
    stored = {o["id"] for o in client(medallion).objects(client(medallion).collection())}
    expected = {o["id"] for e in events for o in convert(e, to="stix")["objects"] if o["type"] != "extension-definition"}
    assert stored == expected


def test_sink_to_a_read_only_collection_fails_every_event_with_the_reason(medallion, tmp_path):
    events = event_dicts(3, seed=31, event_type="threat_intel")
    with TaxiiSink(medallion.collection_url(READ_ONLY), user=USER, password=PASSWORD) as sink, \
            DeadLetterFile(str(tmp_path / "dead.ndjson")) as dead:
        report = sink.send(events)
        report.merge(sink.flush())
        for r in report.failed:
            dead.put(r)
    assert report.delivered == 0 and len(report.failed) == 3
    assert all("does not accept objects" in r.reason and not r.retryable for r in report.failed)
    assert len((tmp_path / "dead.ndjson").read_text().splitlines()) == 3


def test_wrong_credentials_are_a_config_error_that_hides_the_password(medallion):
    with pytest.raises(ConfigError) as info:
        TaxiiSink(medallion.collection_url(), user=USER, password="not-the-password")
    assert "401" in str(info.value) and "not-the-password" not in str(info.value)


def test_source_polls_incrementally_with_a_checkpoint(medallion, tmp_path):
    first_batch = event_dicts(8, seed=32, event_type="threat_intel")
    with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD) as sink:
        assert sink.send(first_batch).merge(sink.flush()).delivered == 8
    checkpoint = str(tmp_path / "checkpoint.json")
    store = SqliteSink(str(tmp_path / "events.db"))
    source = TaxiiSource(medallion.collection_url(), user=USER, password=PASSWORD, page_size=7, settle=0)
    with store, DeadLetterFile(str(tmp_path / "dead.ndjson")) as dead:
        totals = source.run(store, dead, checkpoint)
        assert totals["events"] == 8
        got = {e.id: e.event for e in store.store.query(limit=None)}
        # The WIA extension brings each back whole (as the forward pipeline normalizes it).
        assert got == {e["id"]: normalize(copy.deepcopy(e)) for e in first_batch}
        assert source.run(store, dead, checkpoint)["events"] == 0  # nothing new
        second_batch = event_dicts(5, seed=33, event_type="threat_intel")
        with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD) as sink:
            sink.send(second_batch)
        assert source.run(store, dead, checkpoint)["events"] == 5
        assert store.store.count() == 13
    assert Checkpoint.load(checkpoint).added_after is not None
    assert not (tmp_path / "dead.ndjson").exists()
    source.close()



def test_chunks_end_between_date_added_instants_never_inside_one_events_objects(medallion, tmp_path):
    # With a chunk size smaller than a poll, a cut in the middle of one event's objects read them as
    # two partial events (60 events stored as 62). A chunk now ends only where a later instant starts.
    events = event_dicts(60, seed=34, event_type="threat_intel")
    policy = DeliveryPolicy(max_events=1, max_wait=0)             # 60 requests: 60 date_added instants
    with TaxiiSink(medallion.collection_url(), user=USER, password=PASSWORD, delivery=policy) as sink:
        assert sink.send(events).merge(sink.flush()).delivered == 60
    source = TaxiiSource(medallion.collection_url(), user=USER, password=PASSWORD, page_size=7, batch_objects=40,
                         settle=0)
    chunks = list(source.poll(Checkpoint()))
    assert len(chunks) > 2                                          # it did cut, between instants
    assert sorted(e["id"] for c in chunks for e in c.events) == sorted(e["id"] for e in events)
    assert all(not c.rejected for c in chunks)
    with SqliteSink(str(tmp_path / "events.db")) as store, DeadLetterFile(str(tmp_path / "dead.ndjson")) as dead:
        source.run(store, dead, str(tmp_path / "checkpoint.json"))
        assert store.store.count() == 60


def test_an_add_outlasting_the_settle_window_is_read_in_part_and_the_next_poll_reads_the_rest(medallion, tmp_path):
    """medallion adds one request's objects one by one, all under the request's date_added, so a poll
    running meanwhile lists part of them. Within the settle window they are held
    (test_taxii_settle.py); an Add still running when its date_added is older than the window (here
    a year) is listed in part and read as it stands: an event's indicator without its malware
    (which carries the WIA event) is an event of its own, under a derived uuid5 id. The rest shares
    the newest date_added, which the next poll asks for again skipping only the keys it saw, so
    nothing is skipped and every event arrives whole with its carrier."""
    events = event_dicts(4, seed=36, event_type="threat_intel")
    objects = list({o["id"]: o for e in events for o in convert(e, to="stix")["objects"]
                    if o["type"] != "extension-definition"}.values())
    cut = next(i for i, o in enumerate(objects) if o["type"] == "indicator") + 1   # its malware comes later
    checkpoint, sent = str(tmp_path / "checkpoint.json"), {e["id"] for e in events}
    source = TaxiiSource(medallion.collection_url(), user=USER, password=PASSWORD)
    with SqliteSink(str(tmp_path / "events.db")) as store, DeadLetterFile(str(tmp_path / "dead.ndjson")) as dead:
        medallion.load(WRITABLE, objects[:cut], STAMP)
        source.run(store, dead, checkpoint)
        partial = {e.id for e in store.store.query(limit=None)}
        medallion.load(WRITABLE, objects[cut:], STAMP)                 # the same request, finished
        source.run(store, dead, checkpoint)
        stored = {e.id: e.event for e in store.store.query(limit=None)}
    derived = set(stored) - sent
    assert partial - sent and partial - sent == derived             # the cut event: read as plain STIX, as it stood
    assert all(uuid.UUID(i).version == 5 for i in derived)
    assert sent <= set(stored)                                      # then every event, whole
    assert {i: stored[i] for i in sent} == {e["id"]: normalize(copy.deepcopy(e)) for e in events}
    source.close()


def test_a_lenient_poll_takes_a_wia_extension_event_with_a_null_member_a_strict_one_dead_letters_it(medallion,
                                                                                                     tmp_path):
    """`pull --lenient` accepts an event carrying null for an absent optional member (the validator drops it);
    since the STIX reader checks the event it restores from the WIA extension, the source must pass the mode
    on: it read strictly and dead-lettered such an event whatever the run's mode."""
    event = event_dicts(1, seed=634, event_type="threat_intel")[0]
    event["meta"] = {**event.get("meta", {}), "correlation_id": None}         # null for an absent member
    bundle = convert(event, to="stix")
    taxii = client(medallion)
    # without the extension definition, as TaxiiSink sends them (medallion reads its `version` as the object's)
    taxii.add(taxii.collection(), [o for o in bundle["objects"] if o["type"] != "extension-definition"])
    for lenient, stored, dead in ((False, 0, 1), (True, 1, 0)):
        store = SqliteSink(str(tmp_path / f"events-{lenient}.db"))
        dead_path = tmp_path / f"dead-{lenient}.ndjson"
        source = TaxiiSource(medallion.collection_url(), user=USER, password=PASSWORD, settle=0)
        with store, DeadLetterFile(str(dead_path)) as dead_letter:
            source.run(store, dead_letter, str(tmp_path / f"checkpoint-{lenient}.json"), lenient=lenient)
            got = {e.id: e.event for e in store.store.query(limit=None)}
        source.close()
        assert (event["id"] in got) == bool(stored), lenient
        records = dead_path.read_text().splitlines() if dead_path.exists() else []
        assert sum(event["id"] in line for line in records) == dead, (lenient, records)
        if lenient:
            assert "correlation_id" not in got[event["id"]].get("meta", {})
        else:
            assert "null is not of type" in records[0] or "None is not of type" in records[0], records[0]
