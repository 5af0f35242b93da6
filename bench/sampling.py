"""Interleaved sampling: contenders take turns, batch after batch, until medians settle.

Each round runs every contender once in a fresh random order, so a burst of noise from
another process on the machine lands on all of them alike. After each batch the
medians are compared with those before it; sampling stops when every metric of every
contender moved less than ``tolerance`` for two batches in a row, or when the time
budget is spent (the result then says it did not settle).

``gap`` leaves a server idle for a moment after every run, untimed: a probe meets an
idle server in real use (one round per cache TTL), and without the gap one
contender's connect would pay for the previous one's backend still shutting down.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# A contender runs once and returns its measurements, e.g. {"total": s, "query": s}.
Contender = Callable[[], Mapping[str, float]]


@dataclass
class Samples:
    values: dict[str, dict[str, list[float]]]  # contender -> metric -> samples
    rounds: int
    settled: bool
    seconds: float

    def median(self, contender: str, metric: str) -> float:
        return statistics.median(self.values[contender][metric])


def interleaved(
    contenders: Mapping[str, Contender],
    *,
    warmup: int = 20,
    batch: int = 40,
    min_batches: int = 4,
    budget: float = 20.0,
    tolerance: float = 0.02,
    gap: float = 0.0,
) -> Samples:
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    values: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    shuffle = random.Random(7).shuffle
    started = time.monotonic()
    previous: dict[tuple[str, str], float] = {}
    calm_batches = 0
    batches = 0
    while True:
        order = list(names)
        for _ in range(batch):
            shuffle(order)
            for name in order:
                for metric, value in contenders[name]().items():
                    values[name].setdefault(metric, []).append(value)
                if gap:
                    time.sleep(gap)
        batches += 1
        medians = {
            (name, metric): statistics.median(series)
            for name, metrics in values.items()
            for metric, series in metrics.items()
        }
        moved = any(
            abs(value - previous.get(key, 0.0)) > tolerance * abs(value)
            for key, value in medians.items()
        )
        calm_batches = 0 if moved else calm_batches + 1
        previous = medians
        settled = batches >= min_batches and calm_batches >= 2
        elapsed = time.monotonic() - started
        if settled or elapsed >= budget:
            return Samples(values, batches * batch, settled, elapsed)
