"""What a client may send the gateway over its websocket: one pydantic model per message.

Every message is a JSON object whose ``type`` names it; ``ClientMessage`` is the
union of the models, discriminated on ``type``, and ``parse_client_message`` turns
the raw text of one websocket message into one of them, or raises
``BadClientMessage`` with the code of the error frame the client gets back:

- ``bad_json``: not JSON; ``bad_message``: not an object with a text ``type``;
- ``unknown_type``: a ``type`` this gateway does not know;
- ``bad_<type>`` (``bad_request`` for ``snooze``/``unsnooze``): the fields are wrong,
  with a message saying which and why.

The models check the shape of each message only. Who may send what, and what it
means (the rules a snooze may name, what a subscription admits), is the gateway's
policy (``push/access.py``). Fields a model does not declare are ignored, so a newer
page can talk to an older gateway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rtic.errors import ContractError
from rtic.schemas import Severity

MAX_RADIUS_M = 50_000.0
MAX_SNOOZE_MINUTES = 1440
MAX_LIST = 500  # values in one list of a subscription
MAX_SEEN = 1000  # alerts a resume may name as seen


class BadClientMessage(ContractError):
    """A client message the gateway refuses; ``code`` goes in the error frame, and
    ``msg_type`` is the message's type when it has a known one."""

    def __init__(self, code: str, message: str, msg_type: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.msg_type = msg_type


def _text(name: str, limit: int) -> BeforeValidator:
    """Optional text: absent, null or empty is ``None``; else stripped, not blank, at
    most ``limit`` characters (counted before stripping)."""

    def check(value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValueError(f"'{name}' must be text")
        if not value.strip():
            raise ValueError(f"'{name}' must not be blank")
        if len(value) > limit:
            raise ValueError(f"'{name}' is longer than {limit} characters")
        return value.strip()

    return BeforeValidator(check)


def _none_is_empty(value: Any) -> Any:
    return [] if value is None else value


_StrList = Annotated[
    list[str], BeforeValidator(_none_is_empty), Field(strict=True, max_length=MAX_LIST)
]


class _Message(BaseModel):
    """Base of every client message: frozen, strict, extra fields ignored."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore", allow_inf_nan=False)
    # The message a client gets for any error of a field not explained by a validator.
    explain: ClassVar[dict[str, str]] = {}


class Ping(_Message):
    """``ping``: answered with ``pong`` and the gateway's time."""

    type: Literal["ping"]


class Position(BaseModel):
    """A point in decimal degrees."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore", allow_inf_nan=False)
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]


class Subscribe(_Message):
    """``subscribe``: what the client wants (each field narrows; empty: no narrowing).
    A new one replaces the last; a bad one leaves the last in force."""

    type: Literal["subscribe"]
    areas: _StrList = []
    severities: _StrList = []
    radius_m: Annotated[float, Field(gt=0, le=MAX_RADIUS_M)] | None = None
    position: Position | None = None
    cases: _StrList = []
    events: bool = False

    explain: ClassVar[dict[str, str]] = {
        "areas": f"'areas' must be a list of at most {MAX_LIST} strings",
        "severities": f"'severities' must be a list of at most {MAX_LIST} strings",
        "cases": f"'cases' must be a list of at most {MAX_LIST} strings",
        "radius_m": f"radius_m must be a number of metres in (0, {MAX_RADIUS_M:.0f}]",
        "position": "position must be {lat, lon} in decimal degrees (lat -90..90, lon -180..180)",
        "events": "'events' must be true or false",
    }

    @field_validator("severities")
    @classmethod
    def _known_severities(cls, value: list[str]) -> list[str]:
        for name in value:
            try:
                Severity(name)
            except ValueError as exc:
                raise ValueError(f"severities: {exc}") from exc
        return value


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None  # not an id: as if absent


def _iso_time(value: Any) -> Any:
    """``since``: an ISO 8601 time with a timezone (as ``datetime.fromisoformat`` reads it)."""
    if not isinstance(value, str):
        return None  # not a time: as if absent ("needs last_alert_id or since")
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("since must be an ISO 8601 time") from exc
    if at.tzinfo is None:
        raise ValueError("since needs a timezone")
    return at


def _seen(value: Any) -> Any:
    """``seen``: absent or null is nothing seen."""
    return {} if value is None else value


class Resume(_Message):
    """``resume``: "I last saw X" (``last_alert_id``, which wins when the gateway holds
    it) or "everything since T", never sending again what ``seen`` names (alert id ->
    the version the client has)."""

    type: Literal["resume"]
    last_alert_id: Annotated[str | None, BeforeValidator(_text_or_none)] = None
    since: Annotated[datetime | None, BeforeValidator(_iso_time)] = None
    seen: Annotated[
        dict[Annotated[str, Field(max_length=200)], Annotated[int, Field(ge=1)]],
        BeforeValidator(_seen),
        Field(max_length=MAX_SEEN),
    ] = {}

    explain: ClassVar[dict[str, str]] = {
        "seen": f"'seen' must be an object of at most {MAX_SEEN} alert ids, each with the "
        "version the client has (a whole number from 1)",
    }

    @model_validator(mode="after")
    def _one_of(self) -> Resume:
        if self.last_alert_id is None and self.since is None:
            raise ValueError("resume needs last_alert_id or since")
        return self


class Ack(_Message):
    """``ack``: someone acted on an alert (acknowledged, assigned, dismissed)."""

    type: Literal["ack"]
    alert_id: Annotated[str, Field(min_length=1, max_length=200)]
    action: Literal["ack", "assign", "dismiss"] = "ack"
    note: str | None = None

    explain: ClassVar[dict[str, str]] = {
        "alert_id": "ack needs an alert_id",
        "action": "action must be ack, assign or dismiss",
        "note": "note must be text",
    }


class Open(_Message):
    """``open``: the client opened an alert's detail (the gateway records it in the audit
    trail and answers ``opened``)."""

    type: Literal["open"]
    alert_id: Annotated[str, Field(min_length=1, max_length=200)]

    explain: ClassVar[dict[str, str]] = {"alert_id": "open needs an alert_id"}


class Snooze(_Message):
    """``snooze``: hold a rule's alerts (or every rule's) back for an area or a plate."""

    type: Literal["snooze"]
    rule_id: Annotated[str | None, _text("rule_id", 200)] = None
    area: Annotated[str | None, _text("area", 200)] = None
    vrm: Annotated[str | None, _text("vrm", 16)] = None
    minutes: Annotated[int, Field(ge=1, le=MAX_SNOOZE_MINUTES)]
    reason: Annotated[str | None, _text("reason", 500)] = None

    explain: ClassVar[dict[str, str]] = {
        "minutes": f"'minutes' must be a whole number from 1 to {MAX_SNOOZE_MINUTES}",
    }

    @field_validator("vrm")
    @classmethod
    def _a_plate(cls, value: str | None) -> str | None:
        if value is not None and not any(c.isalnum() for c in value):
            raise ValueError("'vrm' must be a plate (letters and digits)")
        return value

    @model_validator(mode="after")
    def _area_or_plate(self) -> Snooze:
        if self.area is None and self.vrm is None:
            raise ValueError("a snooze needs an 'area' (an area code) or a 'vrm' (a plate)")
        return self


class Unsnooze(_Message):
    """``unsnooze``: lift a snooze by its id."""

    type: Literal["unsnooze"]
    snooze_id: Annotated[str | None, _text("snooze_id", 200)] = None

    @model_validator(mode="after")
    def _needs_id(self) -> Unsnooze:
        if self.snooze_id is None:
            raise ValueError("unsnooze needs a 'snooze_id'")
        return self


# ---- the people's side: officers' devices and the desk (docs/contract.md) ------------

_Id = Annotated[str, Field(min_length=1, max_length=200)]


def _aware(value: Any) -> Any:
    """An ISO 8601 time with a timezone (text), for fields that must carry one."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time")
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("must be an ISO 8601 time") from exc
    if at.tzinfo is None:
        raise ValueError("needs a timezone")
    return at


