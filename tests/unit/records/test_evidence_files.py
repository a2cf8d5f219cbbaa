"""Evidence files: types told from the bytes, whole-file checks, content-addressed storage."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from records.evidence_files import (
    HEAD_BYTES,
    M4A,
    MP4,
    TYPES,
    EvidenceFiles,
    NotWhole,
    check_whole,
    refine,
    sniff,
)
from tests.evidence_samples import samples


def _type_of(data: bytes, path: Path) -> str:
    head = data[:HEAD_BYTES]
    ftype = sniff(head, complete=len(data) < HEAD_BYTES)
    assert ftype is not None
    path.write_bytes(data)
    check_whole(path, ftype)
    return refine(path, ftype).content_type


@pytest.mark.parametrize("name", sorted(samples()))
def test_every_sample_is_told_by_its_bytes_and_is_whole(name: str, tmp_path: Path) -> None:
    data, content_type = samples()[name]
    assert _type_of(data, tmp_path / "x") == content_type


def test_every_accepted_type_has_a_sample() -> None:
    assert {t.content_type for t in TYPES} == {ct for _, ct in samples().values()}


@pytest.mark.parametrize(
    "data",
    [
        b"MZ\x90\x00" + b"\x00" * 60,  # a Windows executable
        b"PK\x03\x04" + b"\x00" * 60,  # a zip (and every Office document)
        b"\x7fELF" + b"\x00" * 60,
        b"<html><script>alert(1)</script>\x00",  # a NUL: not text
        b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska" + b"\x00" * 40,
        b"\x00\x00\x00\x1cftypavif" + b"\x00" * 52,  # AVIF: not accepted
        b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x1e\x80theora" + b"\x00" * 30,  # Ogg video
        "latin-1 caf\xe9 text".encode("latin-1"),
    ],
)
def test_other_types_are_not_accepted(data: bytes) -> None:
    assert sniff(data[:HEAD_BYTES], complete=len(data) < HEAD_BYTES) is None


def test_the_name_and_declared_type_play_no_part() -> None:
    # sniff sees only bytes; a PNG named .txt is a PNG, text named .jpg is text
    png, _ = samples()["photo.png"]
    assert sniff(png[:HEAD_BYTES]) is not None and sniff(png[:HEAD_BYTES]).name == "PNG"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name",
    [
        "photo.jpg",
        "photo.png",
        "photo.webp",
        "photo.gif",
        "video.mp4",
        "video.mov",
        "video.webm",
        "audio.wav",
        "audio.ogg",
        "audio.m4a",
        "statement.pdf",
    ],
)
def test_a_file_cut_short_is_not_whole(name: str, tmp_path: Path) -> None:
    data, _ = samples()[name]
    cut = data[: len(data) * 2 // 3]
    ftype = sniff(cut[:HEAD_BYTES])
    assert ftype is not None
    (tmp_path / "cut").write_bytes(cut)
    with pytest.raises(NotWhole):
        check_whole(tmp_path / "cut", ftype)


def test_a_damaged_png_chunk_is_refused(tmp_path: Path) -> None:
    data = bytearray(samples()["photo.png"][0])
    data[40] ^= 0xFF  # inside IHDR/IDAT: the CRC no longer matches
    (tmp_path / "p").write_bytes(bytes(data))
    with pytest.raises(NotWhole):
        check_whole(tmp_path / "p", sniff(bytes(data[:HEAD_BYTES])))  # type: ignore[arg-type]


def test_text_with_a_nul_later_on_is_not_text(tmp_path: Path) -> None:
    data = b"a" * 5000 + b"\x00" + b"b" * 10
    ftype = sniff(data[:HEAD_BYTES])
    assert ftype is not None and ftype.family == "text"
    (tmp_path / "t").write_bytes(data)
    with pytest.raises(NotWhole):
        check_whole(tmp_path / "t", ftype)


def test_an_mp4_with_sound_only_is_audio(tmp_path: Path) -> None:
    data, _ = samples()["audio.m4a"]
    assert sniff(data[:HEAD_BYTES]) is MP4  # its brand says isom
    (tmp_path / "a").write_bytes(data)
    assert refine(tmp_path / "a", MP4) is M4A
    video, _ = samples()["video.mp4"]
    (tmp_path / "v").write_bytes(video)
    assert refine(tmp_path / "v", MP4) is MP4


def test_storage_is_content_addressed_and_refused_uploads_leave_nothing(tmp_path: Path) -> None:
    files = EvidenceFiles(tmp_path / "evidence")
    files.prepare()
    data = samples()["photo.png"][0]
    first = files.incoming()
    first.write(data)
    sha, uri, new = files.keep(first)
    assert sha == hashlib.sha256(data).hexdigest() and new
    assert uri == f"local:sha256/{sha}"
    assert files.find(uri) == tmp_path / "evidence" / "sha256" / sha[:2] / sha
    assert files.find(uri).read_bytes() == data  # type: ignore[union-attr]
    again = files.incoming()
    again.write(data)
    assert files.keep(again) == (sha, uri, False)
    refused = files.incoming()
    refused.write(b"half a file")
    refused.discard()
    assert list((tmp_path / "evidence" / "incoming").iterdir()) == []
    assert files.find("local:sha256/../../etc/passwd") is None
    assert files.find("s3://bucket/x") is None
    files.forget(sha)
    assert files.find(uri) is None


def test_stale_incoming_files_are_cleared_at_start(tmp_path: Path) -> None:
    files = EvidenceFiles(tmp_path)
    files.prepare()
    left = files.incoming()
    left.write(b"x")
    left.close()
    files.prepare()  # fresh: another gateway may be writing it
    assert left.path.exists()
    files.prepare(now=left.path.stat().st_mtime + 2 * 24 * 3600)
    assert not left.path.exists()
