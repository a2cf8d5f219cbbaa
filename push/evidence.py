"""Evidence from the public (and staff): upload, list, download; the upload rules.

Routes (errors are ``{"error": {"code", "message"}}``):

- ``POST /api/cases/{case_ref}/evidence`` (the case's citizen, and staff who may see
  the case, ``push.access.may_see_case``; anyone else 404; rate limited per client
  address, ``evidence_upload``): ``multipart/form-data`` with one ``file`` part and
  an optional ``description`` (text, at most ``MAX_DESCRIPTION`` bytes). The body is
  parsed as it arrives (``python-multipart``'s streaming parser over
  ``request.stream()``) and the file written to the store's ``incoming/`` folder
  while it is hashed (SHA-256): nothing holds a whole video in memory. Answers:

  - 201 ``{evidence_id, sha256, bytes, content_type, kind, filename, duplicate}``:
    kept. ``evidence_id`` is stable for a case and content (the same file uploaded
    to the same case twice is one item: ``duplicate`` true the second time).
  - 413 ``too_large``: bigger than its type's limit (said in the message), or a
    declared body bigger than the largest limit.
  - 415 ``unsupported_type``: the content is not of an accepted type (told from the
    bytes, never from the name or the declared type: ``records.evidence_files``).
  - 400 ``bad_upload``: not multipart, broken or cut-short multipart, no ``file``,
    two files, an unknown field, an empty file, a file that is not whole (a
    truncated video...), or a file name with a path (``../../x``, ``/etc/x``,
    ``C:\\x``), control characters (NUL...) or over ``MAX_FILENAME`` characters.
  - 503: the store, Kafka or the database did not answer.

  A refused upload leaves nothing: its incoming file is deleted, no metadata is
  written. A kept one is moved into the content-addressed store, its metadata
  (``EvidenceV1``: ``captured_by`` "citizen" for a citizen else the uploader's id,
  ``uploaded_by`` the token subject, ``received_at``) is written to
  ``rtic.evidence.v1`` (the case worker stores it and adds the ``evidence.received``
  timeline entry, docs/cases.md) and then to the database directly too (so the
  item can be listed and fetched at once; the worker's write of the same id
  changes nothing). If Kafka does not take it, the upload is refused with 503 and
  its file deleted (when no earlier upload holds the same bytes).

- ``GET /api/cases/{case_ref}/evidence`` (the same people): the case's items, oldest
  first. Staff get every item whole; a citizen gets the items citizens gave
  (``captured_by`` "citizen"), without where they are stored. Audited
  (``case_viewed``, detail ``{"evidence": count}``).
- ``GET /api/evidence/{evidence_id}/content``: the file itself, to staff who may see
  its case and to the case's citizen for items citizens gave; anyone else 404.
  Each download is audited (``evidence_downloaded``, detail ``content: true``)
  before the bytes leave; served as an attachment (``Content-Disposition`` with a
  safe ASCII name and the original in ``filename*``), ``nosniff``, a sandboxing
  Content-Security-Policy, and the content type the upload was recognised as
  (``application/octet-stream`` for anything else).
- ``GET /api/portal/evidence-rules`` (public): the accepted types and the size
  limit of each family, so the page can say them before an upload.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from push.access import STAFF_CASE_ROLES, CaseScope, may_see_case
from push.api import NOT_FOUND, ApiError, _answering, _audit, _records
from push.outcomes import answer as outcome_answer
from push.ratelimit import rate_limited
from push.web import _edge, _json, public, require
from records.evidence_files import (
    FAMILIES,
    HEAD_BYTES,
    TYPES,
    EvidenceFiles,
    FileType,
    Incoming,
    NotWhole,
    check_whole,
    refine,
    sniff,
)
from rtic.casework import AuditAction, AuditObject, EvidenceV1, is_case_ref, stable_id
from rtic.schemas import Role, dumps
from rtic.settings import Settings
from rtic.tokens import Principal
from rtic.topics import Topics

log = logging.getLogger(__name__)

MAX_DESCRIPTION = 1000  # bytes of the optional description field
MAX_FILENAME = 255  # characters of a file name
MULTIPART_ALLOWANCE = 64 * 1024  # boundaries, part headers and the description
DRAIN_MAX = 8 * 1024 * 1024  # after a refusal, read at most this much more of the body
FAMILY_WORDS = {
    "image": "A photo",
    "video": "A video",
    "audio": "An audio recording",
    "document": "A document",
    "text": "A text file",
}
FAMILY_PLURALS = {
    "image": "Photos",
    "video": "Videos",
    "audio": "Audio recordings",
    "document": "Documents",
    "text": "Text files",
}
ACCEPTED_WORDS = (
    "photos (JPEG, PNG, GIF, WebP, HEIC), videos (MP4, MOV, WebM), audio (MP3, WAV, Ogg, "
    "M4A), PDF documents and plain text"
)
SERVED_TYPES = frozenset(t.content_type for t in TYPES)
CITIZEN_ITEM_FIELDS = (
    "evidence_id",
    "kind",
    "content_type",
    "bytes",
    "sha256",
    "filename",
    "description",
    "captured_at",
)
_PATHLIKE = re.compile(r"[/\\]|^\.{1,2}$|^[A-Za-z]:")

Publish = Callable[[str, str, bytes], Awaitable[None]]  # (topic, key, value): Kafka has it


def megabytes(n: int) -> str:
    """A size in words: ``30 MB`` (MB of 1024 x 1024 bytes, as phones say)."""
    mb = n / (1024 * 1024)
    if mb >= 1:
        return f"{mb:.0f} MB" if mb == int(mb) else f"{mb:.1f} MB"
    return f"{max(1, round(n / 1024))} KB"


@dataclass
class EvidenceDesk:
    """What the evidence routes need (kept on ``app.state.evidence``): the file store,
    the size limit per family, and the writer of metadata to ``rtic.evidence.v1``
    (``KafkaEdge.publish``; None: the database only, no timeline entry: tests without
    Kafka)."""

    files: EvidenceFiles
    limits: dict[str, int]
    publish: Publish | None = None
    topic: str = "rtic.evidence.v1"
    prepared: bool = field(default=False)

    async def write(self, item: EvidenceV1) -> None:
        """The item's metadata to ``rtic.evidence.v1``; raises if Kafka does not take it."""
        assert self.publish is not None
        await self.publish(self.topic, item.evidence_id, dumps(item))

    @classmethod
    def from_settings(cls, settings: Settings, publish: Publish | None) -> EvidenceDesk:
        limits = {
            "image": settings.evidence_max_image_bytes,
            "video": settings.evidence_max_video_bytes,
            "audio": settings.evidence_max_audio_bytes,
            "document": settings.evidence_max_document_bytes,
            "text": settings.evidence_max_text_bytes,
        }
        topic = Topics.with_prefix(settings.topic_prefix).evidence
        return cls(EvidenceFiles(settings.evidence_dir), limits, publish, topic)

    def max_body(self) -> int:
        """The largest request body an upload may be."""
        return max(self.limits.values()) + MULTIPART_ALLOWANCE

    def rules(self) -> dict[str, Any]:
        """What the page shows before an upload."""
        families = [
            {
                "family": f,
                "label": FAMILY_WORDS[f],
                "plural": FAMILY_PLURALS[f],
                "max_bytes": self.limits[f],
                "max_words": megabytes(self.limits[f]),
                "types": [
                    {"name": t.name, "content_type": t.content_type} for t in TYPES if t.family == f
                ],
            }
            for f in FAMILIES
        ]
        return {
            "families": families,
            "accepted": ACCEPTED_WORDS,
            "max_description_bytes": MAX_DESCRIPTION,
            "max_filename_chars": MAX_FILENAME,
        }


