"""Campaigns API: experiments (see campaigns/urls_api.py)."""

urlpatterns: list = []
