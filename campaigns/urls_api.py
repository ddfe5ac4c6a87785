from django.urls import include, path

from campaigns.ingest_kinds import MARKETING_SPEND
from lifecycle.apis import ingest_api

urlpatterns = [
    path("marketing-spend/", ingest_api(MARKETING_SPEND).as_view(), name="marketing-spend-ingest"),
    # Each area's endpoints are listed in its module.
    path("", include("campaigns.apis.plans")),
    path("", include("campaigns.apis.campaigns")),
    path("", include("campaigns.apis.experiments")),
    path("", include("campaigns.apis.segments")),
]
