"""Shared benchmark plumbing: timing, resident memory, the closing ratio lines."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def rss_mib(pid: int | None = None) -> float:
    for line in Path(f"/proc/{pid or os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rate(fn: Callable[[], int], min_seconds: float = 2.0) -> float:
    """Units per second of ``fn`` (which returns the units it did), run for at least ``min_seconds``."""
    fn()  # warm up
    gc.collect()
    done = 0
    started = time.perf_counter()
    while True:
        done += fn()
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return done / elapsed


@dataclass
class Report:
    """Figures with their baselines; ``print_summary`` ends the output with the ratios."""

    title: str
    rows: list[tuple[str, float, str, float, str, str]] = field(default_factory=list)

    def add(self, what: str, value: float, baseline_name: str, baseline: float, unit: str, target: str = "") -> None:
        self.rows.append((what, value, baseline_name, baseline, unit, target))

    def print_summary(self) -> None:
        print()
        print(f"== {self.title} ==")
        width = max(len(r[0]) for r in self.rows)
        for what, value, baseline_name, baseline, unit, target in self.rows:
            ratio = value / baseline if baseline else float("nan")
            note = f"  target {target}" if target else ""
            print(
                f"{what:<{width}}  {value:>14,.1f} {unit:<8} vs {baseline_name}: {baseline:>14,.1f}  "
                f"ratio {ratio:6.2f}x{note}"
            )