_When = Annotated[datetime, BeforeValidator(_aware)]


class Verify(_Message):
    """``verify``: a person checked a plate hit ("check the plate") against the read:
    ``verified`` makes it an actionable alert, ``not_a_match`` records a misread."""

    type: Literal["verify"]
    alert_id: _Id
    outcome: Literal["verified", "not_a_match"]
    note: Annotated[str | None, _text("note", 1000)] = None

    explain: ClassVar[dict[str, str]] = {
        "alert_id": "verify needs an alert_id",
        "outcome": "outcome must be verified or not_a_match",
    }


class JobUpdate(_Message):
    """``job_update``: an officer's update to a job (an incident assigned to them), made
    on the device with its own ``update_id``; the gateway applies each id once."""

    type: Literal["job_update"]
    update_id: _Id
    incident_id: _Id
    event: Literal["en_route", "arrived", "updated", "closed"]
    at: _When
    note: Annotated[str | None, _text("note", 4000)] = None
    result: Annotated[str | None, _text("result", 200)] = None

    explain: ClassVar[dict[str, str]] = {
        "update_id": "job_update needs an update_id (made on the device)",
        "incident_id": "job_update needs an incident_id",
        "event": "event must be en_route, arrived, updated or closed",
    }


class Assign(_Message):
    """``assign``: the desk (analyst or supervisor) gives an incident to an officer.
    ``assign_id`` (made by the page) makes a repeated request harmless; ``alert_id``
    names the alert the assignment answers, if any."""

    type: Literal["assign"]
    assign_id: _Id
    incident_id: _Id
    officer_id: _Id
    alert_id: Annotated[str | None, Field(max_length=200)] = None
    note: Annotated[str | None, _text("note", 1000)] = None

    explain: ClassVar[dict[str, str]] = {
        "assign_id": "assign needs an assign_id (made by the page)",
        "incident_id": "assign needs an incident_id",
        "officer_id": "assign needs an officer_id",
    }


