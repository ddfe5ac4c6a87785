"""EXPLAIN (ANALYZE, BUFFERS) of the heavy queries at the benchmark's scale, written to docs/QUERIES.md.

The statements are the ones the code runs: captured while calling the service, selector or page (Django's
CaptureQueriesContext), then explained one by one. Statements that write (the classification's INSERT … SELECT,
the incremental pass's outbox INSERT) are explained inside a transaction that is rolled back.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

EXPLAINABLE = {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}
FINDINGS_START, FINDINGS_END = "<!-- findings -->", "<!-- /findings -->"


@dataclass
class Explained:
    title: str
    purpose: str
    sql: str
    plan: str
    summary: str


def captured(call: Callable[[], object], *, pick: Callable[[str], bool] = lambda sql: True, top: int = 1) -> list[str]:
    """The `top` slowest statements `call` ran that `pick` accepts."""
    with CaptureQueriesContext(connection) as context:
        call()
    queries = [
        q
        for q in context.captured_queries
        if q["sql"].lstrip().split(None, 1)[0].upper() in EXPLAINABLE and pick(q["sql"])
    ]
    queries.sort(key=lambda q: float(q["time"]), reverse=True)
    return [q["sql"] for q in queries[:top]]


def explain(sql: str) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)  # EXPLAIN ANALYZE runs the statement: a write is undone
    return plan


def summarize(plan: str) -> str:
    """The facts a reader looks for first: time, indexes used, sequential scans and the rows they read."""
    execution = re.search(r"Execution Time: ([\d.]+) ms", plan)
    indexes = sorted(
        set(re.findall(r"Index (?:Only )?Scan (?:Backward )?using (\w+)", plan))
        | set(re.findall(r"Bitmap Index Scan on (\w+)", plan))
    )
    seq = re.findall(r"Seq Scan on (\w+)(?: \w+)?\s+\(cost=[^)]*\) \(actual time=[^ ]+ rows=(\d+)", plan)
    parallel = "Gather" in plan
    parts = [f"execution {float(execution.group(1)):,.0f} ms" if execution else "no timing"]
    parts.append("indexes: " + (", ".join(indexes) if indexes else "none"))
    if seq:
        parts.append("sequential scans: " + ", ".join(f"{table} ({int(rows):,} rows per loop)" for table, rows in seq))
    if parallel:
        parts.append("parallel workers")
    hits = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", plan)
    if hits:
        parts.append(
            f"buffers hit {int(hits.group(1)):,}" + (f", read {int(hits.group(2)):,}" if hits.group(2) else "")
        )
    return "; ".join(parts)


def explained(title: str, purpose: str, sql: str) -> Explained:
    plan = explain(sql)
    return Explained(title, purpose, sql, plan, summarize(plan))


def _item_lines(item: Explained) -> list[str]:
    return [
        f"### {item.title}",
        "",
        item.purpose,
        "",
        f"**Plan:** {item.summary}.",
        "",
        "<details><summary>SQL and plan</summary>",
        "",
        "```sql",
        item.sql.strip(),
        "```",
        "",
        "```",
        item.plan,
        "```",
        "",
        "</details>",
        "",
    ]


def queries_append(path: Path, *, items: list[Explained]) -> None:
    """Add plans under the last measured heading (an experiment's)."""
    with path.open("a") as handle:
        handle.write("\n".join(line for item in items for line in _item_lines(item)))


def queries_write(path: Path, *, heading: str, items: list[Explained]) -> None:
    """Rewrite the measured part of QUERIES.md; the findings written by hand between the markers are kept."""
    findings = f"{FINDINGS_START}\n{FINDINGS_END}"
    if path.exists():
        text = path.read_text()
        if FINDINGS_START in text and FINDINGS_END in text:
            findings = text[text.index(FINDINGS_START) : text.index(FINDINGS_END) + len(FINDINGS_END)]
    lines = [
        "# Query plans of the heavy queries",
        "",
        "Written by `make bench SCALE=…` (bench/explain.py): each statement is the one the code runs, captured while "
        "calling the service, selector or page, then run again under `EXPLAIN (ANALYZE, BUFFERS)` (statements that "
        "write inside a rolled-back transaction). The one-line summary under each title is extracted from the plan; "
        "the findings are written by hand.",
        "",
        findings,
        "",
        f"## {heading}",
        "",
        f"Captured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        "",
    ]
    for item in items:
        lines += _item_lines(item)
    path.write_text("\n".join(lines))
