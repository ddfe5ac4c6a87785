"""Which variant a customer belongs in (a stable hash, no shared state), and recording the exposure the first
time someone asks; the messages are read by API clients only and stay English."""

import hashlib
from datetime import datetime

from django.utils import timezone

from campaigns.experiments.errors import CustomerIneligible, ExperimentStateError, ExperimentStopped
from campaigns.models import Experiment, ExperimentStatus, Exposure, Variant
from lifecycle.models import Customer, CustomerStage, Touchpoint


def assignment_bucket(*, experiment_key: str, customer_external_id: str, total_weight: int) -> int:
    """A number in [0, total_weight) fixed by the experiment key and the customer's external id.

    SHA-256 of "<experiment key>:<external id>" (UTF-8), first 8 bytes as an unsigned big-endian integer, scaled
    to the total weight. Never Python's hash(): it is salted per process. Scaling (x·W >> 64) rather than x mod W
    keeps the buckets equally likely; any change here moves customers between variants, so the tests pin it.
    """
    digest = hashlib.sha256(f"{experiment_key}:{customer_external_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") * total_weight) >> 64


def variant_for(*, experiment: Experiment, customer_external_id: str) -> Variant:
    """The variant a customer belongs in: their bucket falls in one variant's share of the cumulative weights,
    variants in creation order. Pure (no query) when the experiment's variants are prefetched, as
    `experiment_get` does."""
    variants = sorted(experiment.variants.all(), key=lambda v: v.pk)
    bucket = assignment_bucket(
        experiment_key=experiment.key,
        customer_external_id=customer_external_id,
        total_weight=sum(v.weight for v in variants),
    )
    upper = 0
    for variant in variants:
        upper += variant.weight
        if bucket < upper:
            return variant
    raise ValueError(f"Experiment {experiment.key!r} has no variant with a positive weight.")


def customer_ineligibility(*, experiment: Experiment, customer: Customer) -> str | None:
    """Why the customer is outside the experiment's population, or None when inside: currently in the stage
    (of the experiment's model) and, when the experiment names a channel, with a touchpoint on it."""
    in_stage = CustomerStage.objects.filter(
        model_id=experiment.model_id, customer=customer, stage_id=experiment.stage_id
    )
    if not in_stage.exists():
        return f"Customer {customer.external_id!r} is not in the stage {experiment.stage.key!r} of the experiment."
    if experiment.channel_id is not None:
        reached = Touchpoint.objects.filter(customer=customer, channel_id=experiment.channel_id)
        if not reached.exists():
            return f"Customer {customer.external_id!r} has no touchpoint on the channel {experiment.channel.key!r}."
    return None


def experiment_assign(
    *, experiment: Experiment, customer: Customer, at: datetime | None = None
) -> tuple[Variant, Exposure, bool]:
    """The customer's variant and exposure, recording the exposure the first time (`created` True).

    Idempotent: a recorded exposure is returned unchanged (even if the customer has left the stage since, or the
    experiment stopped). A new exposure needs a running experiment and an eligible customer. Raises
    ExperimentStateError (draft), ExperimentStopped (stopped, customer never exposed), CustomerIneligible.
    """
    if experiment.status == ExperimentStatus.DRAFT:
        raise ExperimentStateError(f"Experiment {experiment.key!r} has not started yet; start it first.")
    recorded = Exposure.objects.select_related("variant").filter(experiment=experiment, customer=customer).first()
    if recorded is not None:
        return recorded.variant, recorded, False
    if experiment.status == ExperimentStatus.STOPPED:
        raise ExperimentStopped(
            f"Experiment {experiment.key!r} has stopped and never exposed customer {customer.external_id!r}; "
            "show the default experience."
        )
    reason = customer_ineligibility(experiment=experiment, customer=customer)
    if reason is not None:
        raise CustomerIneligible(reason)
    variant = variant_for(experiment=experiment, customer_external_id=customer.external_id)
    # get_or_create retries the read when a concurrent request inserted first (the unique constraint on
    # experiment + customer), so both callers get the same, single exposure.
    exposure, created = Exposure.objects.get_or_create(
        experiment=experiment, customer=customer, defaults={"variant": variant, "exposed_at": at or timezone.now()}
    )
    if not created:
        variant = Variant.objects.get(pk=exposure.variant_id)
    return variant, exposure, created