class PositionPing(_Message):
    """``position``: an officer's device says where it is and the officer's status; the
    gateway puts it on ``rtic.officer-locations.v1`` for the token's officer."""

    type: Literal["position"]
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    at: _When
    status: Literal["available", "committed", "off_duty"] | None = None
    accuracy_m: Annotated[float, Field(ge=0, le=100_000)] | None = None

    explain: ClassVar[dict[str, str]] = {
        "lat": "lat must be decimal degrees from -90 to 90",
        "lon": "lon must be decimal degrees from -180 to 180",
        "status": "status must be available, committed or off_duty",
    }


# ---- webchat between a citizen and a contact handler (docs/contract.md) ---------------

MAX_CHAT_TEXT = 2000
_CaseRefField = Annotated[str | None, _text("case_ref", 32)]


class ChatLocation(BaseModel):
    """Where a chat's call is for: a point in decimal degrees, with an address if known."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore", allow_inf_nan=False)
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    address: Annotated[str | None, _text("address", 300)] = None


class ChatOpen(_Message):
    """``chat_open``: a citizen opens their case's chat (answered with its history, then
    its messages live); a contact handler opens the queue (no ``case_ref``) or a chat
    they hold (its history)."""

    type: Literal["chat_open"]
    case_ref: _CaseRefField = None


class Chat(_Message):
    """``chat``: one message of a webchat. ``message_id`` is made by the page (a repeated
    id is the same message: stored and shown once); a citizen's case comes from their
    token, a handler names the case of a chat they hold."""

    type: Literal["chat"]
    message_id: _Id
    text: Annotated[str | None, _text("text", MAX_CHAT_TEXT)] = None
    case_ref: _CaseRefField = None

    explain: ClassVar[dict[str, str]] = {
        "message_id": "chat needs a message_id (made by the page)",
    }

    @model_validator(mode="after")
    def _has_text(self) -> Chat:
        if self.text is None:
            raise ValueError("chat needs a 'text'")
        return self


class ChatTake(_Message):
    """``chat_take``: a contact handler takes a chat from the queue (the first wins)."""

    type: Literal["chat_take"]
    case_ref: _Id

    explain: ClassVar[dict[str, str]] = {"case_ref": "chat_take needs a case_ref"}


class ChatToCall(_Message):
    """``chat_to_call``: the handler holding a chat turns it into a call on
    ``rtic.calls.v1`` (channel ``webchat``), with the conversation as its description."""

    type: Literal["chat_to_call"]
    case_ref: _Id
    category: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
    grade: Literal[1, 2, 3, 4] | None = None
    location: ChatLocation | None = None

    explain: ClassVar[dict[str, str]] = {
        "case_ref": "chat_to_call needs a case_ref",
        "category": "category must be a category name (lower case letters, digits and _)",
        "grade": "grade must be 1, 2, 3 or 4",
        "location": "location must be {lat, lon, address?} in decimal degrees",
    }


class ChatClose(_Message):
    """``chat_close``: the handler holding a chat ends it (the citizen may start another)."""

    type: Literal["chat_close"]
    case_ref: _Id

    explain: ClassVar[dict[str, str]] = {"case_ref": "chat_close needs a case_ref"}


ClientMessage = Annotated[
    Ping
    | Subscribe
    | Resume
    | Ack
    | Open
    | Snooze
    | Unsnooze
    | Verify
    | JobUpdate
    | Assign
    | PositionPing
    | ChatOpen
    | Chat
    | ChatTake
    | ChatToCall
    | ChatClose,
    Field(discriminator="type"),
]
MODELS: dict[str, type[_Message]] = {
    "ping": Ping,
    "subscribe": Subscribe,
    "resume": Resume,
    "ack": Ack,
    "open": Open,
    "snooze": Snooze,
    "unsnooze": Unsnooze,
    "verify": Verify,
    "job_update": JobUpdate,
    "assign": Assign,
    "position": PositionPing,
    "chat_open": ChatOpen,
    "chat": Chat,
    "chat_take": ChatTake,
    "chat_to_call": ChatToCall,
    "chat_close": ChatClose,
}


def error_code(msg_type: str) -> str:
    """The error frame's code for a message of this type the gateway refuses."""
    return "bad_request" if msg_type in ("snooze", "unsnooze") else f"bad_{msg_type}"


