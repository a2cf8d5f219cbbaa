"""Evidence files: what a file is (from its bytes), and where its bytes are kept.

**Types** are told from the content, never from the name or the type a browser
declares. ``sniff`` reads the first ``HEAD_BYTES`` of a file and names its type
(or None: not accepted); ``check_whole`` then reads the finished file and says
whether it really is a whole file of that type (a truncated video, a PNG whose
chunks do not add up, a PDF without its end: refused). Accepted:

===========  ==========================  =================  =========================
family       types (content type)        magic              whole-file check
===========  ==========================  =================  =========================
image        JPEG (image/jpeg)           FF D8 FF           segments walked to EOI
image        PNG (image/png)             89 'PNG' 0D0A1A0A  chunks and CRCs to IEND
image        GIF (image/gif)             'GIF87a'/'GIF89a'  ends with the 3B trailer
image        WebP (image/webp)           'RIFF' .. 'WEBP'   RIFF size = file size
image        HEIC/HEIF (image/heic)      'ftyp' heic/mif1.. ISO boxes add up, 'meta'
video        MP4 (video/mp4)             'ftyp' isom/mp4..  ISO boxes add up, 'moov'
video        QuickTime (video/quicktime) 'ftyp' 'qt  '      ISO boxes add up, 'moov'
video        WebM (video/webm)           1A45DFA3 'webm'    Segment size = the rest
                                                            (or unknown: a recording)
audio        MP3 (audio/mpeg)            'ID3' or sync      a frame header after ID3
audio        WAV (audio/wav)             'RIFF' .. 'WAVE'   RIFF size = file size
audio        Ogg Opus/Vorbis (audio/ogg) 'OggS' + codec     pages walked, last is EOS
audio        M4A (audio/mp4)             'ftyp' 'M4A '      ISO boxes add up, 'moov'
document     PDF (application/pdf)       '%PDF-'            '%%EOF' in the last 1 KiB
text         plain text (text/plain)     none: UTF-8 with   all of it UTF-8, no
                                         no control chars   control characters
===========  ==========================  =================  =========================

Not accepted (415): anything else, among them Matroska other than WebM, AVI,
AVIF, Office documents, archives, executables and HTML. An MP3 cut short is not
detected (its frames stand alone: it plays up to the cut).

**Storage** (``EvidenceFiles``) is a local folder, content-addressed: a file's bytes
are at ``<root>/sha256/<first two hex digits>/<sha256>`` and its ``storage_uri`` is
``local:sha256/<sha256>``. An upload is written to ``<root>/incoming/`` while it
arrives and moved into place (``os.replace``, atomic) only once it is accepted;
refused, it is deleted. The same bytes uploaded twice are kept once. The database
holds the metadata only (``EvidenceV1``).
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import mmap
import os
import re
import struct
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rtic.casework import EvidenceKind

HEAD_BYTES = 64  # enough bytes to tell every accepted type
URI_PREFIX = "local:sha256/"
STALE_INCOMING_S = 24 * 3600  # an upload file older than this was left by a dead gateway


@dataclass(frozen=True)
class FileType:
    """An accepted type: its name, content type, family (for the size limit), the kind
    of evidence it is, and the extension a download is named with."""

    name: str
    content_type: str
    family: str
    kind: EvidenceKind
    extension: str


FAMILIES = ("image", "video", "audio", "document", "text")
JPEG = FileType("JPEG", "image/jpeg", "image", EvidenceKind.PHOTO, ".jpg")
PNG = FileType("PNG", "image/png", "image", EvidenceKind.PHOTO, ".png")
GIF = FileType("GIF", "image/gif", "image", EvidenceKind.PHOTO, ".gif")
WEBP = FileType("WebP", "image/webp", "image", EvidenceKind.PHOTO, ".webp")
HEIC = FileType("HEIC", "image/heic", "image", EvidenceKind.PHOTO, ".heic")
MP4 = FileType("MP4", "video/mp4", "video", EvidenceKind.VIDEO, ".mp4")
MOV = FileType("QuickTime", "video/quicktime", "video", EvidenceKind.VIDEO, ".mov")
WEBM = FileType("WebM", "video/webm", "video", EvidenceKind.VIDEO, ".webm")
MP3 = FileType("MP3", "audio/mpeg", "audio", EvidenceKind.AUDIO, ".mp3")
WAV = FileType("WAV", "audio/wav", "audio", EvidenceKind.AUDIO, ".wav")
OGG = FileType("Ogg", "audio/ogg", "audio", EvidenceKind.AUDIO, ".ogg")
M4A = FileType("M4A", "audio/mp4", "audio", EvidenceKind.AUDIO, ".m4a")
PDF = FileType("PDF", "application/pdf", "document", EvidenceKind.DOCUMENT, ".pdf")
TEXT = FileType("text", "text/plain; charset=utf-8", "text", EvidenceKind.DOCUMENT, ".txt")
TYPES = (JPEG, PNG, GIF, WEBP, HEIC, MP4, MOV, WEBM, MP3, WAV, OGG, M4A, PDF, TEXT)

HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
M4A_BRANDS = {b"M4A ", b"M4B "}
MOV_BRANDS = {b"qt  "}
MP4_BRANDS = {
    b"isom",
    b"iso2",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"M4V ",
    b"3gp4",
    b"3gp5",
    b"3gp6",
    b"3g2a",
    b"MSNV",
    b"dash",
    b"mmp4",
}
_TEXT_BAD = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class NotWhole(ValueError):
    """The file is not a whole file of the type its first bytes say."""


# ---- what a file is ------------------------------------------------------------------------


def _iso_type(head: bytes) -> FileType | None:
    brand = head[8:12]
    if brand in HEIF_BRANDS:
        return HEIC
    if brand in M4A_BRANDS:
        return M4A
    if brand in MOV_BRANDS:
        return MOV
    if brand in MP4_BRANDS:
        return MP4
    return None


def _ebml_doctype(head: bytes) -> bytes | None:
    """The DocType of an EBML header in ``head`` (``webm``, ``matroska``), or None."""
    at = head.find(b"\x42\x82")
    if at < 0 or at + 3 > len(head):
        return None
    size = head[at + 2] & 0x7F  # a one-byte size (0x80 | n) is what every muxer writes
    if not head[at + 2] & 0x80:
        return None
    return head[at + 3 : at + 3 + size]


def _mp3_frame(b: bytes) -> bool:
    """Whether ``b`` starts with an MPEG audio layer III frame header."""
    if len(b) < 4 or b[0] != 0xFF or b[1] & 0xE0 != 0xE0:
        return False
    version, layer = (b[1] >> 3) & 3, (b[1] >> 1) & 3
    bitrate, rate = b[2] >> 4, (b[2] >> 2) & 3
    return version != 1 and layer == 1 and bitrate not in (0, 15) and rate != 3


def _is_text(head: bytes, final: bool) -> bool:
    if _TEXT_BAD.search(head):
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=final)
    except UnicodeDecodeError:
        return False
    return True


def sniff(head: bytes, complete: bool = False) -> FileType | None:
    """The accepted type the first bytes of a file say, or None. ``complete``: ``head``
    is the whole file (shorter than ``HEAD_BYTES``)."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head[4:8] == b"ftyp":
        return _iso_type(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return WEBM if _ebml_doctype(head) == b"webm" else None
    if head.startswith(b"OggS") and len(head) >= 36:
        body = head[27 + head[26] :]
        return OGG if body.startswith((b"OpusHead", b"\x01vorbis")) else None
    if head.startswith(b"ID3") and len(head) >= 10 and all(x < 0x80 for x in head[6:10]):
        return MP3
    if _mp3_frame(head):
        return MP3
    if head.startswith(b"%PDF-"):
        return PDF
    if head and _is_text(head, final=complete):
        return TEXT
    return None


def accepted_types() -> list[dict[str, str]]:
    """The accepted types, for the page and the docs."""
    return [{"name": t.name, "content_type": t.content_type, "family": t.family} for t in TYPES]


# ---- is it whole ------------------------------------------------------------------------------


def _jpeg(m: mmap.mmap) -> None:
    at, n = 2, len(m)
    while True:
        if at + 2 > n or m[at] != 0xFF:
            raise NotWhole("a JPEG whose segments are broken or cut short")
        marker = m[at + 1]
        if marker == 0xD9:
            return
        if at + 4 > n:
            raise NotWhole("a JPEG cut short")
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            at += 2
            continue
        (length,) = struct.unpack(">H", m[at + 2 : at + 4])
        at += 2 + length
        if marker != 0xDA:
            continue
        while True:  # entropy-coded data: up to the next marker that is not stuffing or RST
            at = m.find(b"\xff", at)
            if at < 0 or at + 1 >= n:
                raise NotWhole("a JPEG cut short (no end of image)")
            following = m[at + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                at += 1 if following == 0xFF else 2
                continue
            break


def _png(m: mmap.mmap) -> None:
    at, n, first = 8, len(m), True
    while at + 12 <= n:
        length, kind = struct.unpack(">I4s", m[at : at + 8])
        end = at + 12 + length
        if end > n:
            break
        if first and kind != b"IHDR":
            raise NotWhole("a PNG that does not start with its header chunk")
        first = False
        (crc,) = struct.unpack(">I", m[end - 4 : end])
        if zlib.crc32(m[at + 4 : end - 4]) != crc:
            raise NotWhole("a PNG with a damaged chunk")
        if kind == b"IEND":
            return
        at = end
    raise NotWhole("a PNG cut short (no end chunk)")


def _gif(m: mmap.mmap) -> None:
    if m[max(0, len(m) - 4096) :].rstrip(b"\x00")[-1:] != b"\x3b":
        raise NotWhole("a GIF cut short (no trailer)")


def _riff(m: mmap.mmap) -> None:
    (size,) = struct.unpack("<I", m[4:8])
    if size + 8 != len(m) and size + 9 != len(m):  # a pad byte after an odd chunk
        raise NotWhole("a RIFF file (WebP, WAV) whose size does not match its header")


def _iso(m: mmap.mmap, needs: bytes) -> None:
    at, n, seen = 0, len(m), set()
    while at < n:
        if at + 8 > n:
            raise NotWhole("an MP4/MOV/HEIC file cut short")
        size, kind = struct.unpack(">I4s", m[at : at + 8])
        if size == 1:
            if at + 16 > n:
                raise NotWhole("an MP4/MOV/HEIC file cut short")
            (size,) = struct.unpack(">Q", m[at + 8 : at + 16])
        elif size == 0:
            size = n - at
        if size < 8 or at + size > n:
            raise NotWhole("an MP4/MOV/HEIC file cut short or with a broken box")
        seen.add(bytes(kind))
        at += size
    if needs not in seen:
        raise NotWhole(f"an MP4/MOV/HEIC file without its '{needs.decode()}' box")


def _vint(m: mmap.mmap, at: int) -> tuple[int, int, bool]:
    """An EBML variable-size integer at ``at``: (value, length, all ones: unknown)."""
    first = m[at]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or at + length > len(m):
        raise NotWhole("a WebM file with a broken element")
    value = first & (0xFF >> length)
    for b in m[at + 1 : at + length]:
        value = (value << 8) | b
    return value, length, value == (1 << (7 * length)) - 1


def _webm(m: mmap.mmap) -> None:
    size, length, _ = _vint(m, 4)
    at = 4 + length + size  # after the EBML header
    if at + 4 > len(m) or m[at : at + 4] != b"\x18\x53\x80\x67":
        raise NotWhole("a WebM file without its segment")
    size, length, unknown = _vint(m, at + 4)
    if not unknown and at + 4 + length + size != len(m):
        raise NotWhole("a WebM file whose segment size does not match (cut short?)")


def _ogg(m: mmap.mmap) -> None:
    at, n, last_flags = 0, len(m), 0
    while at < n:
        if at + 27 > n or m[at : at + 4] != b"OggS":
            raise NotWhole("an Ogg file with a broken or cut page")
        segments = m[at + 26]
        if at + 27 + segments > n:
            raise NotWhole("an Ogg file cut short")
        last_flags = m[at + 5]
        at += 27 + segments + sum(m[at + 27 : at + 27 + segments])
    if at != n or not last_flags & 0x04:
        raise NotWhole("an Ogg file cut short (no last page)")


def _mp3(m: mmap.mmap) -> None:
    at = 0
    if m[:3] == b"ID3":
        s = m[6:10]
        at = 10 + ((s[0] << 21) | (s[1] << 14) | (s[2] << 7) | s[3])
        if m[5] & 0x10:
            at += 10
        while at < len(m) and m[at] == 0:  # padding after the tag
            at += 1
    if not _mp3_frame(m[at : at + 4]):
        raise NotWhole("an MP3 file without an audio frame")


def _pdf(m: mmap.mmap) -> None:
    if m[max(0, len(m) - 1024) :].find(b"%%EOF") < 0:
        raise NotWhole("a PDF cut short (no end marker)")


def _text(f: BinaryIO) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := f.read(1 << 16):
            if _TEXT_BAD.search(chunk):
                raise NotWhole("text with control characters (not a plain text file)")
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise NotWhole("text that is not UTF-8") from exc


def _handlers(m: mmap.mmap) -> set[bytes]:
    """The track handler types (``vide``, ``soun``...) in an ISO file's ``moov`` box."""
    at, n, found = 0, len(m), set()
    while at + 8 <= n:
        size, kind = struct.unpack(">I4s", m[at : at + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", m[at + 8 : at + 16])
        elif size == 0:
            size = n - at
        if kind == b"moov":
            box = m[at : at + size]
            i = box.find(b"hdlr")
            while i >= 0:
                found.add(bytes(box[i + 12 : i + 16]))
                i = box.find(b"hdlr", i + 4)
        at += max(size, 8)
    return found


def refine(path: Path, ftype: FileType) -> FileType:
    """The type of a whole file, looked at more closely: an MP4 with sound and no
    video track is audio (M4A), whatever its brand says."""
    if ftype is not MP4:
        return ftype
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        handlers = _handlers(m)
    return M4A if b"soun" in handlers and b"vide" not in handlers else ftype


def check_whole(path: Path, ftype: FileType) -> None:
    """Raise ``NotWhole`` unless the file at ``path`` is a whole file of ``ftype``."""
    with path.open("rb") as f:
        if ftype is TEXT:
            _text(f)
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            try:
                _check_mapped(m, ftype)
            except (struct.error, IndexError) as exc:
                raise NotWhole(f"a {ftype.name} file cut short") from exc


def _check_mapped(m: mmap.mmap, ftype: FileType) -> None:
    if ftype is JPEG:
        _jpeg(m)
    elif ftype is PNG:
        _png(m)
    elif ftype is GIF:
        _gif(m)
    elif ftype in (WEBP, WAV):
        _riff(m)
    elif ftype is HEIC:
        _iso(m, b"meta")
    elif ftype in (MP4, MOV, M4A):
        _iso(m, b"moov")
    elif ftype is WEBM:
        _webm(m)
    elif ftype is OGG:
        _ogg(m)
    elif ftype is MP3:
        _mp3(m)
    elif ftype is PDF:
        _pdf(m)


# ---- where the bytes are kept -------------------------------------------------------------


class Incoming:
    """One upload being written: a file in ``incoming/``, hashed as it is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: BinaryIO = path.open("xb")
        self.hash = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.hash.update(data)
        self.bytes += len(data)

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()

    def discard(self) -> None:
        """Close and delete it (a refused upload leaves nothing)."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class EvidenceFiles:
    """Evidence bytes in a local folder, content-addressed by SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming_dir = root / "incoming"

    def prepare(self, now: float | None = None) -> None:
        """Make the folders; delete upload files a dead gateway left long ago."""
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "sha256").mkdir(exist_ok=True)
        cutoff = (now if now is not None else time.time()) - STALE_INCOMING_S
        for left in self.incoming_dir.glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                if left.stat().st_mtime < cutoff:
                    left.unlink()

    def incoming(self) -> Incoming:
        """A new upload file (never the name a client gave)."""
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        return Incoming(self.incoming_dir / f"{uuid.uuid4().hex}.part")

    def path_of(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def keep(self, upload: Incoming) -> tuple[str, str, bool]:
        """Move a finished upload into place: (sha256, storage_uri, new). Not new: the
        same bytes were already kept (the upload file is deleted)."""
        upload.close()
        digest = upload.hash.hexdigest()
        target = self.path_of(digest)
        if target.exists():
            upload.discard()
            return digest, URI_PREFIX + digest, False
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(upload.path, target)
        return digest, URI_PREFIX + digest, True

    def forget(self, sha256: str) -> None:
        """Delete kept bytes (an upload whose metadata could not be recorded)."""
        with contextlib.suppress(FileNotFoundError):
            self.path_of(sha256).unlink()

    def find(self, storage_uri: str) -> Path | None:
        """The file of a ``local:sha256/...`` URI if it is here, else None."""
        if not storage_uri.startswith(URI_PREFIX):
            return None
        digest = storage_uri[len(URI_PREFIX) :]
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            return None
        path = self.path_of(digest)
        return path if path.is_file() else None
