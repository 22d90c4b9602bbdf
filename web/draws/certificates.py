"""Public certificate pages: anyone, without an account, sees a draw's certificate re-checked by the server."""

from __future__ import annotations

import re
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from web.draws.services import ELIGIBLE_IN_CANONICAL_ORDER, EXCLUSION_LABELS, DrawService, stream_rows
from web.fairness.canonical import canonical_json
from web.fairness.entries import Entry
from web.fairness.keys import published_key_set
from web.fairness.signing import parse_key_set
from web.fairness.verify import verify_certificate
from web.htmx import render

HEX64 = re.compile(r"[0-9a-f]{64}")
# Above this many eligible entries the page leaves the Merkle root to `cleack verify` with the entries CSV:
# a public page must not let anyone make the server hash millions of rows on demand.
ENTRIES_CHECK_MAX = 100_000


class CertificatesController(Controller):
    path = "/certificates"

    @get("/{name:str}", name="certificates:show")
    async def certificate(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], name: FromPath[str]
    ) -> Response[Any]:
        """`/certificates/<hash>` is the page; `/certificates/<hash>.json` the certificate's canonical JSON."""
        as_json = name.endswith(".json")
        digest = name.removesuffix(".json")
        if not HEX64.fullmatch(digest):
            raise NotFoundException()
        draws = DrawService(db_session)
        draw = await draws.by_certificate(digest)
        if draw is None or draw.certificate is None:
            raise NotFoundException()
        cert = draw.certificate
        if as_json:
            return Response(
                content=canonical_json(cert),
                media_type="application/json",
                headers={
                    "content-disposition": f'inline; filename="cleack-certificate-{digest}.json"',
                    "cache-control": "public, max-age=300",
                },
            )
        previous = None
        if cert.get("previous_certificate_hash"):
            previous_draw = await draws.by_certificate(str(cert["previous_certificate_hash"]))
            previous = previous_draw.certificate if previous_draw is not None else None
        entries = None
        if draw.eligible_count <= ENTRIES_CHECK_MAX:
            rows = stream_rows(request.app.state.read_pool, ELIGIBLE_IN_CANONICAL_ORDER, draw.id)
            entries = [
                Entry(row["platform"], row["platform_user_id"], row["username"], row["comment_id"] or "")
                async for row in rows
            ]
        keys = parse_key_set(published_key_set(request.app.state.settings))
        report = verify_certificate(cert, keys=keys, entries=entries, previous=previous)
        return render(
            request,
            "certificates/show.html",
            {
                "cert": cert,
                "digest": digest,
                "report": report,
                "entries_checked": entries is not None,
                "previous_found": previous is not None,
                "labels": EXCLUSION_LABELS,
            },
        )
