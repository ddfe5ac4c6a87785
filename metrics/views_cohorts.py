"""Dashboard pages: cohorts (URLs at the bottom, included by metrics/urls.py)."""

urlpatterns: list = []
