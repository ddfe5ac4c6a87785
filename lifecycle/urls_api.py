from django.urls import path

from lifecycle.apis import ingest_api
from lifecycle.ingest_kinds import CUSTOMERS, FEEDBACK, ORDERS, TOUCHPOINTS

urlpatterns = [
    path("customers/", ingest_api(CUSTOMERS).as_view(), name="customers-ingest"),
    path("orders/", ingest_api(ORDERS).as_view(), name="orders-ingest"),
    path("touchpoints/", ingest_api(TOUCHPOINTS).as_view(), name="touchpoints-ingest"),
    path("feedback/", ingest_api(FEEDBACK).as_view(), name="feedback-ingest"),
]