def error_text(msg_type: str, reason: str) -> str:
    """The error frame's message: snooze errors say which request they answer."""
    return f"{msg_type}: {reason}" if msg_type in ("snooze", "unsnooze") else reason


def explain(model: type[_Message], exc: ValidationError) -> str:
    """One sentence for the first thing wrong in a message (fields in declared order)."""
    first = exc.errors(include_url=False)[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    if first["type"] == "value_error":
        return str(first["ctx"]["error"])
    if field in model.explain:
        return model.explain[field]
    return f"'{field}': {first['msg']}" if field else str(first["msg"])


def parse_client_message(raw: str | bytes) -> ClientMessage:
    """One websocket message to its model, or ``BadClientMessage`` saying what is wrong."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadClientMessage("bad_json", "message is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise BadClientMessage("bad_message", "message must be a JSON object with a 'type'")
    msg_type: str = data["type"]
    model = MODELS.get(msg_type)
    if model is None:
        # Named back, but never at length: the error frame stays small whatever was sent.
        shown = msg_type if len(msg_type) <= 64 else msg_type[:64] + "…"
        raise BadClientMessage("unknown_type", f"unknown message type {shown!r}")
    try:
        # The type picks the model (as the discriminated union would) so that the
        # errors are the model's own, located by field.
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        reason = error_text(msg_type, explain(model, exc))
        raise BadClientMessage(error_code(msg_type), reason, msg_type) from exc
