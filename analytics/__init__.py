"""Analytics: pure models over what the engine has counted (no I/O, the clock injected).

- ``trends.py``: hourly counts by area, grade, category, camera and time to attend,
  as the worker's windowed tables publish them, merged into the desk's last 24
  hours against the same hours of the four weeks before.
- ``anomaly.py``: the expected count of calls per area and hour learned from that
  history (gamma-Poisson with weekly seasonality), and which areas are well above it.

The floor of ``rules`` and ``cases``: it imports ``rtic`` (and the floors below),
never ``streams``, ``push`` or ``simulators``; those run it (docs/analytics.md).
"""
