"""The metrics REST API (read scope): results.py (every metric of the registry, metrics.kinds, from its snapshot),
customers.py (the customers behind each count, as pages or CSV), pipeline.py (the daily pipeline series), value.py
(the CLV fit and a customer's predicted value), targets.py (benchmarks and goals), common.py (what the endpoints
share: input validation and the operation's schema).

Errors answer in the one error shape (clm.base.api_errors): 400 for bad input, 404 for an unknown model or customer.
"""
