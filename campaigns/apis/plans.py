"""Campaigns API: plans (see campaigns/urls_api.py)."""

urlpatterns: list = []
