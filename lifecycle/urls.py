"""The lifecycle area's routes: its API endpoints under /api/v1/ (api_urlpatterns); it has no pages of its own (the
admin edits lifecycle models)."""

from django.urls import path

from lifecycle.apis.ingest import ingest_api
from lifecycle.apis.privacy import CustomerDataExportApi, CustomerEraseApi
from lifecycle.apis.reads import (
    ClassificationRunDetailApi,
    CustomerDetailApi,
    CustomersApi,
    CustomerTransitionListApi,
    LifecycleModelListApi,
    LifecycleModelPipelineApi,
    LifecycleModelReclassifyApi,
)
from lifecycle.ingest_kinds import FEEDBACK, ORDERS, TOUCHPOINTS

api_urlpatterns = [
    # GET lists customers (read scope), POST upserts them (write scope).
    path("customers/", CustomersApi.as_view(), name="api-customers"),
    path("customers/<str:external_id>/", CustomerDetailApi.as_view(), name="api-customer-detail"),
    path(
        "customers/<str:external_id>/transitions/",
        CustomerTransitionListApi.as_view(),
        name="api-customer-transitions",
    ),
    # Personal data (admin scope): export everything, erase what identifies the customer (docs/PRIVACY.md).
    path("customers/<str:external_id>/export/", CustomerDataExportApi.as_view(), name="api-customer-export"),
    path("customers/<str:external_id>/erase/", CustomerEraseApi.as_view(), name="api-customer-erase"),
    path("orders/", ingest_api(ORDERS).as_view(), name="orders-ingest"),
    path("touchpoints/", ingest_api(TOUCHPOINTS).as_view(), name="touchpoints-ingest"),
    path("feedback/", ingest_api(FEEDBACK).as_view(), name="feedback-ingest"),
    path("models/", LifecycleModelListApi.as_view(), name="api-models"),
    path("models/<str:key>/pipeline/", LifecycleModelPipelineApi.as_view(), name="api-model-pipeline"),
    path("models/<str:key>/reclassify/", LifecycleModelReclassifyApi.as_view(), name="api-model-reclassify"),
    path("runs/<int:run_id>/", ClassificationRunDetailApi.as_view(), name="api-run-detail"),
]
