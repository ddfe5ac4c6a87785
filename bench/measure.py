"""Timing helpers and the rows of a benchmark table."""

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    """One measurement: every run's value, the statistic compared with the target, and the comparisons.

    `key` names the row for the comparisons (e.g. "full.status.empty" is compared with "floor.status.empty" and
    "orm.status.empty"); `stat` is "median" or "p95" (latencies); `speed` rows (orders/s) are better when higher.
    """

    key: str
    name: str
    data: str
    values: list[float]
    unit: str
    stat: str = "median"
    target: str = ""
    met: bool | None = None
    vs_floor: float | None = None  # this ÷ the hand-written SQL
    vs_baseline: float | None = None  # the ORM loop ÷ this (times faster)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def p95(self) -> float:
        return percentile(self.values, 95)

    @property
    def figure(self) -> float:
        return self.p95 if self.stat == "p95" else self.median


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile, linear between closest ranks (statistics.quantiles' inclusive method)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def runs_default() -> int:
    return int(os.environ.get("BENCH_RUNS", "3"))


def long_run_seconds() -> float:
    """At 1M a run of the slowest jobs takes minutes: after a run this long, its repeats are skipped (the table
    then shows the number of runs)."""
    return float(os.environ.get("BENCH_LONG_RUN", "240"))


def run_limit_seconds() -> float:
    """A full pass running longer than this is cancelled and extrapolated (bench.lifecycle_runs.capped_runs)."""
    return float(os.environ.get("BENCH_RUN_LIMIT", "900"))


def timed(
    work: Callable[[], object], *, setup: Callable[[], object] | None = None, runs: int | None = None
) -> list[float]:
    """Seconds of `work`, once per run, each after an untimed `setup`."""
    seconds: list[float] = []
    for _ in range(runs or runs_default()):
        if setup is not None:
            setup()
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
        if seconds[-1] > long_run_seconds():
            break
    return seconds


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"
