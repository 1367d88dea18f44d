"""An event holding NaN or Infinity is rejected and reported, never made an incident whose rawJSON is not JSON.

Python's json reads NaN, Infinity and -Infinity (a Kafka message, a TAXII server's answer), and the schema leaves
data's extra properties free, so such an event validated; json.dumps wrote them back as bare NaN / Infinity into the
incident's rawJSON (and wia-get-events' context), which JSON (RFC 8259) and XSOAR's JSON readers refuse. Run
through main() against tansu."""
from __future__ import annotations

import json

import pytest

from wia_security import AlertBuilder

from .conftest import run_command

pytestmark = pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning",
                                        "ignore:open_text is deprecated:DeprecationWarning")


def strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_an_event_holding_nan_is_rejected_naming_where(integration, demisto):
    from confluent_kafka import Producer
    from servers.tansu import start_tansu
    events = [AlertBuilder().title(f"alert {i}").severity(5).build().to_dict() for i in range(3)]
    raw = [json.dumps(e) for e in events]
    raw[1] = json.dumps(dict(events[1], data={**events[1]["data"],          # data's free properties
                                              "scores": {"anomaly": float("nan"), "spread": [1, float("-inf")]}}))
    assert "NaN" in raw[1] and "-Infinity" in raw[1]
    broker = start_tansu()
    try:
        topic = broker.create_topic(partitions=1)
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        for text in raw:
            producer.produce(topic, value=text.encode(), partition=0)
        assert producer.flush(15) == 0
        del producer
        params = {"url": f"kafka://{broker.bootstrap}/{topic}", "source_type": "kafka", "max_fetch": "10"}
        run_command(integration, demisto, "fetch-incidents", params=params)
        incidents = demisto.incidents_out[-1]
        errors = [m for level, m in demisto.logs if level == "error"]
        state = demisto.last_run
        (entry,) = run_command(integration, demisto, "wia-get-events", {"limit": "10"}, params)
    finally:
        broker.kill()
    assert [strict_json(i["rawJSON"])["id"] for i in incidents] == [events[0]["id"], events[2]["id"]]
    assert any(events[1]["id"] in m and "/data/scores/anomaly" in m and "NaN" in m for m in errors), errors
    assert state["offsets"] == {"0": 3}                 # read past it: reported once, not read again
    assert [e["id"] for e in entry["Contents"]] == [events[0]["id"], events[2]["id"]]
    strict_json(json.dumps(entry["Contents"]))
