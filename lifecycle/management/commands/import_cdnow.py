import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from lifecycle.cdnow import CdnowFileError, CdnowFormat, cdnow_default_path, cdnow_import


class Command(BaseCommand):
    help = "Import the CDNOW purchase history (one order per customer and day); running it again adds nothing."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--path", type=Path, help="CDNOW file (default: CDNOW_master.txt of the lifetimes package)")
        parser.add_argument(
            "--format", choices=[f.value for f in CdnowFormat], help="file layout (default: detected from the columns)"
        )

    def handle(self, *args, path: Path | None, format: str | None, **options) -> None:
        file_format = CdnowFormat(format) if format else None
        try:
            path = path or cdnow_default_path(file_format or CdnowFormat.MASTER)
            if not path.is_file():
                raise CommandError(f"No such file: {path}")
            started = time.monotonic()
            result = cdnow_import(path=path, file_format=file_format)
        except CdnowFileError as exc:
            raise CommandError(f"{path}:\n{exc}") from exc
        self.stdout.write(
            f"Imported {path.name}: {result.customers} customers ({result.customers_created} new), "
            f"{result.orders} orders ({result.orders_created} new) in {time.monotonic() - started:.1f} s."
        )
