"""RTIC engine core: the contract's schemas, settings, topic names, tokens and the CLI.

The flow, and where each part lives::

    simulators/ --> Kafka topics --> streams/ (Faust agents)
                                      |- enrichers/  geo (shapely) + history (Redis)
                                      |- rules/      pure rule functions -> alerts
                                     Kafka topics (enriched, alerts, dead-letter, acks)
                                      |- push/       websockets gateway
                                      |- dashboards/ web pages served by the gateway
"""

__version__ = "0.1.0"
