"""Redis key layout, and the address normalisation address keys are built from. Pure.

Plates in keys are ``rtic.plates.canonical_vrm`` (hotlists, incident vehicles) or
``rtic.plates.normalise_vrm`` (trails).

All keys start with ``rtic:`` (or the deployment's topic prefix + ``rtic:``):

=============================  ======  ==================================================
key                            type    holds
=============================  ======  ==================================================
``rtic:hotlist``               hash    canonical plate -> JSON {entry id: hotlist entry}
``rtic:hotlist-index``         hash    entry id -> canonical plate (for deletes by id)
``rtic:markers:person``        hash    person id -> JSON {marker id: marker entry}
``rtic:markers:address``       hash    normalised address -> JSON {marker id: marker entry}
``rtic:marker-index``          hash    marker id -> ``person:{id}`` or ``address:{key}``
``rtic:call-log``              stream  batches of calls as enriched (JSON); trimmed to a window + a day
``rtic:incident-log``          stream  batches of created incidents (JSON); trimmed the same way
``rtic:incident-vehicles``     hash    canonical plate -> JSON {entry id: vehicle of an open incident}
``rtic:incident-vehicles-index`` hash  ``incident|plate`` -> where it lives (removed when closed)
``rtic:open-alert:{group}``    hash    the open alert of repeated hits (id, version, first); expires
``rtic:trail:{plate}``         list    a plate's last 20 reads (JSON), newest first; expires 7 days
``rtic:officers:state``        hash    officer id -> last ping JSON (callsign, status, at)
``rtic:ref:{kind}``            hash    id -> entry JSON for geofences, operator places, snoozes
``rtic:ref-version:{kind}``    string  change counter of that layer (workers reload on change)
``rtic:verification:{alert}:{v}`` string the first decision on a plate check (alert id, version): its verification id; expires 30 days
``rtic:anpr-checks``           hash    ``verified:{camera}`` / ``not_a_match:{camera}`` -> decisions counted per camera
``rtic:trends:{hour}``         hash    input partition -> JSON snapshot of its counts in that hour (``YYYYMMDDTHH`` UTC); expires 30 days after the hour
``rtic:trends-changed``        zset    hour (``YYYYMMDDTHH``) -> when its snapshot was last written (epoch s); 30 days kept
=============================  ======  ==================================================

Hotlists and markers are one hash each, so a whole batch of look-ups is a
single ``HMGET`` (one command, one reply) however many events it holds;
upserts and deletes change one field's JSON map atomically in a Lua script.

Call history is a stream, the call log: each entry a batch of calls as a
worker enriched them (``c``: a JSON array of [id, received ms, address key,
person id, lat, lon, category]). Incident history is another, the incident
log, in the same format (the time is the created event's, the person id
empty). Every worker appends its batches and reads the others', and answers
look-ups from an index in memory (``enrichers.event_index``); each log is
trimmed (``MINID``) to the history window and a day of wall-clock time, so
Redis memory stays bounded.
"""

from __future__ import annotations

import re

_SPACES = re.compile(r"\s+")
_ADDRESS_NOISE = re.compile(r"[^A-Z0-9 ]")


def normalise_address(address: str) -> str:
    """An address key: upper case, punctuation dropped, spaces folded."""
    return _SPACES.sub(" ", _ADDRESS_NOISE.sub(" ", address.upper())).strip()


class Keys:
    """Key names for one deployment (optional prefix)."""

    def __init__(self, prefix: str = "") -> None:
        self.base = f"{prefix}rtic:"

    @property
    def hotlist(self) -> str:
        return f"{self.base}hotlist"

    @property
    def hotlist_index(self) -> str:
        return f"{self.base}hotlist-index"

    @property
    def person_markers(self) -> str:
        return f"{self.base}markers:person"

    @property
    def address_markers(self) -> str:
        return f"{self.base}markers:address"

    @property
    def marker_index(self) -> str:
        return f"{self.base}marker-index"

    @property
    def call_log(self) -> str:
        return f"{self.base}call-log"

    @property
    def incident_log(self) -> str:
        return f"{self.base}incident-log"

    @property
    def incident_vehicles(self) -> str:
        return f"{self.base}incident-vehicles"

    @property
    def incident_vehicles_index(self) -> str:
        return f"{self.base}incident-vehicles-index"

    def open_alert(self, group: str) -> str:
        return f"{self.base}open-alert:{group}"

    def trail(self, plate: str) -> str:
        return f"{self.base}trail:{plate}"

    @property
    def officer_state(self) -> str:
        return f"{self.base}officers:state"

    def reference(self, kind: str) -> str:
        return f"{self.base}ref:{kind}"

    def reference_version(self, kind: str) -> str:
        return f"{self.base}ref-version:{kind}"

    def verification(self, alert_id: str, version: int) -> str:
        return f"{self.base}verification:{alert_id}:{version}"

    @property
    def anpr_checks(self) -> str:
        return f"{self.base}anpr-checks"

    def trends(self, hour_tag: str) -> str:
        return f"{self.base}trends:{hour_tag}"

    @property
    def trends_changed(self) -> str:
        return f"{self.base}trends-changed"
