"""Push: the gateway that fans alerts, live events and case updates out to people, serves
the web edge and the people's side API, and records what it shows in the audit trail.

A fan-out core without I/O (``fanout.py``) between a Kafka edge (``kafka_edge.py``)
and an HTTP + websocket edge on Starlette and uvicorn (``web.py``, with the cases,
evidence, history search and audit routes in ``api.py``); ``access.py`` says who may
see what, ``audit.py`` buffers the audit records, ``casefeed.py`` brings case updates
in, ``revocations.py`` keeps the revoked tokens, ``metrics.py`` counts, ``gateway.py``
assembles and runs them.
"""
