"""The case module: which events open a case and which timeline entry each one makes.

Pure: events and the case as it stands in, the changed case, its new entries and
the ``rtic.cases.v1`` updates out (``cases.book``); the table of rules is
``cases.table`` and docs/cases.md. The agent that feeds it runs in ``streams/``.
"""
