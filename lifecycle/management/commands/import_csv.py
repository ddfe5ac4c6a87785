import csv
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from tqdm import tqdm

from lifecycle.csv_import import CsvImportError, csv_import
from lifecycle.ingest import INGEST_KINDS
from lifecycle.sources.exports.layouts import customers_first, layout_for_platform, platform_label
from lifecycle.sources.exports.pipeline import ExportRejected, ExportRun, Report, export_import
from lifecycle.sources.exports.reading import ExportFile, ExportFileError, LineError
from lifecycle.sources.models import Platform, Source
from lifecycle.sources.uploads import csv_source_create, zone_of
from lifecycle.tasks import reclassify_customers_on_commit

ERRORS_SHOWN = 1000


class Command(BaseCommand):
    help = (
        "Import a CSV file of customers, orders, touchpoints, feedback or marketing_spend in CLM's columns "
        "(import_csv KIND FILE; columns: docs/IMPORT.md), or a shop platform's own exports as downloaded "
        "(import_csv --format shopify|woocommerce|shopware --source SHOP FILE...). "
        "Atomic: any bad line and nothing is written, unless --skip-invalid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="KIND FILE | FILE...")
        parser.add_argument(
            "--format", choices=Platform.values, help="the files are this platform's customer and order exports"
        )
        parser.add_argument("--source", help="with --format: the source (name or id) the exports are of")
        parser.add_argument(
            "--currency", help="with --format: create a CSV-only source named --source in this currency if none exists"
        )
        parser.add_argument("--id-prefix", default="", help="the id prefix of a source --currency creates")
        parser.add_argument(
            "--timezone", default="UTC", help="with --format: the zone of times without an offset (WooCommerce's)"
        )
        parser.add_argument("--skip-invalid", action="store_true", help="import the good lines, reject the bad ones")
        parser.add_argument(
            "--rejects", type=Path, help="where --skip-invalid writes rejected lines (default: FILE.rejects.csv)"
        )

    def handle(self, *args: str, paths: list[str], format: str | None, **options: Any) -> None:
        if format:
            self._exports(format, [Path(path) for path in paths], **options)
            return
        if len(paths) != 2 or paths[0] not in INGEST_KINDS:
            raise CommandError(
                f"Give KIND FILE (kinds: {', '.join(sorted(INGEST_KINDS))}), or --format PLATFORM --source SHOP FILE..."
            )
        self._clm_file(paths[0], Path(paths[1]), options["skip_invalid"], options["rejects"])

    def _clm_file(self, kind: str, file: Path, skip_invalid: bool, rejects: Path | None) -> None:
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        rejects_path = (rejects or file.with_suffix(".rejects.csv")) if skip_invalid else None
        with file.open("rb") as handle:
            lines = sum(1 for _ in handle)
        with tqdm(total=max(lines - 1, 0), unit="rows", disable=None, file=self.stderr) as progress:
            try:
                result = csv_import(
                    kind=INGEST_KINDS[kind],
                    path=file,
                    skip_invalid=skip_invalid,
                    rejects_path=rejects_path,
                    on_progress=progress.update,
                )
            except CsvImportError as exc:
                for error in exc.errors:
                    self.stderr.write(error)
                raise CommandError(f"{file}: {len(exc.errors)} error(s); nothing was imported.") from exc
        reclassify_customers_on_commit(result.touched_customer_ids)
        self.stdout.write(
            f"{kind}: {result.created} created, {result.updated} updated, {result.unchanged} unchanged, "
            f"{result.rejected} rejected."
        )
        if result.rejected:
            for error in result.errors:
                self.stderr.write(error)
            self.stderr.write(f"Rejected lines were written to {rejects_path}")

    def _source(self, platform: str, name: str | None, currency: str | None, id_prefix: str) -> Source:
        if not name:
            raise CommandError("--format needs --source: the shop the exports are of (its currency, statuses, ids)")
        found = Source.objects.filter(Q(name=name) | Q(pk=int(name) if name.isdigit() else None)).first()
        if found is None:
            if not currency:
                raise CommandError(
                    f"No source {name!r}. Connect the shop on /sources/, or add --currency to create a CSV-only source."
                )
            try:
                found = csv_source_create(
                    name=name, platform=platform, currency=currency, id_prefix=id_prefix, actor=None
                )
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
            self.stdout.write(f"Created the CSV-only source {found.name!r} ({found.currency}).")
        if found.platform != platform:
            raise CommandError(
                f"The source {found.name!r} is a {found.get_platform_display()} shop, not {platform_label(platform)}."
            )
        return found

    def _exports(self, platform: str, files: list[Path], **options: Any) -> None:
        for file in files:
            if not file.is_file():
                raise CommandError(f"No such file: {file}")
        source = self._source(platform, options["source"], options["currency"], options["id_prefix"])
        try:
            zone = zone_of(options["timezone"])
            layouts = []
            for file in files:
                with ExportFile(file) as export:
                    layouts.append((file, layout_for_platform(platform, export.header)))
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except ExportFileError as exc:
            raise CommandError(f"{file}: {exc}") from exc
        # Every error is kept: --skip-invalid writes them all to the rejects file.
        run = ExportRun(files=customers_first(layouts), source=source, zone=zone, errors_kept=10**9)
        total = sum(file.stat().st_size for file in files)
        with tqdm(total=total, unit="B", unit_scale=True, disable=None, file=self.stderr) as progress:

            def on_progress(done: int, all_bytes: int) -> None:
                progress.total = all_bytes
                progress.update(done - progress.n)

            try:
                report = export_import(run=run, skip_invalid=options["skip_invalid"], on_progress=on_progress)
            except ExportRejected as exc:
                self._errors(exc.report)
                raise CommandError(f"{exc.report.error_count} error(s); nothing was imported.") from exc
            except ExportFileError as exc:
                raise CommandError(str(exc)) from exc
        reclassify_customers_on_commit(report.touched_customer_ids)
        for kind, counts in report.counts.items():
            self.stdout.write(
                f"{kind}: {counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged."
            )
        if report.skipped_count:
            self.stdout.write(f"{report.skipped_count} order(s) left out (no purchase, or a guest without email).")
        if report.error_count:
            self._errors(report)
            rejects = options["rejects"] or files[0].with_suffix(".rejects.csv")
            _rejects_write(rejects, report.errors)
            self.stderr.write(f"{report.error_count} line(s) rejected; their errors were written to {rejects}")

    def _errors(self, report: Report) -> None:
        for error in report.errors[:ERRORS_SHOWN]:
            self.stderr.write(str(error))
        if report.error_count > ERRORS_SHOWN:
            self.stderr.write(f"… and {report.error_count - ERRORS_SHOWN} more")


def _rejects_write(path: Path, errors: list[LineError]) -> None:
    """An export's record spans rows (a Shopify order's line items): the report names the lines to fix."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "column", "error"])
        writer.writerows([error.line, error.column, error.message] for error in errors)
