"""Shared benchmark helpers: event corpora and a best-of-N timer (these machines are noisy: compare ratios)."""
from __future__ import annotations

import gc
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))          # tests/strategies.py: the shared event generator


def corpus(n: int, seed: int = 42, invalid_share: float = 0.0) -> list[dict[str, Any]]:
    """n realistic events of all seven types; `invalid_share` of them mutated (mostly invalid)."""
    import random

    from strategies import event_dicts, mutations
    events = event_dicts(n, seed=seed, times="legacy")
    if invalid_share:
        rnd = random.Random(seed)
        for i in range(0, n, max(1, int(1 / invalid_share))):
            events[i] = mutations(events[i], rnd, 1)[0]
    return events


def best_of(fn: Callable[[], Any], repeat: int = 5) -> float:
    """Fastest of `repeat` runs, in seconds (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def race(contenders: dict[str, tuple[Callable[[], Any], int]], rounds: int = 7) -> list[tuple[str, float]]:
    """Rates (items/s) of contenders timed in interleaved rounds, best round each.

    Each contender is (function, items it processes). Interleaving means a burst of load on the
    machine hits every contender alike, so the ratios stay meaningful on a busy machine.
    """
    best = {name: float("inf") for name in contenders}
    for _ in range(rounds):
        for name, (fn, _items) in contenders.items():
            gc.collect()
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return [(name, items / best[name]) for name, (_fn, items) in contenders.items()]


def table(rows: list[tuple[str, float]], baseline: str, unit: str = "events/s") -> str:
    base = dict(rows)[baseline]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'':{width}}  {unit:>14}  ratio vs {baseline}"]
    lines += [f"{name:{width}}  {rate:>14,.0f}  {rate / base:6.2f}x" for name, rate in rows]
    return "\n".join(lines)


def keep_alive_responder(sock: Any, answer: Callable[[bytes, bytes], bytes]) -> None:  # pragma: no cover - child
    """A minimal HTTP/1.1 keep-alive server on a listening socket (a thread per connection):
    `answer(request_line, body)` returns the JSON payload of a 200 reply. Runs until killed."""
    import socket
    import threading

    def serve(conn: socket.socket) -> None:
        f = conn.makefile("rb")
        try:
            while True:
                request = f.readline()
                if not request:
                    return
                length, line = 0, f.readline()
                while line not in (b"\r\n", b"\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                    line = f.readline()
                payload = answer(request, f.read(length))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        except (ConnectionError, OSError):
            return
        finally:
            conn.close()

    while True:
        conn, _ = sock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
