"""Simulators: deterministic demand that feeds the input topics (``rtic simulate``)."""
