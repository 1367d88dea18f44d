"""Real processes, real signals, real pipes: `| head` exits quietly with 141; SIGINT/SIGTERM stop between two
events, leave whole lines and consistent stores behind, print the counts so far and exit 130/143."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_process import run, size, start, stored_count, wait_until, write_events

BIG = 60_000          # events: a few seconds of work, so a signal lands mid-run


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.ndjson"
    write_events(path, BIG)
    return path


def read_first_line_then_close(proc: subprocess.Popen) -> bytes:
    line = proc.stdout.readline()
    proc.stdout.close()                  # what `head -1` does after its line
    proc.wait(timeout=120)
    return line


@pytest.mark.parametrize("args", [
    ["convert", "{big}", "--to", "ocsf"],
    ["validate", "{big}"],
    ["validate", "--format", "json", "{big}"],
])
def test_a_closed_output_pipe_ends_the_run_quietly_with_141(big, tmp_path, args):
    proc = start(*[a.format(big=big) for a in args], cwd=tmp_path)
    first = read_first_line_then_close(proc)
    err = proc.stderr.read().decode()
    assert first.strip()
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "Broken pipe" not in err and "Exception ignored" not in err


def test_forward_to_stdout_into_a_closed_pipe_stops_instead_of_dead_lettering_the_rest(big, tmp_path):
    # `forward --to - | head -1`: the file sink used to count the broken pipe as a retryable failure and
    # dead-letter every later event (1,000 in one run) instead of stopping as cat does.
    proc = start("forward", str(big), "--to", "-", "--dead-letter", "dead.ndjson", cwd=tmp_path)
    assert json.loads(read_first_line_then_close(proc))["id"]
    err = proc.stderr.read().decode()
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert not (tmp_path / "dead.ndjson").exists() or not (tmp_path / "dead.ndjson").read_text()


def test_query_into_a_closed_pipe_exits_141(big, tmp_path):
    # 3,000 events stored, then `query --limit 0 --format ndjson | head -1`
    small = tmp_path / "small.ndjson"
    with big.open() as fh:
        small.write_text("".join(fh.readline() for _ in range(3000)))
    assert run("forward", "--to", "sqlite:///s.db", "small.ndjson", cwd=tmp_path).returncode == 0
    proc = start("query", "--db", "sqlite:///s.db", "--limit", "0", "--format", "ndjson", cwd=tmp_path)
    assert json.loads(read_first_line_then_close(proc))["id"]
    err = proc.stderr.read().decode()
    assert proc.returncode == 141 and "Traceback" not in err and "Exception ignored" not in err


def interrupt_when(proc: subprocess.Popen, ready, sig: int = signal.SIGINT) -> tuple[str, str]:
    wait_until(ready, what="the run to be under way")
    assert proc.poll() is None, "the run ended before the signal: make the input bigger"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return out.decode(), err.decode()


def test_sigint_during_convert_leaves_whole_lines_and_prints_the_counts(big, tmp_path):
    out_path = tmp_path / "out.ndjson"
    proc = start("convert", str(big), "--to", "ocsf", "-o", str(out_path), "--summary", "json", cwd=tmp_path)
    out, err = interrupt_when(proc, lambda: size(out_path) > 100_000)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    summary = json.loads(next(line for line in err.splitlines() if line.startswith("{")))
    assert summary["interrupted"] is True
    data = out_path.read_bytes()
    assert data.endswith(b"\n")
    docs = [json.loads(line) for line in data.splitlines()]   # every line is a whole document
    assert len(docs) == summary["written"] == summary["read"] and 0 < summary["read"] < BIG
    assert "interrupted" in err


def test_sigint_during_validate_prints_the_counts_so_far(big, tmp_path):
    proc = start("validate", "-q", "-", cwd=tmp_path, stdin=subprocess.PIPE)
    with big.open("rb") as fh:
        part = b"".join(fh.readline() for _ in range(5000))
    proc.stdin.write(part)             # returns once all but a pipe buffer's worth was read
    proc.stdin.flush()
    out, err = interrupt_when(proc, lambda: True)
    proc.stdin.close()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    counts = next(line for line in err.splitlines() if " events: " in line)
    assert 0 < int(counts.split(" events")[0].replace(",", "")) <= 5000
    assert " 0 invalid, 0 unparseable" in counts        # no event was cut in half


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_forward_delivers_what_was_read_and_the_store_agrees_with_the_counts(big, tmp_path, sig, code):
    proc = start("forward", str(big), "--to", "sqlite:///s.db", "--summary", "json", "--batch-size", "500",
                 cwd=tmp_path)

    def stored() -> int:
        return stored_count(tmp_path / "s.db")

    out, err = interrupt_when(proc, lambda: stored() >= 2000, sig)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    summary = json.loads(out)
    assert summary["interrupted"] is True
    assert 0 < summary["read"] < BIG
    assert summary["delivered"] + summary["duplicates"] + summary["rejected"] == summary["read"]
    assert stored() == summary["delivered"]          # nothing half-written, nothing delivered but not counted


def test_sigterm_while_forward_waits_on_a_quiet_pipe(tmp_path):
    """`tail -f log | wia-security forward -`: the signal must not wait for the next line to arrive."""
    events = tmp_path / "three.ndjson"
    write_events(events, 3)
    out_path = tmp_path / "out.ndjson"
    proc = start("forward", "-", "--to", f"file://{out_path}", "--batch-size", "1", "--summary", "json",
                 cwd=tmp_path, stdin=subprocess.PIPE)
    proc.stdin.write(events.read_bytes())
    proc.stdin.flush()                                   # and keep it open: the producer is just quiet
    out, err = interrupt_when(proc, lambda: out_path.exists() and out_path.read_bytes().count(b"\n") == 3,
                              signal.SIGTERM)
    proc.stdin.close()
    assert proc.returncode == 143, err
    summary = json.loads(out)
    assert (summary["read"], summary["delivered"], summary["interrupted"]) == (3, 3, True)
    assert "SIGTERM" in err and "Traceback" not in err


def test_forward_into_a_file_sink_on_sigint_leaves_whole_lines_and_a_complete_dead_letter_file(big, tmp_path):
    # every 7th line broken, so the dead-letter file is being written while the signal lands
    mixed = tmp_path / "mixed.ndjson"
    with big.open() as src, mixed.open("w") as dst:
        for i, line in enumerate(src):
            dst.write(line[: len(line) // 2] + "\n" if i % 7 == 0 else line)
    out_path, dead = tmp_path / "out.ndjson", tmp_path / "dead.ndjson"
    proc = start("forward", str(mixed), "--to", f"file://{out_path}", "--dead-letter", str(dead),
                 "--summary", "json", cwd=tmp_path)
    out, err = interrupt_when(proc, lambda: size(out_path) > 200_000)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    delivered = [json.loads(line) for line in out_path.read_bytes().splitlines()]
    dead_letters = [json.loads(line) for line in dead.read_bytes().splitlines()]
    assert out_path.read_bytes().endswith(b"\n") and dead.read_bytes().endswith(b"\n")
    assert len(delivered) == summary["delivered"]
    assert len(dead_letters) == summary["dead_lettered"] == summary["rejected"] > 0
    assert len(delivered) + len(dead_letters) == summary["read"] < BIG


@pytest.mark.parametrize("summary", ["text", "json"])
def test_a_second_signal_aborts_a_delivery_that_hangs_and_says_what_is_uncertain(big, tmp_path, summary):
    fifo = tmp_path / "stuck.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)     # a destination that accepts nothing more
    try:
        proc = start("forward", str(big), "--to", f"file://{fifo}", "--batch-size", "500", "--summary", summary,
                     cwd=tmp_path)
        readable, _, _ = select.select([reader], [], [], 60)  # the first batch is being written ...
        assert readable
        time.sleep(0.3)                                      # ... fills the pipe and blocks
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None                           # the first signal waits for the batch in hand
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(reader)
    assert proc.returncode == 130
    assert "Traceback" not in err.decode()
    assert "aborted: up to 500 accepted events were on their way" in err.decode()
    if summary == "text":
        assert "read 500 events" in out.decode()
    else:                                                     # one JSON document, for the script that parses it
        doc = json.loads(out)
        assert (doc["read"], doc["delivered"], doc["aborted"], doc["in_flight"]) == (500, 0, True, 500)


def test_a_closed_standard_output_is_no_traceback(tmp_path):
    """`wia-security validate x >&-`: Python starts with sys.stdout None."""
    events = tmp_path / "three.ndjson"
    write_events(events, 3)

    def close_stdout() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.close(1)

    proc = subprocess.run([sys.executable, "-m", "wia_security", "validate", str(events)], cwd=tmp_path,
                          stderr=subprocess.PIPE, preexec_fn=close_stdout, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert b"3 events: 3 valid" in proc.stderr and b"Traceback" not in proc.stderr
