from django.urls import include, path

from lifecycle.pages import default_model_redirect
from metrics import views

urlpatterns = [
    path("funnel/", default_model_redirect("funnel"), name="funnel-default"),
    path("models/<slug:key>/funnel/", views.funnel, name="funnel"),
    path("models/<slug:key>/funnel/customers/", views.funnel_customers, name="funnel-customers"),
    # Each area's pages are listed in its module.
    path("", include("metrics.views_overview")),
    path("", include("metrics.views_stages")),
    path("", include("metrics.views_cohorts")),
]
