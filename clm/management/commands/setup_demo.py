from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from clm.demo.accounts import demo_accounts_ensure
from clm.demo.history import demo_history_schedule
from lifecycle.models import Customer

DEMO_HISTORY_DELAY_SECONDS = 120


class Command(BaseCommand):
    help = "First run: import CDNOW and the demo data. Every run: make sure the demo accounts exist and print them."

    def handle(self, *args, **options) -> None:
        if not Customer.objects.exists():
            self.stdout.write("First run: importing the CDNOW order history and generating demo data ...")
            call_command("import_cdnow", stdout=self.stdout)
            call_command("seed_demo", stdout=self.stdout)
            # After a pause, so the worker first classifies the imported customers (queued by the import) and a
            # quick look-and-stop does not interrupt a backfill.
            demo_history_schedule(delay_seconds=DEMO_HISTORY_DELAY_SECONDS)
            self.stdout.write(
                "Queued for the worker: the weekly stage history 1997-1998, the metric snapshots and the CLV fit "
                f"({DEMO_HISTORY_DELAY_SECONDS} s after start, then a minute or two)."
            )
        accounts = demo_accounts_ensure(credentials_file=Path(settings.DATA_DIR) / "demo-accounts.json")
        self.stdout.write("\nCLM demo accounts (log in at http://127.0.0.1:8000/):")
        for account in accounts:
            self.stdout.write(f"  {account['role']:<9} user {account['username']:<9} password {account['password']}")
        self.stdout.write("")
