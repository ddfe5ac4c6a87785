"""Campaigns: create and change them (crud), record their spend (spend), and compute their results (results)
(SPEC §6, issue 5 item 3); validation holds the checks create, update and spend share.

A campaign is known to the rest of the data only by its code: orders and touchpoints carry it as a plain string
(like a UTM campaign parameter) and marketing spend is recorded under it (MarketingSpend.campaign_code). Results
are computed from those rows in a fixed number of set-based queries, the same on PostgreSQL and SQLite.

Services raise django.core.exceptions.ValidationError with a dict {field: [message, …]}, so API views, forms
and the admin can show every problem next to the field it concerns. Messages are translated when raised, into
the request's language (German on the German dashboard; English for API clients that do not ask for German).
"""
