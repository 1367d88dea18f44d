"""FanOut.flush/close when a destination's flush or close raises (the file sink's fsync failing: OutputError). With that
sink alone the run stops and no source position moves past events not yet on the disk; through a --config
fan-out the exception was swallowed (a flush has no events of its own to fail), not even logged, and the run
went on as if they were durable."""
from __future__ import annotations

import json
import os

import pytest

from strategies import event_dicts  # noqa: E402

from wia_security.connectors.delivery import FanOut
from wia_security.connectors.file import FileSink
from wia_security.errors import OutputError


class FsyncFails(FileSink):
    """A real file sink whose disk refuses the fsync (EIO), as FileSink.flush reports it."""

    def flush(self):  # type: ignore[no-untyped-def]
        raise OutputError(f"the file {self.path}", "fsync failed: Input/output error")


def test_a_destination_whose_flush_raises_stops_the_fan_out_after_the_others_flushed(tmp_path):
    events = event_dicts(4, seed=13)
    good, bad = FileSink(str(tmp_path / "good.ndjson")), FsyncFails(str(tmp_path / "bad.ndjson"))
    fan = FanOut({"archive": good, "siem": bad})
    report = fan.send(events)
    assert report.delivered == 8                      # written to both; durable only once flushed
    with pytest.raises(OutputError, match="bad.ndjson: fsync failed"):
        fan.flush()
    with pytest.raises(OutputError):                 # a second call says it again, nothing swallowed
        FanOut({"siem": bad}).flush()
    fan.close()
    assert bad._fh.closed and good._fh.closed                        # both closed all the same
    assert [json.loads(x)["id"] for x in (tmp_path / "good.ndjson").read_text().splitlines()] == \
        [e["id"] for e in events]


def test_close_closes_every_destination_and_the_pool_when_one_raises(tmp_path, caplog):
    """Closing is the end: a destination whose close raises is logged by name, the others are closed and
    their reports still returned (the gateway dead-letters what they settled)."""
    class CloseFails(FileSink):
        def close(self):  # type: ignore[no-untyped-def]
            super().close()
            raise OSError(5, "Input/output error")

    first, second = CloseFails(str(tmp_path / "a.ndjson")), FileSink(str(tmp_path / "b.ndjson"))
    fan = FanOut({"a": first, "b": second})
    with caplog.at_level("ERROR", logger="wia_security.delivery"):
        report = fan.close()
    assert report is not None and not report.failed
    assert second._fh.closed and fan._pool._shutdown
    assert any("destination a failed: OSError" in r.getMessage() for r in caplog.records)


def test_contract_failures_settled_by_close_are_logged_when_the_fan_out_is_left(caplog):
    """A run that stops early (an unwritable dead letter, a second Ctrl-C) leaves the fan-out by its `with`
    block with events still buffered at a destination. Alone, the HEC sink logs what its close could not
    deliver; through FanOut the failures were dropped without a word."""
    from servers.hec_contract import HecContractServer
    from wia_security.connectors.delivery import DeliveryPolicy
    from wia_security.connectors.splunk.hec import HecSink
    with HecContractServer({"the-token": {}}) as server:
        sink = HecSink(server.url, token="another-token", delivery=DeliveryPolicy(max_wait=0))
        with caplog.at_level("ERROR", logger="wia_security.delivery"), FanOut({"siem": sink}) as fan:
            assert fan.send(event_dicts(3, seed=15)).delivered == 0          # buffered, not sent yet
    [line] = [r.getMessage() for r in caplog.records if "failed while closing" in r.getMessage()]
    assert "3 event(s)" in line and "siem: HEC 403 code 4: Invalid token" in line
