"""Public fairness endpoints: the signing key set, the sandbox randomness beacon, and the replay of a draw."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File, Template
from sqlalchemy.ext.asyncio import AsyncSession

from web.certificates.animation import FORMATS, animation_file, completed_certificate, reveal_page_data
from web.certificates.beacon import SandboxBeacon
from web.certificates.keys import published_key_set
from web.htmx import render
from web.settings import Settings

KEY_SET_CACHE = "public, max-age=300"
# Public documents meant for caches: no session lookup, and no CSRF cookie (nothing here is a form).
PUBLIC_DOCUMENT = {"skip_session": True, "exclude_from_csrf": True}
# One image is made at a time: the work is CPU-bound, and each certificate's image is made only once.
_rendering = asyncio.Semaphore(1)


@get("/.well-known/cleack-signing-key", name="fairness:key-set", opt=PUBLIC_DOCUMENT)
async def signing_key_set(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Every key that signed or signs certificates, for verifiers anywhere (browsers on other sites included)."""
    return Response(
        published_key_set(request.app.state.settings),
        media_type="application/json",
        headers={"cache-control": KEY_SET_CACHE, "access-control-allow-origin": "*"},
    )


def _beacon_answer(body: dict[str, Any], status_code: int = 200, cache: str = "no-store") -> Response[Any]:
    return Response(
        body,
        status_code=status_code,
        media_type="application/json",
        headers={"cache-control": cache, "access-control-allow-origin": "*"},
    )


class SandboxBeaconController(Controller):
    """drand's HTTP API for the sandbox beacon, outside production only."""

    path = "/sandbox/beacon/{chain_hash:str}"
    opt = PUBLIC_DOCUMENT

    @staticmethod
    def _beacon(request: Request[Any, Any, Any], chain_hash: str) -> SandboxBeacon:
        settings: Settings = request.app.state.settings
        if not settings.sandbox_enabled:
            raise NotFoundException()
        beacon = SandboxBeacon(settings)
        if chain_hash != beacon.chain_info.chain_hash:
            raise NotFoundException()
        return beacon

    @get("/info", name="sandbox-beacon:info")
    async def info(self, request: Request[Any, Any, Any], chain_hash: FromPath[str]) -> Response[Any]:
        beacon = self._beacon(request, chain_hash)
        return _beacon_answer(beacon.chain_info.as_json(), cache="public, max-age=300")

    @get("/public/{which:str}", name="sandbox-beacon:round")
    async def public_round(
        self, request: Request[Any, Any, Any], chain_hash: FromPath[str], which: FromPath[str]
    ) -> Any:
        """A round by number, or `latest`; a round still to come is 404, as drand answers it."""
        beacon = self._beacon(request, chain_hash)
        now = datetime.datetime.now(datetime.UTC)
        if which == "latest":
            found = beacon.published(beacon.chain_info.round_at(now), now)
            cache = "no-store"
        elif which.isascii() and which.isdigit() and len(which) <= 19:
            found = beacon.published(int(which), now)
            cache = "public, max-age=31536000, immutable"
        else:
            found = None
            cache = "no-store"
        if found is None:
            return _beacon_answer({"error": "no such round yet"}, 404)
        return _beacon_answer(found.as_json(), cache=cache)


class RevealController(Controller):
    """The replay of a completed draw from its certificate: a page, and an image to post."""

    path = "/certificates/{certificate_hash:str}"

    @get("/reveal", name="certificates:reveal")
    async def page(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        certificate_hash: FromPath[str],
    ) -> Template:
        certificate = await completed_certificate(db_session, certificate_hash)
        if certificate is None:
            raise NotFoundException()
        return render(request, "reveal/page.html", reveal_page_data(certificate))

    @get(["/reveal.webp", "/reveal.gif"], name="certificates:reveal-image", opt=PUBLIC_DOCUMENT)
    async def image(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        certificate_hash: FromPath[str],
    ) -> File:
        image_format = request.url.path.rsplit(".", 1)[-1]
        certificate = await completed_certificate(db_session, certificate_hash)
        if certificate is None:
            raise NotFoundException()
        async with _rendering:
            path = await asyncio.to_thread(animation_file, certificate, image_format)
        return File(
            path=path,
            media_type=FORMATS[image_format],
            filename=f"cleack-draw-{certificate_hash[:12]}.{image_format}",
            content_disposition_type="inline",
            headers={"cache-control": "public, max-age=86400, immutable"},
        )
