"""The force area's ``GeoIndex``, read once per test process.

``GeoIndex.load`` takes a second or more (more on a loaded machine): the gateway does
it in ``open_stores`` for its area codes, so every test that starts a gateway in
process paid it. Those tests hand the gateway this one instead
(``use_force_area_codes``): the same boundaries from the same ``data/``, so the
gateway's answers are the same; the gateway's own loading is what the end-to-end and
browser tests' real gateway (``rtic gateway``) does at every start.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from enrichers.geo import GeoIndex
from rtic.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from push.gateway import Gateway


@cache
def force_geo() -> GeoIndex:
    return GeoIndex.load(PROJECT_ROOT / "data")


def use_force_area_codes(gateway: Gateway) -> Gateway:
    """Give ``gateway`` the area codes it would load at start (so ``open_stores`` does not);
    a gateway reading another ``data_dir`` is left to load its own."""
    if gateway.settings.data_dir.resolve() == (PROJECT_ROOT / "data").resolve():
        gateway.dispatch.use_area_codes(force_geo().codes_at)
    return gateway
