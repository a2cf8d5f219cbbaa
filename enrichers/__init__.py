"""Enrichers: pure functions over loaded reference data (geo) and over history read from Redis."""