def desk_of(request: Request) -> EvidenceDesk:
    desk = getattr(request.app.state, "evidence", None)
    if not isinstance(desk, EvidenceDesk):
        raise ApiError(503, "uploads_unavailable", "this gateway does not take evidence")
    return desk


def bad(message: str) -> ApiError:
    return ApiError(400, "bad_upload", message)


def check_filename(raw: str) -> str:
    """The file name as given, if it is a plain name; ``ApiError`` 400 otherwise (the
    name is only ever metadata: the bytes are stored under their hash)."""
    name = unicodedata.normalize("NFC", raw)
    if not name.strip():
        return ""
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise bad("the file name has control characters (such as NUL) in it: rename the file")
    if _PATHLIKE.search(name):
        raise bad("the file name must be a plain name, not a path (no '/', '\\' or '..')")
    if len(name) > MAX_FILENAME:
        raise bad(f"the file name is longer than {MAX_FILENAME} characters: rename the file")
    return name


# ---- who may: the case's people ------------------------------------------------------------


async def case_people_only(request: Request, who: Principal, case_ref: str) -> bool:
    """Whether ``who`` is one of the case's people; ``ApiError`` 404 if not (the same
    answer as for a case that does not exist). Returns whether ``who`` is the citizen."""
    if not is_case_ref(case_ref):
        raise ApiError(404, *NOT_FOUND)
    if who.role is Role.CITIZEN:
        # Their token names the case (the portal made both): the case worker may not
        # have written the case yet, and that is no reason to refuse them.
        if may_see_case(who, CaseScope(case_ref)):
            return True
        raise ApiError(404, *NOT_FOUND)
    if who.role in STAFF_CASE_ROLES:
        row = await _records(request).cases.get_case(case_ref)
        if row is not None and may_see_case(who, CaseScope.of_row(row)):
            return False
    raise ApiError(404, *NOT_FOUND)


