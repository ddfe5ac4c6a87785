"""The lifecycle REST API: ingest.py (the batch upserts), reads.py (models, pipeline, customers, runs, reclassify),
privacy.py (export and erasure), common.py (what every endpoint of the API uses: the moment field, model and
customer lookups, the customer cursor pages)."""
