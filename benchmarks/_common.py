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
    events = event_dicts(n, seed=seed)
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
