"""veil cloud control plane: customers' apps in, placements out, workers' reports back.

Every piece of state lives in the database (SQLite embedded, PostgreSQL for replicas):
API keys, SIWE nonces, provisions, apps, deployments and their event history. A replica
holds nothing a second replica would need, so any number can serve one database.
"""
