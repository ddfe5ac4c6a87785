from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from lifecycle.csv_import import CsvImportError, csv_import
from lifecycle.ingest import INGEST_KINDS
from lifecycle.tasks import reclassify_customers_on_commit


class Command(BaseCommand):
    help = (
        "Import a CSV file of customers, orders, touchpoints, feedback or marketing_spend (columns: docs/IMPORT.md). "
        "Atomic: any bad line and nothing is written, unless --skip-invalid."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("kind", choices=sorted(INGEST_KINDS))
        parser.add_argument("file", type=Path)
        parser.add_argument("--skip-invalid", action="store_true", help="import the good lines, reject the bad ones")
        parser.add_argument(
            "--rejects", type=Path, help="where --skip-invalid writes rejected lines (default: FILE.rejects.csv)"
        )

    def handle(self, *args, kind: str, file: Path, skip_invalid: bool, rejects: Path | None, **options) -> None:
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
