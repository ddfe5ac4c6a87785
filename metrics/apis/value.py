"""Predicted customer value: the fitted CLV model, and one customer's predictions."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clm.base.api_errors import error_responses
from lifecycle.apis.common import customer_not_found
from lifecycle.selectors import customer_get
from metrics.selectors import clv_fit_latest, customer_value_get

_NOT_FITTED = "The CLV model has not been fitted yet: the nightly job fits it, or run `python manage.py fit_clv`."


class ClvApi(APIView):
    @extend_schema(
        operation_id="metrics_clv",
        summary="The fitted CLV model: BG/NBD and Gamma-Gamma parameters, fit date and sample size",
        responses={200: OpenApiTypes.OBJECT},
        tags=["metrics"],
    )
    def get(self, request: Request) -> Response:
        fit = clv_fit_latest()
        if fit is None:
            return Response({"status": "not_fitted", "detail": _NOT_FITTED})
        return Response(
            {
                "status": "fitted",
                "as_of": fit.as_of,
                "fitted_at": fit.fitted_at,
                "time_unit": "week",
                "customers": fit.customers,
                "repeat_customers": fit.repeat_customers,
                "duration_seconds": fit.duration_seconds,
                "bgnbd": {"r": fit.r, "alpha": fit.alpha, "a": fit.a, "b": fit.b, "log_likelihood": fit.log_likelihood},
                "gamma_gamma": {"p": fit.p, "q": fit.q, "gamma": fit.gamma},
            }
        )


class CustomerValueApi(APIView):
    @extend_schema(
        operation_id="customer_value",
        summary="A customer's p_alive, expected purchases and expected spend (90 and 365 days)",
        parameters=[OpenApiParameter("external_id", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={200: OpenApiTypes.OBJECT, **error_responses(404)},
        tags=["metrics"],
    )
    def get(self, request: Request, external_id: str) -> Response:
        customer = customer_get(external_id=external_id)
        if customer is None:
            raise customer_not_found(external_id)
        value = customer_value_get(customer_id=customer.pk)
        if value is None:
            fitted = clv_fit_latest() is not None
            return Response(
                {
                    "external_id": customer.external_id,
                    "status": "no_orders" if fitted else "not_fitted",
                    "detail": "The customer had no completed order when the model was fitted."
                    if fitted
                    else _NOT_FITTED,
                }
            )
        return Response(
            {
                "external_id": customer.external_id,
                "status": "fitted",
                "fitted_at": value.fit.fitted_at,
                "as_of": value.fit.as_of,
                "frequency": value.frequency,
                "recency_weeks": value.recency_weeks,
                "age_weeks": value.age_weeks,
                "monetary_value": value.monetary_value,
                "p_alive": value.p_alive,
                "expected_purchases_90d": value.expected_purchases_90d,
                "expected_purchases_365d": value.expected_purchases_365d,
                "expected_spend_90d": value.expected_spend_90d,
                "expected_spend_365d": value.expected_spend_365d,
            }
        )
