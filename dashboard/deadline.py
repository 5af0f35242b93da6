"""One deadline per answer, made at the edge (a view, the command) and spent by all below it.

``Deadline.after(seconds)`` starts the clock once; probes, migration checks, vitals and
cache reads all ask the same object how long they may still take. Work that finds no
time left is reported as "not checked within T" instead of stretching the answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock, and the budget (``seconds``) it was made with."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(at=time.monotonic() + seconds, seconds=seconds)

    def remaining(self) -> float:
        """Seconds left (never below zero)."""
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def within(self, seconds: float) -> float:
        """``seconds``, or less if the deadline comes first: a bound for one operation."""
        return min(seconds, self.remaining())

    @property
    def budget_text(self) -> str:
        """``2 s``: how the answer's budget is named in "not checked within 2 s"."""
        return f"{self.seconds:g} s"
