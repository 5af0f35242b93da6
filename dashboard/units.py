"""Sizes and durations in the words the pages show: ``1.5 MiB``, ``2 h 5 min``."""

from __future__ import annotations


def size_text(size: float) -> str:
    units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    unit = 0
    while size >= 1024 and unit < len(units) - 1:
        size /= 1024
        unit += 1
    return f"{size:.0f} {units[unit]}" if unit == 0 else f"{size:.1f} {units[unit]}"


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    parts = []
    whole = int(seconds)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if whole >= length:
            parts.append(f"{whole // length} {unit}")
            whole %= length
    return " ".join(parts[:2])