# ---- the upload, parsed as it arrives ------------------------------------------------------


class _Upload:
    """One multipart body being parsed: the file part goes to an incoming file."""

    def __init__(self, desk: EvidenceDesk) -> None:
        self.desk = desk
        self.headers: list[tuple[bytes, bytes]] = []
        self.field_name = bytearray()
        self.field_value = bytearray()
        self.part: str | None = None  # "file" | "description"
        self.filename = ""
        self.file_parts = 0
        self.file_done = False
        self.description = bytearray()
        self.head = bytearray()
        self.ftype: FileType | None = None
        self.size = 0
        self.pending: list[bytes] = []
        self.incoming: Incoming | None = None
        self.ended = False

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.headers, self.part = [], None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.field_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.field_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers.append((bytes(self.field_name).lower(), bytes(self.field_value)))
        self.field_name, self.field_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        raw = dict(self.headers).get(b"content-disposition", b"")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise bad("a part's headers are not UTF-8") from exc
        if "\x00" in text:
            raise bad("the file name has control characters (such as NUL) in it: rename the file")
        disposition, options = parse_options_header(text)
        if disposition != b"form-data" or b"name" not in options:
            raise bad("every part must be form-data with a name")
        name = options[b"name"].decode("utf-8", "replace")
        if name == "file":
            self.file_parts += 1
            if self.file_parts > 1:
                raise bad("send one file per upload")
            # parse_options_header keeps only the base of an old IE full path: read the
            # name from the header as sent, so a path is refused, not silently cut.
            given = re.search(r'filename="((?:[^"\\]|\\.)*)"', text) or re.search(
                r"filename=([^;]*)", text
            )
            self.filename = check_filename(given.group(1).replace('\\"', '"') if given else "")
            self.part = "file"
        elif name == "description":
            self.part = "description"
        else:
            raise bad(f"unknown field {name[:40]!r}: send 'file' (and 'description')")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = bytes(data[start:end])
        if self.part == "description":
            self.description += chunk
            if len(self.description) > MAX_DESCRIPTION:
                raise bad(f"the description is longer than {MAX_DESCRIPTION} bytes")
            return
        if self.part != "file" or not chunk:
            return
        self.size += len(chunk)
        self.pending.append(chunk)
        if self.ftype is None and len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
            if len(self.head) >= HEAD_BYTES:
                self._decide(complete=False)
        self.check_size()

    def on_part_end(self) -> None:
        if self.part == "file":
            if self.size == 0:
                raise bad("the file is empty")
            if self.ftype is None:
                self._decide(complete=True)
            self.file_done = True
        self.part = None

    def on_end(self) -> None:
        self.ended = True

    def _decide(self, complete: bool) -> None:
        self.ftype = sniff(bytes(self.head), complete=complete)
        if self.ftype is None:
            raise ApiError(
                415, "unsupported_type", f"this file is not a type we accept: {ACCEPTED_WORDS}"
            )
        self.check_size()

    def check_size(self) -> None:
        if self.ftype is None:
            return
        limit = self.desk.limits[self.ftype.family]
        if self.size > limit:
            raise ApiError(
                413,
                "too_large",
                f"{FAMILY_WORDS[self.ftype.family]} may be at most {megabytes(limit)}; "
                "this one is larger",
            )

    def flush(self) -> None:
        """Write what was parsed to the incoming file (in a worker thread)."""
        if not self.pending:
            return
        if self.incoming is None:
            self.incoming = self.desk.files.incoming()
        for chunk in self.pending:
            self.incoming.write(chunk)
        self.pending.clear()

    def discard(self) -> None:
        if self.incoming is not None:
            self.incoming.discard()


def _boundary(request: Request) -> bytes:
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary", b"")
    if ctype != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise bad("send the file as multipart/form-data with one 'file' field")
    return boundary


