"""Dashboards: the web pages RTIC analysts use, served by the push gateway.

Plain HTML, CSS and JavaScript in ``static/``, with no build step and nothing
fetched from the internet at run time (no CDN, no map tiles, no web fonts):
the map is drawn as SVG from the boundaries the gateway serves at
``/api/boundaries``. The gateway calls ``static_file`` to serve them.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "rtic.html"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def static_file(name: str) -> tuple[bytes, str] | None:
    """The content and content type of a file in ``static/``; ``None`` if missing or unsafe."""
    if not _SAFE_NAME.match(name) or ".." in name:
        return None
    path = STATIC_DIR / name
    if not path.is_file():
        return None
    content_type = (
        _TYPES.get(path.suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    )
    return path.read_bytes(), content_type
