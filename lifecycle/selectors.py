from typing import Any

from django.db.models import Max, Min

from lifecycle.models import Channel, Customer, Feedback, Order, Touchpoint


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
