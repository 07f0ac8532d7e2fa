"""Upstream accounts: the pool (selection, credentials, refresh, what happened
when they were used), OAuth login, rendezvous ranking and the ``accounts``
commands. Where records and health are kept is :mod:`gateway.state`."""
