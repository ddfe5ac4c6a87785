"""Dashboard pages of the campaigns area: channel plans, campaigns, experiments."""

urlpatterns: list = []
