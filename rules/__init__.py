"""Rules: pure functions of (enriched event, context) that return alerts."""
