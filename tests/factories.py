from datetime import UTC, datetime
from decimal import Decimal

import factory

from lifecycle.models import (
    Channel,
    Customer,
    Feedback,
    LifecycleModel,
    Order,
    OrderStatus,
    Stage,
    StageTransition,
    Touchpoint,
    TouchpointKind,
    TransitionCause,
)


def at(day: str, hour: int = 12) -> datetime:
    """A moment on a day, e.g. at("2024-03-01")."""
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"c-{n}")
    first_seen_at = factory.LazyFunction(lambda: at("2024-01-01", 0))


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    external_id = factory.Sequence(lambda n: f"o-{n}")
    customer = factory.SubFactory(CustomerFactory)
    placed_at = factory.LazyFunction(lambda: at("2024-01-10"))
    amount = Decimal("20.00")
    status = OrderStatus.COMPLETED


class TouchpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Touchpoint

    external_id = factory.Sequence(lambda n: f"t-{n}")
    customer = factory.SubFactory(CustomerFactory)
    occurred_at = factory.LazyFunction(lambda: at("2024-01-05"))
    channel = factory.LazyFunction(lambda: Channel.objects.get(key="email"))
    kind = TouchpointKind.SITE_VISIT


class FeedbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feedback

    external_id = factory.Sequence(lambda n: f"f-{n}")
    customer = factory.SubFactory(CustomerFactory)
    score = 9
    submitted_at = factory.LazyFunction(lambda: at("2024-02-01"))


def transitions_record(model: LifecycleModel, customer: Customer, path: list[tuple[str, datetime | str]]) -> None:
    """Write a customer's stage path [(stage key, moment), …] as a consistent chain of backfill transitions.

    A moment is a datetime, "YYYY-MM-DD" (noon UTC, as `at`) or "YYYY-MM-DDTHH:MM" (UTC).
    """
    stages = {stage.key: stage for stage in Stage.objects.filter(model=model)}
    previous = None
    rows = []
    for key, moment in path:
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment).replace(tzinfo=UTC) if "T" in moment else at(moment)
        rows.append(
            StageTransition(
                customer=customer,
                model=model,
                from_stage=previous,
                to_stage=stages[key],
                at=moment,
                cause=TransitionCause.BACKFILL,
            )
        )
        previous = stages[key]
    StageTransition.objects.bulk_create(rows)
