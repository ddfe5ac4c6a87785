from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required, login_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

import campaigns.activation.urls
import campaigns.urls
import lifecycle.sources.urls
import lifecycle.urls
import metrics.urls
from clm import channel_plans, views
from lifecycle.pages import default_model_redirect

# Each app's urls.py lists its pages (urlpatterns) and its API endpoints (api_urlpatterns).
api_v1 = [
    *lifecycle.urls.api_urlpatterns,
    *lifecycle.sources.urls.api_urlpatterns,
    *campaigns.urls.api_urlpatterns,
    *campaigns.activation.urls.api_urlpatterns,
    *metrics.urls.api_urlpatterns,
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The docs page is for people: anonymous visitors go to the login page rather than get a 401. The split view
    # serves the page's script in a second request (?script) instead of inline, as the Content-Security-Policy asks.
    path("docs/", login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
]

urlpatterns = [
    path("health/", views.health, name="health"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's).
    path("favicon.ico", login_not_required(RedirectView.as_view(url=static("favicon.svg"), permanent=True))),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("", include("metrics.urls")),
    path("", include("campaigns.urls")),
    path("", include("lifecycle.sources.urls")),
    path("", include("campaigns.activation.urls")),
    # The pages that combine areas (the wiring's own).
    path("plans/", default_model_redirect("plans"), name="plans-default"),
    path("models/<slug:key>/plans/", channel_plans.plans, name="plans"),
    path("models/<slug:key>/plans/<slug:stage>/<slug:channel>/", channel_plans.plan_cell, name="plan-cell"),
    path("", views.home, name="home"),
]

handler500 = "clm.views.server_error"
handler404 = "clm.views.not_found"
