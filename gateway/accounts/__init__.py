"""Upstream accounts: storage, login and refresh, shared health, ranking."""
