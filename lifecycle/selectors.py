from typing import Any

from django.db.models import Count, Max, Min

from lifecycle.models import Channel, Customer, CustomerStage, Feedback, LifecycleModel, Order, Touchpoint


def data_summary() -> dict[str, Any]:
    """How much data CLM holds, and the time span of the orders."""
    span = Order.objects.aggregate(first=Min("placed_at"), last=Max("placed_at"))
    return {
        "customers": Customer.objects.count(),
        "customers_with_orders": Customer.objects.filter(orders__isnull=False).distinct().count(),
        "orders": Order.objects.count(),
        "touchpoints": Touchpoint.objects.count(),
        "feedback": Feedback.objects.count(),
        "channels": Channel.objects.filter(active=True).count(),
        "first_order_at": span["first"],
        "last_order_at": span["last"],
    }


def stage_counts(*, model: LifecycleModel) -> dict[str, int]:
    """Customers currently in each stage of a model, every stage listed (zero included), in funnel order."""
    counts = dict(
        CustomerStage.objects.filter(model=model)
        .values("stage__key")
        .annotate(n=Count("pk"))
        .values_list("stage__key", "n")
    )
    return {stage.key: counts.get(stage.key, 0) for stage in model.stages.order_by("position", "pk")}
