import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from clm.base.days import day_end
from metrics.clv import ClvFitError
from metrics.models import MetricsJob
from metrics.services import metrics_run
from metrics.value import clv_fit


class Command(BaseCommand):
    help = (
        "Fit the BG/NBD and Gamma-Gamma models on the completed orders up to --as-of (the end of that day, UTC; "
        "default now) and store every customer's p_alive, expected purchases and expected spend."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", help="YYYY-MM-DD: fit on the orders up to the end of that day (UTC)")
        parser.add_argument("--json", action="store_true", help="print the fitted parameters as JSON")

    def handle(self, *args, as_of: str | None, **options) -> None:
        try:
            moment = day_end(date.fromisoformat(as_of)) if as_of else timezone.now()
        except ValueError:
            raise CommandError(f"--as-of {as_of!r} is not a YYYY-MM-DD date.") from None
        try:
            with metrics_run(job=MetricsJob.CLV_FIT, as_of=moment, expected=(ClvFitError,)) as run:
                fit = clv_fit(as_of=moment, run=run)
        except ClvFitError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(_json_dumps(fit))
            return
        self.stdout.write(
            f"CLV fit as of {fit.as_of:%Y-%m-%d %H:%M} UTC on {fit.customers} customers "
            f"({fit.repeat_customers} with repeat purchases) in {fit.duration_seconds:.2f} s.\n"
            f"  BG/NBD (weeks): r={fit.r:.4f} alpha={fit.alpha:.4f} a={fit.a:.4f} b={fit.b:.4f} "
            f"log-likelihood={fit.log_likelihood:.2f}\n"
            f"  Gamma-Gamma: p={fit.p:.4f} q={fit.q:.4f} gamma={fit.gamma:.4f}\n"
            f"  {fit.customers} customer predictions stored (p_alive, expected purchases and spend, 90 and 365 days)."
        )


def _json_dumps(fit) -> str:
    return json.dumps(
        {
            "bgnbd": {"r": fit.r, "alpha": fit.alpha, "a": fit.a, "b": fit.b, "log_likelihood": fit.log_likelihood},
            "gamma_gamma": {"p": fit.p, "q": fit.q, "gamma": fit.gamma},
            "customers": fit.customers,
            "repeat_customers": fit.repeat_customers,
        }
    )
