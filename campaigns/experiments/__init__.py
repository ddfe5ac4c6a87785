"""Experiments (issue 5 item 4): create, start and stop them (crud), assign customers to variants (assignment),
and read the results (results); errors holds the refusals.

Services write (`experiment_create`, `experiment_start`, `experiment_stop`, `experiment_assign`); selectors read
(`experiment_get`, `experiment_list`, `experiment_results`); `variant_for` is the pure assignment function.

Assignment is a stable hash, so the shop, the email tool and CLM agree on a customer's variant without sharing
state; the first time someone asks, CLM records the exposure, and from then on the recorded variant wins (so a
later change can never move a customer who has already seen a variant).

What the dashboard shows (validation errors, start/stop refusals, the results' state reason) is translated when
it is produced, into the request's language; the assignment's messages are read by API clients only and stay
English.
"""
