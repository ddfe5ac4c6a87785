"""The metrics area's routes: its pages (urlpatterns) and its API endpoints under /api/v1/ (api_urlpatterns)."""

from django.urls import path

from lifecycle.pages import default_model_redirect
from metrics import views, views_overview, views_stages
from metrics.apis.customers import (
    ActivityCustomersApi,
    CohortCustomersApi,
    ModelFlowCustomersApi,
    ModelFunnelCustomersApi,
    RfmCustomersApi,
)
from metrics.apis.pipeline import ModelPipelineHistoryApi
from metrics.apis.results import MetricApi
from metrics.apis.targets import MetricTargetListApi
from metrics.apis.value import ClvApi, CustomerValueApi
from metrics.views_cohorts import cohorts, journey, value

urlpatterns = [
    path("funnel/", default_model_redirect("funnel"), name="funnel-default"),
    path("models/<slug:key>/funnel/", views.funnel, name="funnel"),
    path("models/<slug:key>/funnel/customers/", views.funnel_customers, name="funnel-customers"),
    path("models/<slug:key>/overview/", views_overview.overview, name="overview"),
    path("flows/", default_model_redirect("flows"), name="flows-default"),
    path("models/<slug:key>/flows/", views_stages.flows, name="flows"),
    path("models/<slug:key>/flows/customers/", views_stages.flow_customers, name="flow-customers"),
    path("models/<slug:key>/stages/<slug:stage_key>/", views_stages.stage, name="stage"),
    path("cohorts/", cohorts.cohorts, name="cohorts"),
    path("cohorts/customers/", cohorts.cohort_customers_view, name="cohort-customers"),
    path("value/", value.value, name="value"),
    path("customers/<str:external_id>/", journey.journey, name="journey"),
]

api_urlpatterns = [
    path("models/<str:key>/funnel/", MetricApi.for_kind("funnel", under_model=True).as_view(), name="api-model-funnel"),
    path("models/<str:key>/funnel/customers/", ModelFunnelCustomersApi.as_view(), name="api-model-funnel-customers"),
    path("models/<str:key>/flows/", MetricApi.for_kind("flows", under_model=True).as_view(), name="api-model-flows"),
    path("models/<str:key>/flows/customers/", ModelFlowCustomersApi.as_view(), name="api-model-flow-customers"),
    path(
        "models/<str:key>/time-in-stage/",
        MetricApi.for_kind("time_in_stage", under_model=True).as_view(),
        name="api-model-time-in-stage",
    ),
    path("models/<str:key>/pipeline/history/", ModelPipelineHistoryApi.as_view(), name="api-model-pipeline-history"),
    path("metrics/rates/", MetricApi.for_kind("rates").as_view(), name="api-metrics-rates"),
    path("metrics/cohorts/", MetricApi.for_kind("cohorts").as_view(), name="api-metrics-cohorts"),
    path("metrics/cohorts/customers/", CohortCustomersApi.as_view(), name="api-metrics-cohort-customers"),
    path("metrics/rfm/", MetricApi.for_kind("rfm").as_view(), name="api-metrics-rfm"),
    path("metrics/rfm/customers/", RfmCustomersApi.as_view(), name="api-metrics-rfm-customers"),
    path("metrics/activity/", MetricApi.for_kind("activity").as_view(), name="api-metrics-activity"),
    path("metrics/activity/customers/", ActivityCustomersApi.as_view(), name="api-metrics-activity-customers"),
    path("metrics/cac/", MetricApi.for_kind("cac").as_view(), name="api-metrics-cac"),
    path("metrics/clv/", ClvApi.as_view(), name="api-metrics-clv"),
    path("metrics/clv/historical/", MetricApi.for_kind("clv_historical").as_view(), name="api-metrics-clv-historical"),
    path("metrics/clv/accuracy/", MetricApi.for_kind("clv_accuracy").as_view(), name="api-metrics-clv-accuracy"),
    path("metrics/targets/", MetricTargetListApi.as_view(), name="api-metrics-targets"),
    path("customers/<str:external_id>/value/", CustomerValueApi.as_view(), name="api-customer-value"),
]
