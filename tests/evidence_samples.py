"""Sample evidence files of every accepted type, for the upload tests.

Recorded by Chromium (``tests/fixtures/evidence/``, made once by
``tests/fixtures/evidence/record.py``: canvas ``toBlob`` and ``MediaRecorder``):
JPEG, PNG, WebP, WebM (VP8 + Opus), MP4 (fragmented, as MediaRecorder writes) and
an audio-only MP4 (M4A). Made here, by code that follows each format's
specification: WAV (the ``wave`` module), GIF, PDF, MP3 (ID3v2 tag and silent
MPEG-1 layer III frames), Ogg Opus (OpusHead, OpusTags and silent 20 ms Opus
frames, with Ogg's CRC), HEIC (the HEIF box structure: ftyp, meta, mdat; no image
coder is available offline, so its picture is not decodable), QuickTime (the MP4
with a ``qt  `` brand: the same box structure) and UTF-8 text.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "evidence"


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_CRC = _crc_table()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) & 0xFF) ^ b]
    return crc


def _ogg_page(packets: list[bytes], seq: int, granule: int, flags: int) -> bytes:
    lacing = b""
    for p in packets:
        lacing += b"\xff" * (len(p) // 255) + bytes([len(p) % 255])
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, 0x5EED, seq, 0, len(lacing))
    page = header + lacing + b"".join(packets)
    crc = _ogg_crc(page)
    return page[:22] + struct.pack("<I", crc) + page[26:]


def ogg_opus(frames: int = 25) -> bytes:
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"rtic" + struct.pack("<I", 0)
    silence = b"\xf8\xff\xfe"  # a 20 ms CELT frame of silence
    pages = [_ogg_page([head], 0, 0, 0x02), _ogg_page([tags], 1, 0, 0)]
    pages.append(_ogg_page([silence] * frames, 2, 312 + 960 * frames, 0x04))
    return b"".join(pages)


def wav(seconds: float = 0.2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        n = int(8000 * seconds)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000)))
                for i in range(n)
            )
        )
    return out.getvalue()


def gif() -> bytes:
    """A 1x1 GIF89a (header, screen, palette, image, LZW data, trailer)."""
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x1d\x70\xb8\xff\xff\xff"
        b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


def pdf(text: str = "Statement of what I saw") -> bytes:
    stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def mp3(frames: int = 20) -> bytes:
    """An ID3v2.4 tag, then silent MPEG-1 layer III frames (128 kbit/s, 44.1 kHz)."""
    frame = b"\xff\xfb\x90\x64" + b"\x00" * 413  # 144 * 128000 / 44100 = 417 bytes
    title = b"\x03" + b"rtic sample"
    tit2 = b"TIT2" + struct.pack(">I", len(title)) + b"\x00\x00" + title
    size = len(tit2)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x04\x00\x00" + syncsafe + tit2 + frame * frames


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def heic() -> bytes:
    ftyp = _box(b"ftyp", b"heic" + b"\x00\x00\x00\x00" + b"mif1heic")
    hdlr = _box(b"hdlr", b"\x00" * 4 + b"\x00" * 4 + b"pict" + b"\x00" * 12 + b"\x00")
    pitm = _box(b"pitm", b"\x00" * 4 + b"\x00\x01")
    meta = _box(b"meta", b"\x00" * 4 + hdlr + pitm)
    mdat = _box(b"mdat", b"\x00" * 64)
    return ftyp + meta + mdat


def mov() -> bytes:
    """The recorded MP4 with a QuickTime ``ftyp`` (same box structure)."""
    data = (FIXTURES / "video.mp4").read_bytes()
    (size,) = struct.unpack(">I", data[:4])
    ftyp = _box(b"ftyp", b"qt  " + b"\x00\x00\x02\x00" + b"qt  ")
    return ftyp + data[size:]


def text() -> bytes:
    return "I saw a grey car drive off at about 10 pm. Zoë, 12 Café Street.\n".encode()


def samples() -> dict[str, tuple[bytes, str]]:
    """Every accepted type: file name -> (bytes, the content type the engine must say)."""
    return {
        "photo.jpg": ((FIXTURES / "photo.jpg").read_bytes(), "image/jpeg"),
        "photo.png": ((FIXTURES / "photo.png").read_bytes(), "image/png"),
        "photo.webp": ((FIXTURES / "photo.webp").read_bytes(), "image/webp"),
        "photo.gif": (gif(), "image/gif"),
        "photo.heic": (heic(), "image/heic"),
        "video.mp4": ((FIXTURES / "video.mp4").read_bytes(), "video/mp4"),
        "video.mov": (mov(), "video/quicktime"),
        "video.webm": ((FIXTURES / "video.webm").read_bytes(), "video/webm"),
        "audio.mp3": (mp3(), "audio/mpeg"),
        "audio.wav": (wav(), "audio/wav"),
        "audio.ogg": (ogg_opus(), "audio/ogg"),
        "audio.m4a": ((FIXTURES / "audio.m4a").read_bytes(), "audio/mp4"),
        "statement.pdf": (pdf(), "application/pdf"),
        "notes.txt": (text(), "text/plain; charset=utf-8"),
    }
