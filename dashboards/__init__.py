"""Dashboards: the web pages RTIC analysts use, served by the push gateway.

Plain HTML, CSS and JavaScript in ``static/``, with no build step and nothing
fetched from the internet at run time (no CDN, no map tiles, no web fonts):
the map is drawn as SVG from the boundaries the gateway serves at
``/api/boundaries``. The gateway serves ``STATIC_DIR`` at ``/static/`` (the page
itself also at ``/``), with the content types ``content_type`` gives.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "rtic.html"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}


def content_type(name: str) -> str:
    """The content type to serve a static file with (by its suffix)."""
    suffix = Path(name).suffix
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
