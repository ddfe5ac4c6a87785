from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required, login_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from clm import views

api_v1 = [
    path("", include("lifecycle.urls_api")),
    path("", include("campaigns.urls_api")),
    path("", include("metrics.urls_api")),
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
    path("", include("campaigns.views")),
    path("", include("clm.channel_plans")),
    path("", views.home, name="home"),
]

handler500 = "clm.views.server_error"
handler404 = "clm.views.not_found"
