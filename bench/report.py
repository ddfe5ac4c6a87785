"""The benchmark table appended to docs/BENCHMARKS.md: every measurement with its SPEC §11 target and ratios."""

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench.measure import Row

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "BENCHMARKS.md"

FULL_TARGET = "≤ 2× floor, ≥ 100× faster than the ORM loop"


def _ratio(row: Row, other: Row | None) -> float | None:
    return row.median / other.median if other is not None and other.median > 0 else None


def evaluate(rows: list[Row]) -> None:
    """Fill target, met and the ratios from the SPEC §11 targets (in place)."""
    by_key = {row.key: row for row in rows}
    for row in rows:
        parts = row.key.split(".")
        if parts[0] == "full" and len(parts) == 3:
            floor, orm = by_key.get(f"floor.{parts[1]}.{parts[2]}"), by_key.get(f"orm.{parts[1]}.{parts[2]}")
            row.vs_floor = _ratio(row, floor)
            row.vs_baseline = orm.median / row.median if orm is not None and row.median > 0 else None
            row.target = FULL_TARGET
            checks = []
            if row.vs_floor is not None:
                checks.append(row.vs_floor <= 2)
            if row.vs_baseline is not None:
                checks.append(row.vs_baseline >= 100)
            row.met = all(checks) if checks else None
        elif parts[0] == "floor" and len(parts) == 3:
            orm = by_key.get(f"orm.{parts[1]}.{parts[2]}")
            row.vs_floor = 1.0
            row.vs_baseline = orm.median / row.median if orm is not None and row.median > 0 else None
        elif parts[0] == "orm" and len(parts) == 3:
            row.vs_floor = _ratio(row, by_key.get(f"floor.{parts[1]}.{parts[2]}"))
        elif parts[0] == "workers" and parts[-1] != "1":
            one = by_key.get(".".join([*parts[:-1], "1"]))
            row.target = "faster than one worker, same result"
            if one is not None:
                row.met = row.median < one.median and "result = the rules evaluated in one query: yes" in row.data
        elif row.key == "single":
            row.target, row.met = "p95 ≤ 20 ms", row.p95 <= 20
        elif parts[0] == "periodic":
            full = by_key.get(f"full.{parts[1]}.converged")
            share = _ratio(row, full)
            row.target = "≤ 10 % of a full pass"
            if share is not None:
                row.met = share <= 0.10
                row.note = (row.note + " " if row.note else "") + f"= {share:.1%} of the full pass (converged)"
        elif row.key == "ingest.http":
            row.target, row.met = "≥ 5,000 orders/s", row.median >= 5000
        elif row.key in ("page.overview.load", "page.funnel.load"):
            row.target, row.met = "p95 ≤ 150 ms", row.p95 <= 150
        elif row.key in ("page.overview", "page.funnel"):
            row.target = "(p95 ≤ 150 ms under load)"
        elif row.key == "export.csv":
            row.target, row.met = "≤ 20 s for 1M rows", row.median <= 20
        elif row.key == "export.memory":
            row.target, row.met = "flat (< 50 MiB growth)", max(row.values) < 50
        elif row.key == "sources.webhook":
            row.target, row.met = "p95 ≤ 50 ms (issue 16)", row.p95 <= 50
        elif row.key == "sources.reclassify":
            row.target, row.met = "p95 ≤ 5 s (issue 16)", row.p95 <= 5
        elif row.key == "cdnow.import":
            row.target, row.met = "≤ 10 s", row.median <= 10
        elif row.key == "cdnow.clv":
            row.target, row.met = "≤ 5 s", row.median <= 5


def _number(value: float, unit: str) -> str:
    if unit == "orders/s":
        return f"{value:,.0f}"
    if unit in ("ms", "MiB"):
        return f"{value:,.1f}"
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def _figure(row: Row) -> str:
    if row.stat == "p95":
        return f"p95 {_number(row.p95, row.unit)} {row.unit} (p50 {_number(row.median, row.unit)})"
    runs = f" ({len(row.values)} run)" if len(row.values) == 1 else ""
    return f"{_number(row.median, row.unit)} {row.unit}{runs}"


def _met(row: Row) -> str:
    if row.met is None:
        return ""
    return "met" if row.met else "**missed**"


def _times(value: float | None, fmt: str) -> str:
    return "" if value is None else fmt.format(value)


def environment() -> str:
    import django
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
        settings = {}
        for name in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather"):
            cursor.execute(f"SHOW {name}")
            settings[name] = cursor.fetchone()[0]
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"Machine: {os.cpu_count()} cores, {memory_gib:.0f} GiB RAM, {platform.platform()}; Python "
        f"{platform.python_version()}, Django {django.get_version()}, PostgreSQL {pg_version} "
        f"({', '.join(f'{k} {v}' for k, v in settings.items())})."
    )


def commit() -> str:
    git = ["git", "rev-parse", "--short", "HEAD"]
    head = subprocess.run(git, capture_output=True, text=True, cwd=ROOT).stdout.strip()  # noqa: S603,S607
    dirty = subprocess.run(  # noqa: S603
        ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.strip()
    return f"{head or 'uncommitted'}{' + uncommitted changes' if dirty else ''}"


def section(*, title: str, preamble: list[str], rows: list[Row], notes: list[str]) -> str:
    evaluate(rows)
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {title} — commit {commit()}\n",
        environment(),
        *preamble,
        "",
        "| measurement | data | median (or p95) | min – max | SPEC §11 target | result | × floor | ORM loop ÷ this |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        data = row.data + (f"; {row.note}" if row.note else "")
        low, high = min(row.values), max(row.values)
        lines.append(
            f"| {row.name} | {data} | {_figure(row)} | {_number(low, row.unit)} – {_number(high, row.unit)} | "
            f"{row.target} | {_met(row)} | {_times(row.vs_floor, '{:.2f}×')} | {_times(row.vs_baseline, '{:,.0f}×')} |"
        )
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def report_append(text: str, path: Path = REPORT) -> None:
    if not path.exists():
        path.write_text(
            "# Benchmarks\n\nWritten by `make bench` (bench/run.py); newest last. Targets: SPEC §11; "
            "see BENCHMARKING.md.\n"
        )
    with path.open("a") as handle:
        handle.write(text)
