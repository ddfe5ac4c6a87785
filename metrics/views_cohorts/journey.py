"""One customer's journey: their timeline of orders, touchpoints, feedback and stage changes, current stages, RFM
scores, p_alive and predicted CLV."""

from datetime import UTC, datetime
from typing import Any

from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from lifecycle.features import features_evaluate
from lifecycle.models import Customer, Feedback, Order, Touchpoint
from lifecycle.pages import page_context
from lifecycle.selectors import customer_current_stages, customer_get, customer_transitions
from metrics.rfm import SEGMENTS, segment_of
from metrics.selectors import clv_fit_latest, customer_value_get

JOURNEY_LIMIT = 200  # newest events per kind on the journey page


def _event(at: datetime, kind: str, label: Any, channel: str | None, detail: str) -> dict[str, Any]:
    return {"at": at, "kind": kind, "label": label, "channel": channel, "detail": detail}


def journey_events(customer: Customer) -> tuple[list[dict[str, Any]], dict[str, bool]]:
    """The newest JOURNEY_LIMIT orders, touchpoints, feedback and stage transitions, newest first, and per kind
    whether older ones were left out: four queries."""
    limit = JOURNEY_LIMIT
    orders = list(
        Order.objects.filter(customer=customer)
        .annotate(channel_key=F("channel__key"))
        .order_by("-placed_at", "-pk")[: limit + 1]
    )
    touchpoints = list(
        Touchpoint.objects.filter(customer=customer)
        .annotate(channel_key=F("channel__key"))
        .order_by("-occurred_at", "-pk")[: limit + 1]
    )
    feedback = list(Feedback.objects.filter(customer=customer).order_by("-submitted_at", "-pk")[: limit + 1])
    transitions, more_transitions = customer_transitions(customer=customer, limit=limit)
    events = [
        *(
            _event(
                order.placed_at,
                "order",
                _("Order"),
                order.channel_key,
                f"{order.amount} · {order.get_status_display()}"
                + (f" · {order.campaign_code}" if order.campaign_code else ""),
            )
            for order in orders[:limit]
        ),
        *(
            _event(
                touchpoint.occurred_at,
                "touchpoint",
                _("Touchpoint"),
                touchpoint.channel_key,
                touchpoint.get_kind_display()
                + (f" · {touchpoint.campaign_code}" if touchpoint.campaign_code else "")
                + (f" · {touchpoint.value}" if touchpoint.value is not None else ""),
            )
            for touchpoint in touchpoints[:limit]
        ),
        *(
            _event(
                item.submitted_at,
                "feedback",
                _("Feedback"),
                None,
                f"{item.score}/10" + (f" · {item.comment}" if item.comment else ""),
            )
            for item in feedback[:limit]
        ),
        *(
            _event(
                transition.at,
                "transition",
                _("Stage change"),
                None,
                f"{transition.model_key}: {transition.from_key or '—'} → {transition.to_key} ({transition.cause})",
            )
            for transition in transitions
        ),
    ]
    events.sort(key=lambda event: event["at"], reverse=True)
    truncated = {
        "order": len(orders) > limit,
        "touchpoint": len(touchpoints) > limit,
        "feedback": len(feedback) > limit,
        "transition": more_transitions,
    }
    return events, truncated


KIND_NAMES = {
    "order": _("orders"),
    "touchpoint": _("touchpoints"),
    "feedback": _("feedback"),
    "transition": _("stage changes"),
}


EVENT_KINDS = ("order", "touchpoint", "feedback", "transition")


def events_per_month(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of the listed events per calendar month (UTC) and kind, oldest month first."""
    counts: dict[str, dict[str, int]] = {}
    for event in events:
        month = event["at"].astimezone(UTC).strftime("%Y-%m")
        counts.setdefault(month, dict.fromkeys(EVENT_KINDS, 0))[event["kind"]] += 1
    months = sorted(counts)
    return {
        "labels": months,
        **{kind: [counts[month][kind] for month in months] for kind in EVENT_KINDS},
        "rows": [{"month": month, **counts[month]} for month in months],
    }


@require_GET
def journey(request: HttpRequest, external_id: str) -> HttpResponse:
    """One customer's timeline, current stages, RFM scores, p_alive and predicted CLV."""
    customer = customer_get(external_id=external_id)
    if customer is None:
        raise Http404("No such customer.")
    events, truncated = journey_events(customer)
    now = timezone.now()
    features = features_evaluate(
        names=["r_score", "f_score", "m_score", "order_count", "total_spent", "days_since_last_order"],
        as_of=now,
        customer_ids=[customer.pk],
    ).get(customer.pk, {})
    scores = [features.get(name) for name in ("r_score", "f_score", "m_score")]
    segment = segment_of(r=scores[0], f=scores[1], m=scores[2]) if None not in scores else None
    customer_value = customer_value_get(customer_id=customer.pk)
    per_month = events_per_month(events)
    context = {
        **page_context(request, None, "journey"),
        "customer": customer,
        "events": events,
        "truncated": [KIND_NAMES[kind] for kind, more in truncated.items() if more],
        "journey_limit": JOURNEY_LIMIT,
        "stages": customer_current_stages(customer=customer),
        "features": features,
        "segment": SEGMENTS.get(segment) if segment else None,
        "value": customer_value,
        "prediction": customer_value
        and {
            "p_alive_percent": round(customer_value.p_alive * 100, 1),
            "expected_spend_365d": round(customer_value.expected_spend_365d, 2),
            "expected_purchases_365d": round(customer_value.expected_purchases_365d, 2),
        },
        "fitted": customer_value is not None or clv_fit_latest() is not None,
        "per_month": per_month["rows"],
        "chart": {key: per_month[key] for key in ("labels", *EVENT_KINDS)},
    }
    return render(request, "metrics/journey.html", context)
