"""The officer's phone page and what makes it installable and usable with no network: the
page, its service worker from the site root, the manifest and icons (no sockets, no browser;
the browser tests are tests/browser/test_officer_live.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import orjson
import pytest

import dashboards
from tests.unit.push.test_web import TestClient, make_app

SW = (dashboards.STATIC_DIR / "officer-sw.js").read_text()


@pytest.fixture
def http() -> Iterator[TestClient]:
    _, client = make_app()
    with client:
        yield client


def test_the_page_is_public_and_loads_its_files_from_this_origin(http: TestClient) -> None:
    page = http.get("/officer")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    html = page.text
    assert '<h2 id="alerts-title">My alerts' in html and "My jobs" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # every script from a file
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=|javascript:", html, re.IGNORECASE)
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert ref.startswith("/static/"), ref
        assert http.get(ref).status_code == 200, ref


def test_the_scripts_fetch_nothing_from_another_origin_and_run_nothing_made_up() -> None:
    for name in ("officer.js", "officer-sw.js"):
        js = (dashboards.STATIC_DIR / name).read_text()
        assert not re.search(r"https?://|\beval\(|new Function|\.innerHTML\s*=", js), name


def test_the_service_worker_is_served_from_the_root_for_the_officer_scope(
    http: TestClient,
) -> None:
    sw = http.get("/officer-sw.js")
    assert sw.status_code == 200
    assert sw.headers["content-type"].startswith("text/javascript")
    assert sw.headers["service-worker-allowed"] == "/officer"
    assert sw.headers["cache-control"] == "no-cache"  # a new version is picked up at once
    assert "default-src 'self'" in sw.headers["content-security-policy"]


def test_every_file_the_service_worker_keeps_is_served(http: TestClient) -> None:
    listed = re.search(r"const FILES = \[(.*?)\];", SW, re.S)
    assert listed is not None
    files = [
        "/officer" if f == "PAGE" else f.strip('"') for f in re.findall(r'PAGE|"[^"]+"', listed[1])
    ]
    assert "/officer" in files and "/static/officer.js" in files and "/static/officer.css" in files
    for path in files:
        answer = http.get(path)
        assert answer.status_code == 200, path


def test_the_manifest_makes_the_page_installable(http: TestClient) -> None:
    answer = http.get("/static/officer.webmanifest")
    assert answer.headers["content-type"] == "application/manifest+json"
    manifest = orjson.loads(answer.content)
    assert manifest["start_url"] == "/officer" and manifest["scope"] == "/officer"
    assert manifest["display"] == "standalone"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        served = http.get(icon["src"])
        assert served.status_code == 200 and served.headers["content-type"] == icon["type"]
        if icon["type"] == "image/png":
            assert served.content[:8] == b"\x89PNG\r\n\x1a\n"
            width = int.from_bytes(served.content[16:20], "big")
            assert f"{width}x{width}" == icon["sizes"]
