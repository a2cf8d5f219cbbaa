"""The contract: the ground floor every other part of the engine stands on.

Schemas of every message on the wire (``schemas``, ``enrichment``, ``client_messages``),
the one settings object (``settings``), topic names (``topics``), the exception
tree (``errors``), bearer tokens (``tokens``), the clocks (``clock``), the earth
model (``geodesy``), plate normalisation (``plates``), log set-up (``logs``) and the
Kafka client helpers (``kafka``). It imports nothing else of the project
(import-linter checks it in ``make test``); see ``docs/architecture.md``::

    cli/          the rtic command and rtic up                      (top floor)
    streams/ | push/ | simulators/   Faust worker, web edge, demand  (edges)
    rules/        pure rule functions -> alerts
    enrichers/ | dashboards/         place + history; static pages
    rtic/         this contract                                     (ground)
"""

__version__ = "0.1.0"
