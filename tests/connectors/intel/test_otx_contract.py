"""OTX subscribed pulses -> WIA threat_intel, incremental by modified time, against the OTX contract server."""
from __future__ import annotations

import json

import pytest

from otx_contract import Fault, OtxServer
from wia_security.connectors.delivery import DeliveryPolicy
from wia_security.connectors.intel.otx import OtxSource, pulse_to_wia
from wia_security.connectors.sqlite import SqliteSink
from wia_security.errors import DeliveryError
from wia_security.validation import validate_event

KEY = "otx-test-key"
FAST = DeliveryPolicy(initial_backoff=0.001, max_backoff=0.002, max_attempts=3)


def pulse(n: int, modified: str, **extra) -> dict:
    return {"id": f"65a1b2c3d4e5f6a7b8c9d{n:03d}", "name": f"Pulse {n}", "description": "", "author_name": "AlienVault",
            "created": "2026-01-01T00:00:00.000000", "modified": modified, "revision": 1, "tlp": "white",
            "public": 1, "adversary": "", "targeted_countries": [], "industries": [], "malware_families": [],
            "attack_ids": [], "references": [], "tags": [],
            "indicators": [{"id": n, "indicator": f"198.51.100.{n}", "type": "IPv4", "created": "2026-01-01T00:00:00",
                            "title": "", "description": "", "is_active": 1, "expiration": None}], **extra}


@pytest.fixture
def otx():
    with OtxServer(api_key=KEY) as server:
        server.pulses = [pulse(i, f"2026-02-{i:02d}T10:00:00.000000") for i in range(1, 8)]
        yield server


def test_pulses_are_paged_via_next_and_mapped(otx):
    otx.pulses.append(pulse(9, "2026-02-09T08:30:00.123000", name="LockBit ransomware affiliates",
                            adversary="LockBit", malware_families=[{"id": "x", "display_name": "LockBit"}],
                            attack_ids=[{"id": "T1486", "name": "Data Encrypted for Impact"}, "T1566.001"],
                            industries=["Finance"], targeted_countries=["Germany"], tags=["ransomware"], tlp="amber",
                            references=["https://example.org/report"],
                            indicators=[{"indicator": "lockbit.example.net", "type": "domain", "is_active": 1,
                                         "created": "2026-02-08T00:00:00", "description": "leak site"},
                                        {"indicator": "44d88612fea8a8f36de82e1278abb02f", "type": "FileHash-MD5"},
                                        {"indicator": "CVE-2024-1234", "type": "CVE"},
                                        {"indicator": "C:\\x.exe", "type": "FilePath"}]))
    source = OtxSource(KEY, base_url=otx.url, page_size=3)
    events = list(source.poll())
    assert len(events) == 8 and source.pages == 3
    assert [r.query.get("page") for r in otx.calls()] == [None, ["2"], ["3"]]
    assert otx.calls()[0].query == {"limit": ["3"]}
    assert all(r.headers["x-otx-api-key"] == "***" for r in otx.calls())
    for e in events:
        assert validate_event(e).valid, validate_event(e).errors
    last = events[-1]
    d = last["data"]
    assert (d["threat_type"], d["threat_family"], d["aliases"]) == ("ransomware", "LockBit", ["LockBit"])
    assert [(i["type"], i["value"]) for i in d["indicators"]] == [("domain", "lockbit.example.net"),
                                                                  ("file_hash_md5", "44d88612fea8a8f36de82e1278abb02f")]
    assert [t["technique"] for t in d["ttps"]] == ["T1486", "T1566.001"]
    assert last["mitre"]["technique"] == "T1486" and last["mitre"]["tactic"] == "TA0040"
    assert (d["target_sectors"], d["target_countries"]) == (["Finance"], ["Germany"])
    assert last["timestamp"] == "2026-02-09T08:30:00.123Z" and "tlp:amber" in last["meta"]["tags"]
    assert last["meta"]["custom"]["otx"]["unmapped_indicators"] == 2


def test_incremental_by_modified_time_with_a_committed_cursor(otx, tmp_path):
    state = str(tmp_path / "otx-state.json")
    store = SqliteSink(str(tmp_path / "events.db"))
    source = OtxSource(KEY, base_url=otx.url, state_path=state, page_size=5)
    first = list(source.poll())
    assert len(first) == 7
    assert store.send(first).delivered == 7
    source.commit()
    assert json.loads(open(state).read())["modified_since"] == "2026-02-07T10:00:00.000000"
    # a new pulse and an edited old one: only those come back, asked with modified_since
    otx.pulses.append(pulse(8, "2026-02-08T10:00:00.000000"))
    otx.pulses[0] = pulse(1, "2026-02-10T09:00:00.000000")
    again = OtxSource(KEY, base_url=otx.url, state_path=state)         # a new process reads the state file
    second = list(again.poll())
    assert otx.calls()[-1].query["modified_since"] == ["2026-02-07T10:00:00.000000"]
    assert [e["data"]["threat_name"] for e in second] == ["Pulse 8", "Pulse 1"]
    report = store.send(second)
    assert report.delivered == 2 and report.duplicates == 0           # a new revision is a new event
    # not committed (say delivery failed): the next poll re-reads the same pulses, which de-duplicate
    third = list(OtxSource(KEY, base_url=otx.url, state_path=state).poll())
    assert store.send(third).duplicates == 2
    store.close()


def test_throttling_and_server_errors_are_retried(otx):
    otx.faults += [Fault(429, {"detail": "Request was throttled."}, headers={"Retry-After": "0"}),
                   Fault(502, b"<html>Bad Gateway</html>", headers={"Content-Type": "text/html"})]
    slept: list[float] = []
    source = OtxSource(KEY, base_url=otx.url, retry=FAST, sleep=slept.append)
    assert len(list(source.poll())) == 7
    assert len(slept) == 2
    otx.faults += [Fault(503, {"detail": "down"})] * 3
    with pytest.raises(DeliveryError, match="HTTP 503") as err:
        list(OtxSource(KEY, base_url=otx.url, retry=FAST, sleep=lambda s: None).poll())
    assert err.value.retryable


def test_bad_key_is_a_permanent_error_and_never_shown(otx):
    source = OtxSource("wrong-key", base_url=otx.url, retry=FAST, sleep=lambda s: None)
    with pytest.raises(DeliveryError, match="HTTP 403: Invalid API key") as err:
        list(source.poll())
    assert not err.value.retryable and "wrong-key" not in str(err.value) and "wrong-key" not in repr(source)
    assert len(otx.calls()) == 1


def test_next_link_to_another_host_is_refused(otx):
    otx.next_host = "http://127.0.0.2:9"
    source = OtxSource(KEY, base_url=otx.url, page_size=2)
    with pytest.raises(DeliveryError, match="refusing to send the key there"):
        list(source.poll())
    assert len(otx.calls()) == 1
    source.commit()
    assert source.cursor is None                                      # an incomplete poll never moves the cursor


def test_pulse_without_indicators_maps_validly():
    e = pulse_to_wia({"id": "abc", "name": "Empty", "modified": "2026-01-01T00:00:00", "indicators": []})
    assert validate_event(e).valid and e["data"]["status"] == "active" and "indicators" not in e["data"]
