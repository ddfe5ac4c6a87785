"""The metrics area's routes: its pages (urlpatterns) and its API endpoints under /api/v1/ (api_urlpatterns)."""

from django.urls import path

from lifecycle.pages import default_model_redirect
from metrics import apis, views, views_cohorts, views_overview, views_stages

urlpatterns = [
    path("funnel/", default_model_redirect("funnel"), name="funnel-default"),
    path("models/<slug:key>/funnel/", views.funnel, name="funnel"),
    path("models/<slug:key>/funnel/customers/", views.funnel_customers, name="funnel-customers"),
    path("models/<slug:key>/overview/", views_overview.overview, name="overview"),
    path("flows/", default_model_redirect("flows"), name="flows-default"),
    path("models/<slug:key>/flows/", views_stages.flows, name="flows"),
    path("models/<slug:key>/flows/customers/", views_stages.flow_customers, name="flow-customers"),
    path("models/<slug:key>/stages/<slug:stage_key>/", views_stages.stage, name="stage"),
    path("cohorts/", views_cohorts.cohorts, name="cohorts"),
    path("cohorts/customers/", views_cohorts.cohort_customers_view, name="cohort-customers"),
    path("value/", views_cohorts.value, name="value"),
    path("customers/<str:external_id>/", views_cohorts.journey, name="journey"),
]

api_urlpatterns = [
    path("models/<str:key>/funnel/", apis.ModelFunnelApi.as_view(), name="api-model-funnel"),
    path(
        "models/<str:key>/funnel/customers/", apis.ModelFunnelCustomersApi.as_view(), name="api-model-funnel-customers"
    ),
    path("models/<str:key>/flows/", apis.ModelFlowsApi.as_view(), name="api-model-flows"),
    path("models/<str:key>/flows/customers/", apis.ModelFlowCustomersApi.as_view(), name="api-model-flow-customers"),
    path("models/<str:key>/time-in-stage/", apis.ModelTimeInStageApi.as_view(), name="api-model-time-in-stage"),
    path(
        "models/<str:key>/pipeline/history/", apis.ModelPipelineHistoryApi.as_view(), name="api-model-pipeline-history"
    ),
    path("metrics/rates/", apis.RatesApi.as_view(), name="api-metrics-rates"),
    path("metrics/cohorts/", apis.CohortsApi.as_view(), name="api-metrics-cohorts"),
    path("metrics/cohorts/customers/", apis.CohortCustomersApi.as_view(), name="api-metrics-cohort-customers"),
    path("metrics/rfm/", apis.RfmApi.as_view(), name="api-metrics-rfm"),
    path("metrics/rfm/customers/", apis.RfmCustomersApi.as_view(), name="api-metrics-rfm-customers"),
    path("metrics/activity/", apis.ActivityApi.as_view(), name="api-metrics-activity"),
    path("metrics/activity/customers/", apis.ActivityCustomersApi.as_view(), name="api-metrics-activity-customers"),
    path("metrics/cac/", apis.CacApi.as_view(), name="api-metrics-cac"),
    path("metrics/clv/", apis.ClvApi.as_view(), name="api-metrics-clv"),
    path("metrics/clv/historical/", apis.ClvHistoricalApi.as_view(), name="api-metrics-clv-historical"),
    path("metrics/clv/accuracy/", apis.ClvAccuracyApi.as_view(), name="api-metrics-clv-accuracy"),
    path("metrics/targets/", apis.MetricTargetListApi.as_view(), name="api-metrics-targets"),
    path("customers/<str:external_id>/value/", apis.CustomerValueApi.as_view(), name="api-customer-value"),
]
