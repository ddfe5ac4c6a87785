from django.urls import path

from campaigns.ingest_kinds import MARKETING_SPEND
from lifecycle.apis import ingest_api

urlpatterns = [
    path("marketing-spend/", ingest_api(MARKETING_SPEND).as_view(), name="marketing-spend-ingest"),
]
