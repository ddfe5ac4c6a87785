"""The analysis pages beyond the stages: cohorts (retention, activity, RFM), value (CLV, CAC, accuracy, at-risk
customers) and one customer's journey, a module each; metrics/urls.py routes to them.

Thin views like metrics/views.py: the metrics come from stored snapshots (metric_result), the customer's data from
the lifecycle and metrics selectors; what is left here is arranging numbers for tables and charts.
"""