async def _drain(request: Request) -> None:
    """Read (and drop) the rest of a refused body, up to ``DRAIN_MAX``, so the client
    can read the refusal instead of finding the connection shut while it sends."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAIN_MAX:
        return
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > DRAIN_MAX:
                return
    except (ClientDisconnect, RuntimeError):  # gone, or the stream was already read out
        return


async def _receive(request: Request, upload: _Upload) -> None:
    """Parse the body into the upload's incoming file (refusals raise ``ApiError``; the
    caller discards the file)."""
    parser = MultipartParser(_boundary(request), upload.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if upload.pending:
                await asyncio.to_thread(upload.flush)
        parser.finalize()
    except ApiError:
        raise
    except MultipartParseError as exc:
        raise bad(f"the upload is not well-formed multipart ({exc})") from exc
    except ClientDisconnect as exc:
        raise bad("the upload was cut short") from exc
    finally:
        upload.pending.clear()
    if not upload.ended:
        raise bad("the upload was cut short (the multipart body has no end)")
    if not upload.file_done or upload.incoming is None or upload.ftype is None:
        raise bad("no file: send it in a field named 'file'")


@rate_limited("evidence_upload")
@require()
@_answering
async def upload_evidence(request: Request, who: Principal) -> Response:
    """Take one file for a case (see the module's description)."""
    case_ref = request.path_params["case_ref"]
    citizen = await case_people_only(request, who, case_ref)
    desk = desk_of(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > desk.max_body():
        largest = max(desk.limits.values())
        raise ApiError(413, "too_large", f"an upload may be at most {megabytes(largest)}")
    upload = _Upload(desk)
    try:
        if not desk.prepared:
            await asyncio.to_thread(desk.files.prepare)
            desk.prepared = True
        try:
            await _receive(request, upload)
        except ApiError:
            await _drain(request)
            raise
        assert upload.incoming is not None and upload.ftype is not None
        ftype = upload.ftype
        await asyncio.to_thread(upload.incoming.close)
        try:
            await asyncio.to_thread(check_whole, upload.incoming.path, ftype)
        except NotWhole as exc:
            raise bad(f"the file is not a whole {ftype.name} file: {exc}") from exc
        upload.ftype = await asyncio.to_thread(refine, upload.incoming.path, ftype)
        upload.check_size()  # an MP4 found to be audio has audio's limit
        sha, uri, new = await asyncio.to_thread(desk.files.keep, upload.incoming)
        return await _record(request, who, desk, upload, case_ref, citizen, sha, uri, new)
    except OSError as exc:  # the folder: full, gone, not writable
        log.error("the evidence store failed: %r", exc)
        raise ApiError(
            503, "store_unavailable", "the upload could not be stored: try again"
        ) from exc
    finally:
        await asyncio.to_thread(upload.discard)  # refused: its file; kept: nothing left


async def _record(
    request: Request,
    who: Principal,
    desk: EvidenceDesk,
    upload: _Upload,
    case_ref: str,
    citizen: bool,
    sha: str,
    uri: str,
    new: bool,
) -> Response:
    """Write the kept file's metadata: to Kafka (or refuse, deleting a new file), then
    to the database."""
    assert upload.ftype is not None
    records = _records(request)
    evidence_id = stable_id("evd", case_ref, sha)
    known = await records.cases.get_evidence(evidence_id)
    now = _edge(request).core.clock()
    item = EvidenceV1.model_validate(
        {
            "evidence_id": evidence_id,
            "kind": upload.ftype.kind,
            "captured_by": "citizen" if citizen else who.sub,
            "captured_at": now,
            "sha256": sha,
            "storage_uri": uri,
            "case_ref": case_ref,
            "bytes": upload.size,
            "content_type": upload.ftype.content_type,
            "filename": upload.filename or None,
            "description": upload.description.decode("utf-8", "replace").strip() or None,
            "uploaded_by": who.sub,
            "received_at": now.isoformat(),
        }
    )
    if known is not None:
        item = known[0]  # the same bytes for the same case: one item, kept as first given
    elif desk.publish is not None:
        try:
            await desk.write(item)
        except Exception as exc:
            log.error("evidence %s not written to Kafka: %r", evidence_id, exc)
            if new:
                await asyncio.to_thread(desk.files.forget, sha)
            raise ApiError(
                503, "unavailable", "the upload could not be recorded: try again"
            ) from exc
    if known is None:
        try:
            await records.cases.save_evidence(item, case_ref)
        except Exception as exc:  # Kafka has it: the case worker will store it
            if desk.publish is None:
                if new:
                    await asyncio.to_thread(desk.files.forget, sha)
                raise
            log.warning("evidence %s stored by the case worker only: %r", evidence_id, exc)
    return _json(
        {
            "evidence_id": item.evidence_id,
            "sha256": item.sha256,
            "bytes": item.bytes,
            "content_type": item.content_type,
            "kind": item.kind.value,
            "filename": item.filename,
            "duplicate": known is not None,
        },
        201,
    )


# ---- listing and downloading ---------------------------------------------------------------


def citizen_item(item: EvidenceV1) -> dict[str, Any]:
    """An item as its citizen sees it: what it is, never where it is kept or who of
    the force handled it."""
    data = item.model_dump(mode="json", include=set(CITIZEN_ITEM_FIELDS), exclude_none=True)
    return data


@require()
@_answering
async def list_evidence(request: Request, who: Principal) -> Response:
    """The case's items (a citizen: those citizens gave), oldest first."""
    case_ref = request.path_params["case_ref"]
    citizen = await case_people_only(request, who, case_ref)
    view = await _records(request).cases.view(case_ref)
    items = list(view.evidence) if view is not None else []
    if citizen:
        items = [i for i in items if i.captured_by == "citizen"]
    await _audit(
        request,
        who,
        AuditAction.CASE_VIEWED,
        AuditObject.CASE,
        case_ref,
        detail={"evidence": len(items)},
    )
    shown = (
        [citizen_item(i) for i in items]
        if citizen
        else [i.model_dump(mode="json", exclude_none=True) for i in items]
    )
    return _json({"case_ref": case_ref, "evidence": shown})


def content_disposition(evidence_id: str, item: EvidenceV1, ftype_ext: str) -> str:
    """An attachment, named safely: an ASCII name, and the original in ``filename*``."""
    original = item.filename or f"evidence{ftype_ext}"
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", original).strip("._") or "evidence"
    if not ascii_name.lower().endswith(ftype_ext):
        ascii_name += ftype_ext
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(original, safe='')}"


@require()
@_answering
async def download_evidence(request: Request, who: Principal) -> Response:
    """The file of an item, to the case's people (a citizen: items citizens gave)."""
    evidence_id = request.path_params["evidence_id"]
    records = _records(request)
    found = await records.cases.get_evidence(evidence_id)
    if found is None:
        raise ApiError(404, "not_found", "no such evidence")
    item, case_ref = found
    if who.role is Role.CITIZEN:
        visible = (
            case_ref is not None
            and may_see_case(who, CaseScope(case_ref))
            and item.captured_by == "citizen"
        )
    elif who.role in STAFF_CASE_ROLES:
        row = await records.cases.get_case(case_ref) if case_ref else None
        if row is None:
            visible = who.role is Role.SUPERVISOR and not who.areas
        else:
            visible = may_see_case(who, CaseScope.of_row(row))
    else:
        visible = False
    if not visible:
        raise ApiError(404, "not_found", "no such evidence")
    desk = desk_of(request)
    path = await asyncio.to_thread(desk.files.find, item.storage_uri)
    if path is None:
        raise ApiError(404, "not_stored", "this item's file is not kept by this gateway")
    await _audit(
        request,
        who,
        AuditAction.EVIDENCE_DOWNLOADED,
        AuditObject.EVIDENCE,
        evidence_id,
        reference=case_ref,
        detail={"case_ref": case_ref, "content": True, "bytes": item.bytes, "sha256": item.sha256},
    )
    content_type = item.content_type if item.content_type in SERVED_TYPES else None
    ext = next((t.extension for t in TYPES if t.content_type == content_type), ".bin")
    return FileResponse(
        path,
        media_type=content_type or "application/octet-stream",
        headers={
            "Content-Disposition": content_disposition(evidence_id, item, ext),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "no-store",
        },
    )


@public
async def outcomes(request: Request) -> Response:
    """What happens next: outcome shares per crime type (``push.outcomes``)."""
    category = request.query_params.get("category", "").strip() or None
    status, body = await asyncio.to_thread(outcome_answer, _edge(request).data_dir, category)
    return _json(body, status, cache=status == 200)


@public
async def evidence_rules(request: Request) -> Response:
    """The accepted types and size limits (public: the page shows them before upload)."""
    try:
        desk = desk_of(request)
    except ApiError as exc:
        return exc.response()
    return _json(desk.rules(), cache=False)


def evidence_routes() -> list[BaseRoute]:
    """The evidence routes (``push.web.routes`` adds them to the app)."""
    return [
        Route("/api/cases/{case_ref}/evidence", upload_evidence, methods=["POST"]),
        Route("/api/cases/{case_ref}/evidence", list_evidence, methods=["GET"]),
        Route("/api/evidence/{evidence_id}/content", download_evidence),
        Route("/api/portal/evidence-rules", evidence_rules),
        Route("/api/portal/outcomes", outcomes),
    ]
