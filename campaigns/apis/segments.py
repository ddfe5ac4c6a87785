"""Campaigns API: segments (see campaigns/urls_api.py)."""

urlpatterns: list = []
