"""The shared base: plumbing every app may use (API keys and permissions, roles, audit history, idempotency, SQL
helpers, CSV exports, locks, health). It imports no app of CLM and never the wiring (settings, urls, celery app)."""
