"""The desk's server pieces at the web edge: the optional map tiles (setting, config, the
CSP both ways)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from push.web import tile_origin
from rtic.settings import Settings
from tests.unit.push.test_web import _directives, make_app

TILES = "https://tiles.example.org:8443/wm/{z}/{x}/{y}.png"


def test_without_tiles_the_policy_allows_no_image_origin_and_config_says_none() -> None:
    _, http = make_app()
    with http:
        answer = http.get("/api/config")
        assert answer.json()["map_tile_url"] is None
        for path in ("/", "/api/config", "/static/rtic.js"):
            csp = _directives(http.get(path).headers["content-security-policy"])
            assert csp["img-src"] == ["'self'", "data:"], path


def test_with_tiles_images_come_from_that_origin_only_and_the_page_is_told() -> None:
    _, http = make_app(map_tile_url=TILES)
    with http:
        assert http.get("/api/config").json()["map_tile_url"] == TILES
        for path in ("/", "/api/config", "/officer"):
            csp = _directives(http.get(path).headers["content-security-policy"])
            assert csp["img-src"] == ["'self'", "data:", "https://tiles.example.org:8443"]
            assert csp["default-src"] == ["'self'"] and "script-src" not in csp
            assert csp["connect-src"][0] == "'self'"
            assert not any("tiles.example.org" in v for v in csp["connect-src"])


def test_a_tile_setting_must_be_an_https_template() -> None:
    assert Settings(map_tile_url=TILES).map_tile_url == TILES
    assert Settings().map_tile_url is None
    for bad in (
        "http://tiles.example.org/{z}/{x}/{y}.png",  # not https
        "https://tiles.example.org/tile.png",  # no {z}/{x}/{y}
        "https://tiles.example.org 'unsafe-inline'/{z}/{x}/{y}",  # would widen the CSP
        "https://a.org;script-src */{z}/{x}/{y}",
        "javascript:alert(1)//{z}{x}{y}",
    ):
        with pytest.raises(ValidationError):
            Settings(map_tile_url=bad)


def test_the_origin_is_taken_from_the_template_alone() -> None:
    assert tile_origin("https://a.tile.example/{z}/{x}/{y}.png") == "https://a.tile.example"
    assert tile_origin("https://evil.example;x/{z}/{x}/{y}") is None
    assert tile_origin(None) is None and tile_origin("") is None
