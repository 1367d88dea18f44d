"""StopSignals in-process: the first signal asks the run to stop between items, a second one stops at once,
a signal the process started ignoring stays ignored."""
from __future__ import annotations

import signal
import time

import pytest

from wia_security.cli.common import Interrupted, StopSignals


def _let_the_handler_run(done, limit: float = 5.0) -> None:
    """Python runs a signal's handler at its next check between bytecodes, not inside raise_signal: on
    3.12+ under load that can be a few bytecodes (or a thread switch) later."""
    deadline = time.monotonic() + limit
    while not done() and time.monotonic() < deadline:
        time.sleep(0.001)


def test_a_second_signal_stops_at_once():
    with StopSignals() as stop:
        # raise_signal, not os.kill(getpid()): with other threads alive (servers of earlier tests) the kernel
        # may hand a kill() to one of them, and the handler then runs a few bytecodes late (seen on 3.13)
        signal.raise_signal(signal.SIGINT)
        _let_the_handler_run(lambda: stop.received is not None)
        assert stop.received == signal.SIGINT            # the first only asks to stop
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
            _let_the_handler_run(lambda: False)          # the handler raises within this block
    assert stop.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler    # put back on exit


def test_items_stop_between_items_and_a_blocked_read_is_cut_short():
    stop = StopSignals()
    seen = []

    def source():
        yield 1
        stop._handle(signal.SIGTERM, None)               # a signal arriving while the program works on item 1
        yield 2

    with stop:
        for item in stop.items([source(), [3, 4]]):
            seen.append(item)
    assert seen == [1] and stop.exit_code == 143

    stop = StopSignals()

    def blocked():
        yield 1
        raise Interrupted                                 # what the handler raises inside a blocked read

    with stop:
        assert list(stop.items([blocked(), [2]])) == [1]


def test_a_signal_the_process_was_started_ignoring_stays_ignored():
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with StopSignals():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN       # nohup: keep ignoring it
    finally:
        signal.signal(signal.SIGTERM, previous)
