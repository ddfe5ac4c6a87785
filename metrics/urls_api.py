from django.urls import path

from metrics import apis

urlpatterns = [
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
