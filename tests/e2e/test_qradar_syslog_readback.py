"""`forward` -> the QRadar syslog sink (LEEF 2.0 and CEF, over TCP and TLS, octet-counted or LF-framed) -> the
suite's real rsyslog -> the lines it wrote -> `convert --from leef|cef` -> WIA. Events timed in every valid spelling
and holding arbitrary unicode (pipes, carets, backslashes, `=`, line breaks, emoji, bidi marks) come back exactly,
as docs/formats/leef.md and cef.md claim; what a SIEM reads as the event's time (LEEF `devTime`, CEF `rt`) is the
event's instant to the millisecond; the two events whose UTC instant leaves 0001-9999 travel without a devTime
(LEEF) and come back all the same. U+0000 is left out: rsyslog writes it as `#000` (docs/connectors/qradar.md,
Limits)."""
from __future__ import annotations

import json
import re
from typing import Any

import pytest
from e2e_helpers import (OUT_OF_RANGE_SPELLINGS, expected, instant, read_ndjson, time_spellings, with_times,
                         write_ndjson)
from strategies import event_dicts

from servers.rsyslog import Rsyslog, rsyslog  # noqa: F401  (fixture)
from wia_security.cli import main
from wia_security.timeutil import to_epoch_ms


def without_nul(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_nul(v) for k, v in node.items()}
    if isinstance(node, list):
        return [without_nul(v) for v in node]
    return node.replace("\x00", "") if isinstance(node, str) else node


@pytest.mark.parametrize("fmt,transport,framing", [("leef", "tcp", "octet"), ("leef", "tls", "octet"),
                                                   ("cef", "tcp", "octet"), ("cef", "tls", "octet"),
                                                   ("leef", "tcp", "lf"), ("cef", "tls", "lf")])
def test_syslog_lines_convert_back_to_the_events_sent(fmt: str, transport: str, framing: str, rsyslog: Rsyslog,
                                                      tmp_path, capsys):
    rsyslog.clear()
    spellings = time_spellings() + OUT_OF_RANGE_SPELLINGS
    events = [without_nul(e) for e in with_times(event_dicts(len(spellings), seed=1494, wild=True), spellings)]
    port, tls = (rsyslog.tcp, "") if transport == "tcp" else (rsyslog.tls, f"&ca_file={rsyslog.ca}")
    code = main(["forward", str(write_ndjson(tmp_path / "in.ndjson", events)), "--to",
                 f"qradar+{transport}://127.0.0.1:{port}?format={fmt}&framing={framing}{tls}", "--dead-letter",
                 str(tmp_path / "dead.ndjson"), "--no-progress", "--summary", "json"])
    forwarded = json.loads(capsys.readouterr().out)
    assert (code, forwarded["delivered"]) == (0, len(events)) and not read_ndjson(tmp_path / "dead.ndjson")
    lines = rsyslog.wait_for(len(events))
    assert len(lines) == len(events)
    (tmp_path / "received.log").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    code = main(["convert", "--from", fmt, str(tmp_path / "received.log"), "-o", str(tmp_path / "back.ndjson"),
                 "--dead-letter", str(tmp_path / "convert-dead.ndjson"), "--no-progress"])
    capsys.readouterr()
    back = {e["id"]: e for e in read_ndjson(tmp_path / "back.ndjson")}
    assert code == 0 and not read_ndjson(tmp_path / "convert-dead.ndjson")
    assert back == {e["id"]: expected(e) for e in events}
    # the time a SIEM files the event under: its own instant, cut to the millisecond
    for line in lines:
        wia_id = re.search(r"(?:cs1|wia\.id)=([0-9a-f-]{36})", line)
        event = back[wia_id[1]] if wia_id else None
        assert event is not None, line[:200]
        if fmt == "cef":
            assert int(re.search(r" rt=(-?\d+)", line)[1]) == to_epoch_ms(event["timestamp"])
        elif event["timestamp"] not in OUT_OF_RANGE_SPELLINGS:
            dev_time = re.search(r"devTime=([^\t^|]+)", line)[1]
            assert instant(dev_time.replace("+0000", "+00:00")) == instant(event["timestamp"]).replace(
                microsecond=instant(event["timestamp"]).microsecond // 1000 * 1000)
