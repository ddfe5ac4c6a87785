"""Campaigns API: campaigns (see campaigns/urls_api.py)."""

urlpatterns: list = []
