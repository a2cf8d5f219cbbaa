"""Analytics over the engine's data and over police open data.

- ``analytics.opendata``: reading data.police.uk street-level files (one crime a row).
- ``analytics.hotspots``: predictive patrol priorities: a self-exciting model of repeat
  and near-repeat victimisation over areas (LSOAs) or square cells, fitted by EM.
- ``analytics.evaluate``: hit rate and Predictive Accuracy Index against naive
  baselines, on months the model never saw (``rtic analytics evaluate``).
- ``analytics.live``: the same model over the engine's own recent calls, each
  priority with the events behind it (the gateway publishes it: ``push/priorities.py``).

This floor sits beside ``rules`` and ``cases``: it may use ``enrichers``, ``records``
and ``rtic``, and ``push``, ``streams`` and ``cli`` may use it. docs/analytics.md says
what the models use, how they were checked, and the risks.
"""
