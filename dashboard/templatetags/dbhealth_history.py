"""``{% sparkline window %}``: a latency history drawn as a small inline SVG, on the server.

The newest probe is at the right edge and each probe has a fixed slot, so a short
history is a short line. Probes that found the alias up are joined by a line scaled
from 0 ms (bottom) to the window's maximum (top); a failed probe is a full-height tick
and breaks the line. Colours come from CSS classes (the admin's variables).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import template

from dashboard.conf import get_settings
from dashboard.history import Window

register = template.Library()

PAD = 2.0


@dataclass(frozen=True)
class Drawing:
    """Coordinates as text: a template would print floats in the reader's locale."""

    width: int
    height: int
    lines: list[str]  # "x,y x,y ..." for each run of probes that were up
    dots: list[tuple[str, str]]  # a run of one probe: a dot, not a line
    failures: list[str]  # x of each failed probe
    title: str

    @property
    def top(self) -> str:
        return _number(PAD)

    @property
    def bottom(self) -> str:
        return _number(self.height - PAD)

    @property
    def right(self) -> str:
        return _number(self.width - PAD)


def _number(value: float) -> str:
    return f"{value:.1f}"


def _title(window: Window) -> str:
    if not window.samples:
        return f"Latency of {window.alias}: no probe recorded yet"
    count = len(window.samples)
    text = f"Latency of {window.alias}, last {count} probe{'s' if count != 1 else ''}"
    if window.max is not None:
        text += f": p50 {window.p50:.1f} ms, p95 {window.p95:.1f} ms, max {window.max:.1f} ms"
    if window.failures:
        text += f"; {window.failures} failed"
    return text


def draw(window: Window, width: int, height: int, slots: int) -> Drawing:
    slots = max(slots, len(window.samples), 2)
    step = (width - 2 * PAD) / (slots - 1)
    top = window.max or 1.0
    first_slot = slots - len(window.samples)
    lines: list[str] = []
    dots: list[tuple[str, str]] = []
    failures: list[str] = []
    run: list[tuple[str, str]] = []

    def end_run() -> None:
        if len(run) == 1:
            dots.append(run[0])
        elif run:
            lines.append(" ".join(f"{x},{y}" for x, y in run))
        run.clear()

    for index, sample in enumerate(window.samples):
        x = PAD + (first_slot + index) * step
        if sample.ok and sample.latency_ms is not None:
            y = height - PAD - (sample.latency_ms / top) * (height - 2 * PAD)
            run.append((_number(x), _number(y)))
        else:
            end_run()
            failures.append(_number(x))
    end_run()
    return Drawing(width, height, lines, dots, failures, _title(window))


@register.inclusion_tag("dashboard/_sparkline.html")
def sparkline(window: Window, width: int = 120, height: int = 24) -> dict[str, Any]:
    return {
        "drawing": draw(window, width, height, get_settings().history_length),
        "alias": window.alias,
    }
