"""The demo: accounts, seeded data around an imported order history, channel plans and the first run's follow-up.

It writes across the apps (lifecycle data, campaigns' spend and plans, metrics' snapshots), so it belongs to the
wiring. Import from the module that holds a name: accounts, history, parameters, generate, seed, plans.
"""
