"""One exception tree for the whole engine.

::

    RticError
     +-- ConfigError            settings or reference files that cannot be used
     |    +-- RuleError         a rule set that cannot be used (a rule file's problems, by line)
     +-- ContractError          a message that breaks the wire contract
     |    +-- DecodeError       not UTF-8 JSON (or not an object)
     |    +-- ValidationFailed  JSON, but not a valid event of its topic
     +-- EnrichmentError        an enricher could not do its work (degrade, do not fail)
     +-- AuthError              a bad, expired or missing bearer token
     +-- ServiceError           a broker, Redis or database that does not answer
"""

from __future__ import annotations


class RticError(Exception):
    """Base of every error the engine raises on purpose."""


class ConfigError(RticError):
    """Settings, rule or reference files that cannot be used."""


class RuleError(ConfigError):
    """A rule set that cannot be used: a rule file's problems (``rules.config.RuleFileError``
    lists them with their lines), or enabled rules that need different enrichments.

    A rule that raises while evaluating an event is not one of these: the engine logs
    it, counts it against the rule and goes on (``rules.base.evaluate``).
    """


class ContractError(RticError):
    """A message that breaks the wire contract (see docs/contract.md)."""


class DecodeError(ContractError):
    """The bytes are not UTF-8 JSON, or not a JSON object."""


class ValidationFailed(ContractError):
    """The JSON is not a valid event of its topic."""


class EnrichmentError(RticError):
    """An enricher could not complete; the event goes on marked partial."""


class AuthError(RticError):
    """A bearer token is missing, malformed, forged or expired."""


class ServiceError(RticError):
    """A broker, Redis or database did not answer."""
