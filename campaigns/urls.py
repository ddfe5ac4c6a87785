"""The campaigns area's routes: its pages (urlpatterns) and its API endpoints under /api/v1/ (api_urlpatterns)."""

from django.urls import path

from campaigns import views
from campaigns.apis import campaigns as campaigns_api
from campaigns.apis import experiments as experiments_api
from campaigns.apis import plans as plans_api
from campaigns.apis import segments as segments_api
from campaigns.ingest_kinds import MARKETING_SPEND
from lifecycle.apis.ingest import ingest_api

urlpatterns = [
    path("campaigns/", views.campaigns, name="campaign-list"),
    path("campaigns/new/", views.campaign_new, name="campaign-new"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail, name="campaign-detail"),
    path("campaigns/<int:campaign_id>/edit/", views.campaign_edit, name="campaign-edit"),
    path("campaigns/<int:campaign_id>/spend/", views.campaign_spend, name="campaign-spend"),
    path("experiments/", views.experiments, name="experiment-list"),
    path("experiments/new/", views.experiment_new, name="experiment-new"),
    path("experiments/<slug:key>/", views.experiment_detail, name="experiment-detail"),
    path("experiments/<slug:key>/start/", views.experiment_start_view, name="experiment-start"),
    path("experiments/<slug:key>/stop/", views.experiment_stop_view, name="experiment-stop"),
]

api_urlpatterns = [
    path("marketing-spend/", ingest_api(MARKETING_SPEND).as_view(), name="marketing-spend-ingest"),
    # GET reads the matrix (read scope), POST creates a plan (write scope).
    path("campaigns/plans/", plans_api.ChannelPlansApi.as_view(), name="api-channel-plans"),
    path("campaigns/plans/<int:plan_id>/", plans_api.ChannelPlanUpdateApi.as_view(), name="api-channel-plan-update"),
    path("campaigns/effectiveness/", plans_api.ChannelEffectivenessApi.as_view(), name="api-channel-effectiveness"),
    path("campaigns/", campaigns_api.CampaignsApi.as_view(), name="api-campaigns"),
    path("campaigns/<int:campaign_id>/", campaigns_api.CampaignDetailApi.as_view(), name="api-campaign-detail"),
    path("campaigns/<int:campaign_id>/spend/", campaigns_api.CampaignSpendApi.as_view(), name="api-campaign-spend"),
    path("experiments/", experiments_api.ExperimentsApi.as_view(), name="api-experiments"),
    path("experiments/<str:key>/", experiments_api.ExperimentDetailApi.as_view(), name="api-experiment-detail"),
    path("experiments/<str:key>/start/", experiments_api.ExperimentStartApi.as_view(), name="api-experiment-start"),
    path("experiments/<str:key>/stop/", experiments_api.ExperimentStopApi.as_view(), name="api-experiment-stop"),
    path(
        "experiments/<str:key>/assignment/<str:customer_external_id>/",
        experiments_api.ExperimentAssignmentApi.as_view(),
        name="api-experiment-assignment",
    ),
    path(
        "experiments/<str:key>/results/", experiments_api.ExperimentResultsApi.as_view(), name="api-experiment-results"
    ),
    path(
        "models/<str:key>/stages/<str:stage>/export.csv",
        segments_api.SegmentExportApi.as_view(),
        name="api-segment-export",
    ),
]
