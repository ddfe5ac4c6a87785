import time

from django.core.management.base import BaseCommand, CommandError

from clm.demo.plans import demo_plans_seed
from clm.demo.seed import DEFAULT_SEED, DemoSeedError, demo_data_seed
from lifecycle.templates import template_install


class Command(BaseCommand):
    help = (
        "Add seeded demo touchpoints, referrals, feedback, leads and marketing spend around the order history "
        "(orders are never changed), install the `ecommerce` model if missing, and fill the empty cells of the "
        "`status` and `ecommerce` channel plans. Running it again with the same seed writes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")

    def handle(self, *args, seed: int, **options) -> None:
        started = time.monotonic()
        try:
            result = demo_data_seed(seed=seed)
        except DemoSeedError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Demo data (seed {result.seed}) around {result.buyers} customers with orders, "
            f"in {time.monotonic() - started:.1f} s:"
        )
        for label, counts in (
            ("leads", result.leads),
            ("buyers' channels", result.buyer_channels),
            ("touchpoints", result.touchpoints),
            ("feedback", result.feedback),
            ("marketing spend", result.spend),
        ):
            self.stdout.write(
                f"  {label:<17} {counts.rows:>7} rows: {counts.created} created, {counts.updated} updated"
            )
        self.stdout.write(f"  {result.referred} customers referred by earlier buyers.")
        self.stdout.write(f"{result.created} rows created, {result.updated} updated.")
        # Plans come after the data: they never depend on it, and a failed data seed leaves the plans untouched.
        _, installed = template_install(key="ecommerce")
        if installed:
            self.stdout.write("Installed the `ecommerce` lifecycle model (classify customers to fill it).")
        plans = demo_plans_seed()
        self.stdout.write(
            f"Channel plans for {', '.join(plans.models) or 'no model'}: {plans.created} created, "
            f"{plans.kept} kept as they were."
        )
