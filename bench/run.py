"""Benchmarks: `make bench` (CDNOW), `make bench SCALE=10k|100k|1m` or `make bench SCALE=sources` (the shop
sources); appends a section to docs/BENCHMARKS.md.

    python bench/run.py [--scale cdnow|sources|10k|100k|1m] [--seed N] [--runs N] [--parts full,floor,...]
                        [--regenerate] [--keep-indexes] [--no-report]

How to run it and what each measurement means: docs/BENCHMARKING.md. In short: it runs against PostgreSQL
(BENCH_DATABASE_URL; default the `clm_bench` database on 127.0.0.1 for the scales, and for the suites that recreate
theirs on every run `clm_bench_cdnow` (CDNOW) and `clm_bench_sources`), never against the development database,
with production settings (DEBUG off) and a broker of its own (BENCH_REDIS_URL, or the filesystem broker under
BENCH_DATA_DIR) that no worker reads but the ones the suite starts.
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCALE_PARTS = (
    "load",
    "full",
    "floor",
    "added",
    "orm",
    "workers",
    "history",
    "single",
    "periodic",
    "metrics",
    "http",
    "explain",
    "covering",
    "cdnow",
)
# Suites in a database of their own, recreated on every run (not the scales' generated data); their parts are fixed.
OWN_DATABASE = {"cdnow": "clm_bench_cdnow", "sources": "clm_bench_sources"}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--scale", default=os.environ.get("SCALE") or "cdnow", choices=[*OWN_DATABASE, "10k", "100k", "1m"]
    )
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")), help="runs per figure")
    parser.add_argument("--parts", default="", help=f"a subset of {','.join(SCALE_PARTS)} (added to the last results)")
    parser.add_argument("--regenerate", action="store_true", help="generate and load the data even if it is loaded")
    parser.add_argument("--keep-indexes", action="store_true", help="COPY into the indexed tables")
    parser.add_argument("--core", action="store_true", help="CDNOW: only the import and the CLV fit")
    parser.add_argument("--no-report", action="store_true", help="store the results, do not append to BENCHMARKS.md")
    return parser.parse_args(argv)


def _environment(scale: str) -> None:
    """Production settings on the benchmark's own database, data folder and broker, before Django starts."""
    default_db = OWN_DATABASE.get(scale, "clm_bench")
    data_dir = os.environ.get("BENCH_DATA_DIR", "/tmp/clm-bench")  # noqa: S108 - scratch data of the benchmark
    os.environ.update(
        {
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{default_db}"),
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-not-secret",
            "CLM_ENCRYPTION_KEYS": "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS1ub3Qtc2U=",
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "CLM_DATA_DIR": data_dir,
            "DJANGO_SETTINGS_MODULE": "clm.settings",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        }
    )
    os.environ.pop("REDIS_URL", None)
    if os.environ.get("BENCH_REDIS_URL"):
        os.environ["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
    Path(data_dir).mkdir(parents=True, exist_ok=True)


def _database(*, recreate: bool) -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if recreate and exists:
            conn.execute(f'DROP DATABASE "{name}"')
        if recreate or not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def _results_path(scale: str, core: bool) -> Path:
    return Path(os.environ["CLM_DATA_DIR"]) / f"bench-results-{scale}{'-core' if core else ''}.json"


def _results_load(path: Path) -> dict:
    from bench.measure import Row

    if not path.exists():
        return {"rows": [], "notes": []}
    data = json.loads(path.read_text())
    data["rows"] = [Row(**row) for row in data["rows"]]
    return data


def _results_store(path: Path, results: dict) -> None:
    data = {**results, "rows": [dataclasses.asdict(row) for row in results["rows"]]}
    path.write_text(json.dumps(data, indent=1, default=str))


def _merge(results: dict, rows: list) -> None:
    keys = {row.key for row in rows}
    results["rows"] = [row for row in results["rows"] if row.key not in keys] + rows


def _broker_purge() -> None:
    from clm.celery import app

    app.control.purge()


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    _environment(args.scale)
    _database(recreate=args.scale in OWN_DATABASE)
    import django

    django.setup()
    from django.core.management import call_command

    from bench.load import tables_analyze
    from bench.measure import load_average
    from bench.report import report_append, section

    call_command("migrate", verbosity=0)
    path = _results_path(args.scale, args.core)
    if args.scale in OWN_DATABASE:
        title, preamble, rows, notes = _own_database_suite(args, path)
        results = {"rows": rows, "notes": [*notes, f"Load average (1/5/15 min) at the end: {load_average()}."]}
        _results_store(path, results)
        _broker_purge()
        if not args.no_report:
            preamble.append(f"Median of {args.runs} runs (min – max); latencies p95 and p50.")
            report_append(section(title=title, preamble=preamble, rows=rows, notes=results["notes"]))
        return

    from bench.scale import Suite

    parts = [part for part in args.parts.split(",") if part] or list(SCALE_PARTS)
    unknown = set(parts) - set(SCALE_PARTS)
    if unknown:
        raise SystemExit(f"unknown parts {sorted(unknown)}; known: {', '.join(SCALE_PARTS)}")
    results = _results_load(path) if args.parts else {"rows": [], "notes": []}
    suite = Suite(
        scale=args.scale, seed=args.seed, runs=args.runs, regenerate=args.regenerate, keep_indexes=args.keep_indexes
    )
    _merge(results, suite.prepare())
    _results_store(path, results)
    suite_parts = suite.parts()
    for part in parts:
        if part == "cdnow":
            rows = _cdnow_core(args.runs)
        elif part == "load":
            continue
        else:
            print(f"Measuring {part} (load average {load_average()}) ...", flush=True)
            tables_analyze()
            rows = suite_parts[part]()
        _merge(results, rows)
        results.setdefault("loads", {})[part] = load_average()
        results["notes"] = list(dict.fromkeys(results["notes"] + suite.notes))
        _results_store(path, results)
    _broker_purge()
    if not args.no_report:
        report_append(
            section(
                title=f"scale {args.scale}",
                preamble=suite.preamble() + [f"Median of {args.runs} runs (min – max) unless the row says otherwise."],
                rows=results["rows"],
                notes=[
                    *results["notes"],
                    "Load average (1/5/15 min) after each part — the machine is shared: "
                    + "; ".join(f"{part} {value}" for part, value in results.get("loads", {}).items())
                    + ".",
                ],
            )
        )


def _own_database_suite(args: argparse.Namespace, path: Path) -> tuple[str, list[str], list, list[str]]:
    """The CDNOW or the sources suite: its title, the lines above its table, its rows and the notes under it (the
    sources suite stores its rows at `path` as they come: its imports take most of an hour)."""
    if args.scale == "cdnow":
        from bench import cdnow_runs

        rows = cdnow_runs.core_rows(args.runs) if args.core else cdnow_runs.suite(args.runs)
        return "CDNOW", ["CDNOW + the demo data."], rows, []
    from bench import source_runs

    sizes = source_runs.Sizes()
    rows, notes = source_runs.suite(
        runs=args.runs,
        seed=args.seed,
        empty=_database_empty,
        keep=lambda rows: _results_store(path, {"rows": rows, "notes": []}),
        sizes=sizes,
    )
    preamble = [
        f"A Shopify shop of {sizes.customers:,} customers and {sizes.orders:,} orders (seed {args.seed}) imported "
        "from a local fake shop into an empty database; then its webhooks."
    ]
    return "shop sources", preamble, rows, notes


def _database_empty() -> None:
    """Drop the benchmark's database and create and migrate it again (a new installation)."""
    from django.core.management import call_command
    from django.db import connections

    connections.close_all()
    _database(recreate=True)
    call_command("migrate", verbosity=0)


def _cdnow_core(runs: int) -> list:
    """The CDNOW import and CLV fit, in their own process and database (clm_bench_cdnow, recreated)."""
    from bench.measure import Row

    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.pop("BENCH_DATABASE_URL", None)
    subprocess.run(  # noqa: S603 - this script, fixed arguments
        [sys.executable, str(Path(__file__)), "--scale", "cdnow", "--core", "--no-report", "--runs", str(runs)],
        check=True,
        env=env,
    )
    data = json.loads(_results_path("cdnow", True).read_text())
    return [Row(**row) for row in data["rows"]]


if __name__ == "__main__":
    main()
