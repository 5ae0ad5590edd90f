"""The shape of a long run: same-run ratios that hold on a busy machine.

Absolute figures move with whatever else the machine runs; the ratio of the last tenth of a run to
its first tenth does not (much). :class:`ProcessSampler` samples the CPU time and resident memory of
the hub's workers and the broker while the load runs; the drive records how many cases were done
when. :func:`window` joins the two: cases per second, and CPU milliseconds per case of each side,
between two fractions of the run's cases.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # wall clock, as the drive's timeline
    hub_cpu: float  # CPU seconds so far, all the hub's processes
    broker_cpu: float
    hub_rss: int  # bytes, all the hub's processes
    broker_rss: int


def _usage(pids: list[int]) -> tuple[float, int]:
    cpu, rss = 0.0, 0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            with p.oneshot():
                times = p.cpu_times()
                cpu += times.user + times.system
                rss += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return cpu, rss


class ProcessSampler:
    """Samples the hub's and the broker's processes every ``every`` seconds on a thread."""

    def __init__(self, hub_pids: list[int], broker_pids: list[int], every: float = 0.5) -> None:
        self.hub_pids, self.broker_pids, self.every = hub_pids, broker_pids, every
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="process-sampler", daemon=True)

    def sample(self) -> Sample:
        hub_cpu, hub_rss = _usage(self.hub_pids)
        broker_cpu, broker_rss = _usage(self.broker_pids)
        return Sample(time.time(), hub_cpu, broker_cpu, hub_rss, broker_rss)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(self.sample())

    def __enter__(self) -> ProcessSampler:
        self.samples.append(self.sample())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self.sample())


def time_at(timeline: list[tuple[float, int]], cases: float) -> float:
    """When ``cases`` cases were done (linear between the drive's progress points)."""
    done = [c for _, c in timeline]
    i = bisect.bisect_left(done, cases)
    if i == 0:
        return timeline[0][0]
    if i >= len(timeline):
        return timeline[-1][0]
    (t0, c0), (t1, c1) = timeline[i - 1], timeline[i]
    return t0 + (t1 - t0) * (cases - c0) / max(1, c1 - c0)


def sample_at(samples: list[Sample], at: float) -> Sample:
    """The process sample nearest to wall-clock time ``at``."""
    i = bisect.bisect_left([s.at for s in samples], at)
    candidates = samples[max(0, i - 1) : i + 1]
    return min(candidates, key=lambda s: abs(s.at - at))


@dataclass(frozen=True)
class Window:
    cases_per_s: float
    hub_cpu_ms_per_case: float
    broker_cpu_ms_per_case: float


def window(timeline: list[tuple[float, int]], samples: list[Sample], lo: float, hi: float) -> Window:
    """Cases per second and CPU per case between fractions ``lo`` and ``hi`` of the run's cases."""
    total = timeline[-1][1]
    start = time_at(timeline, 1 if lo == 0 else lo * total)  # from the first answer: spawning is no part of it
    end = time_at(timeline, hi * total)
    cases = (hi - lo) * total
    a, b = sample_at(samples, start), sample_at(samples, end)
    return Window(
        cases / max(1e-9, end - start),
        (b.hub_cpu - a.hub_cpu) * 1000 / cases,
        (b.broker_cpu - a.broker_cpu) * 1000 / cases,
    )
