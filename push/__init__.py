"""Push: the gateway that fans alerts and live events out to people, and serves the web edge.

A fan-out core without I/O (``fanout.py``) between a Kafka edge (``kafka_edge.py``)
and an HTTP + websocket edge on Starlette and uvicorn (``web.py``); ``access.py``
says who may see what, ``metrics.py`` counts, ``gateway.py`` assembles and runs them.
"""
