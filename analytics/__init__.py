"""Analytics over the engine's data and over police open data (pure: no I/O, the clock
injected).

- ``analytics.opendata``: reading data.police.uk street-level files (one crime a row).
- ``analytics.hotspots``: predictive patrol priorities: a self-exciting model of repeat
  and near-repeat victimisation over areas (LSOAs) or square cells, fitted by EM.
- ``analytics.evaluate``: hit rate and Predictive Accuracy Index against naive
  baselines, on months the model never saw (``rtic analytics evaluate``).
- ``analytics.live``: the same model over the engine's own recent calls, each
  priority with the events behind it (the gateway publishes it: ``push/priorities.py``).
- ``analytics.trends``: hourly counts by area, grade, category, camera and time to
  attend, as the worker's windowed tables publish them, merged into the desk's last
  24 hours against the same hours of the four weeks before.
- ``analytics.anomaly``: the expected count of calls per area and hour learned from
  that history (gamma-Poisson with weekly seasonality), and which areas are well above
  it.

This floor sits beside ``rules`` and ``cases``: it may use ``enrichers``, ``records``
and ``rtic``, and ``push``, ``streams`` and ``cli`` may use it. docs/analytics.md says
what the models use, how they were checked, and the risks.
"""
