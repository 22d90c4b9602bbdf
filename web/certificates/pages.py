"""Public certificate pages: the chain of certificates, each re-checked by the server, and inclusion proofs."""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from web.accounts.controllers import client_of
from web.certificates.keys import published_key_set
from web.draws.models import Draw
from web.draws.rules import CANONICAL_ORDER
from web.draws.selection import ELIGIBLE_LEAVES
from web.draws.services import (
    ELIGIBLE_IN_CANONICAL_ORDER,
    EXCLUSION_LABELS,
    DrawService,
    certified_newest_first,
    stream_rows,
)
from web.fairness.canonical import canonical_json
from web.fairness.entries import Entry
from web.fairness.merkle import InclusionProofBuilder
from web.fairness.signing import parse_key_set
from web.fairness.verify import VerificationReport, inclusion_proof_document, verify_certificate
from web.forms import clean_page
from web.htmx import render
from web.pagination import Page
from web.ratelimit import Limit, RateLimited, hit

HEX64 = re.compile(r"[0-9a-f]{64}")
# Above this many eligible entries the page leaves the Merkle root to `cleack verify` with the entries CSV:
# a public page must not let anyone make the server hash millions of rows on demand.
ENTRIES_CHECK_MAX = 100_000
CHAIN_PER_PAGE = 25
# A proof streams every eligible leaf of the draw once: cheap for one visitor, not for a flood of them.
PROOFS_PER_ADDRESS = Limit("inclusion-proof-address", 30, 10 * 60)
# One person may have several eligible entries (when a draw allows more than one entry per person).
PROOFS_MAX = 10
USERNAME_MAX = 128
# A certificate and its entries never change: a re-check stands for a few minutes, so that a page shared widely
# does not re-hash its entries on every view.
RECHECK_SECONDS = 300
RECHECKS_KEPT = 256
_rechecks: OrderedDict[str, tuple[float, VerificationReport, bool]] = OrderedDict()

ENTRIES_OF_USERNAME = f"""
    SELECT platform, platform_user_id, username, comment_id
    FROM draw_participants
    WHERE draw_id = $1 AND is_eligible AND platform = $2 AND lower(username) = lower($3)
    ORDER BY {CANONICAL_ORDER} LIMIT {PROOFS_MAX}
"""  # noqa: S608 - constants only
# The leaf index: how many eligible entries come before this one in canonical order.
ENTRIES_BEFORE = """
    SELECT count(*) FROM draw_participants
    WHERE draw_id = $1 AND is_eligible
      AND (platform COLLATE "C", platform_user_id COLLATE "C", comment_id COLLATE "C")
        < ($2 COLLATE "C", $3 COLLATE "C", $4 COLLATE "C")
"""


@dataclass(frozen=True)
class ChainLink:
    certificate_hash: str
    previous_certificate_hash: str | None
    title: str
    completed_at: Any
    participants: int
    eligible: int
    winners: int


async def chain_page(db: AsyncSession, page: int, per_page: int = CHAIN_PER_PAGE) -> Page:
    """Issued certificates, newest first: the order in which the engine links each one to the one before."""
    total = await db.scalar(sa.select(sa.func.count()).select_from(Draw).where(Draw.certificate_hash.is_not(None)))
    rows = await db.execute(
        certified_newest_first(
            Draw.certificate_hash,
            Draw.certificate["previous_certificate_hash"].as_string(),
            Draw.title,
            Draw.completed_at,
            Draw.participants_count,
            Draw.eligible_count,
            sa.func.jsonb_array_length(Draw.certificate["winners"]),
        )
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return Page([ChainLink(*row) for row in rows], page, per_page, int(total or 0))


async def chain_certificates(db: AsyncSession, page: int, per_page: int = CHAIN_PER_PAGE) -> list[dict[str, Any]]:
    """One page of the chain as whole certificates, oldest first: the order `cleack verify --chain` checks."""
    certificates = await db.scalars(
        certified_newest_first(Draw.certificate).limit(per_page).offset((page - 1) * per_page)
    )
    return list(reversed([certificate for certificate in certificates if certificate is not None]))


async def inclusion_proofs(pool: Any, draw: Draw, platform: str, username: str) -> list[dict[str, Any]]:
    """The audit path of each eligible entry of `username` on `platform` (none: not among the eligible entries)."""
    async with pool.acquire() as connection:
        rows = await connection.fetch(ENTRIES_OF_USERNAME, draw.id, platform, username)
        found = []
        for row in rows:
            entry = Entry(row["platform"], row["platform_user_id"], row["username"], row["comment_id"] or "")
            index = await connection.fetchval(ENTRIES_BEFORE, draw.id, *entry.fields[:2], entry.entry_id)
            found.append((entry, int(index)))
    if not found:
        return []
    builders = [InclusionProofBuilder(index) for _, index in found]
    batch: list[bytes] = []
    async for row in stream_rows(pool, ELIGIBLE_LEAVES, draw.id):
        batch.append(row[0])
        if len(batch) == 4096:
            for builder in builders:
                builder.add_leaf_hashes(batch)
            batch = []
    for builder in builders:
        builder.add_leaf_hashes(batch)
    assert draw.certificate_hash is not None
    documents = []
    for (entry, index), builder in zip(found, builders, strict=True):
        if builder.leaf_hash != entry.leaf_hash:
            raise RuntimeError(f"draw {draw.id}: the stored leaf {index} is not the entry's")
        documents.append(
            inclusion_proof_document(draw.certificate_hash, entry, index, builder.tree_size, builder.proof())
        )
    return documents


def _platforms(certificate: dict[str, Any]) -> list[str]:
    return [str(platform) for platform in certificate.get("draw", {}).get("platforms", [])]


class CertificatesController(Controller):
    path = "/certificates"

    @get("/", name="certificates:index")
    async def chain(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        """The public chain: every certificate this server issued, newest first."""
        links = await chain_page(db_session, clean_page(request.query_params.get("page")))
        return render(request, "certificates/chain.html", {"links": links}, fragment="certificates/_chain.html")

    @get("/chain.json", name="certificates:chain-json")
    async def chain_json(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        """A page of the chain, oldest first, as one JSON list for `cleack verify --chain`."""
        page = clean_page(request.query_params.get("page"))
        certificates = await chain_certificates(db_session, page)
        return Response(
            content=b"[" + b",".join(canonical_json(cert) for cert in certificates) + b"]",
            media_type="application/json",
            headers={
                "content-disposition": f'inline; filename="cleack-chain-page-{page}.json"',
                "cache-control": "public, max-age=60",
            },
        )

    @get("/{name:str}", name="certificates:show")
    async def certificate(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], name: FromPath[str]
    ) -> Response[Any]:
        """`/certificates/<hash>` is the page; `/certificates/<hash>.json` the certificate's canonical JSON."""
        as_json = name.endswith(".json")
        digest = name.removesuffix(".json")
        draws = DrawService(db_session)
        draw = await _issued(draws, digest)
        cert = draw.certificate
        assert cert is not None
        if as_json:
            return Response(
                content=canonical_json(cert),
                media_type="application/json",
                headers={
                    "content-disposition": f'inline; filename="cleack-certificate-{digest}.json"',
                    "cache-control": "public, max-age=300",
                },
            )
        report, entries_checked = await _recheck(request, draws, draw)
        return render(
            request,
            "certificates/show.html",
            {
                "cert": cert,
                "digest": digest,
                "report": report,
                "entries_checked": entries_checked,
                "labels": EXCLUSION_LABELS,
                "platforms": _platforms(cert),
                "lookup": {"platform": (_platforms(cert) or [""])[0], "username": ""},
            },
        )

    @get(["/{name:str}/proof", "/{name:str}/proof.json"], name="certificates:proof")
    async def proof(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], name: FromPath[str]
    ) -> Response[Any]:
        """A participant's Merkle inclusion proof, found by platform and username; the list itself stays private."""
        as_json = request.url.path.endswith(".json")
        draw = await _issued(DrawService(db_session), name)
        cert = draw.certificate
        assert cert is not None
        platforms = _platforms(cert)
        platform = (request.query_params.get("platform") or "").strip()
        username = (request.query_params.get("username") or "").strip().removeprefix("@")
        errors: dict[str, str] = {}
        if platform not in platforms:
            errors["platform"] = "Choose one of the draw's platforms."
        if not username:
            errors["username"] = "Enter the username you took part with."
        elif len(username) > USERNAME_MAX or not username.isprintable():
            errors["username"] = f"A username has at most {USERNAME_MAX} visible characters."
        if not errors:
            try:
                await hit(db_session, PROOFS_PER_ADDRESS, client_of(request).ip or "unknown")
                await db_session.commit()
            except RateLimited as limited:
                await db_session.commit()
                errors["username"] = limited.message
                if as_json:
                    return Response({"error": limited.message}, status_code=429, headers=_retry(limited))
                return _proof_answer(request, cert, name, platform, username, errors, None, 429, _retry(limited))
        if errors:
            if as_json:
                return Response({"error": "invalid lookup", "fields": errors}, status_code=400)
            return _proof_answer(request, cert, name, platform, username, errors, None, 400)
        proofs = await inclusion_proofs(request.app.state.read_pool, draw, platform, username)
        if as_json:
            chosen = request.query_params.get("entry") or "0"
            position = int(chosen) if chosen.isascii() and chosen.isdigit() and len(chosen) <= 2 else len(proofs)
            if position >= len(proofs):
                return Response({"error": "not among the eligible entries"}, status_code=404)
            return Response(
                content=canonical_json(proofs[position]),
                media_type="application/json",
                headers={"content-disposition": f'attachment; filename="cleack-proof-{name[:16]}-{username}.json"'},
            )
        return _proof_answer(request, cert, name, platform, username, {}, proofs, 200)


async def _recheck(request: Request[Any, Any, Any], draws: DrawService, draw: Draw) -> tuple[VerificationReport, bool]:
    """The certificate verified against the published keys, its previous link and (when not too many) its entries."""
    assert draw.certificate_hash is not None and draw.certificate is not None
    kept = _rechecks.get(draw.certificate_hash)
    if kept is not None and time.monotonic() - kept[0] < RECHECK_SECONDS:
        return kept[1], kept[2]
    cert = draw.certificate
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
    _rechecks[draw.certificate_hash] = (time.monotonic(), report, entries is not None)
    _rechecks.move_to_end(draw.certificate_hash)
    while len(_rechecks) > RECHECKS_KEPT:
        _rechecks.popitem(last=False)
    return report, entries is not None


def _retry(limited: RateLimited) -> dict[str, str]:
    return {"retry-after": str(limited.retry_after)}


async def _issued(draws: DrawService, digest: str) -> Draw:
    if not HEX64.fullmatch(digest):
        raise NotFoundException()
    draw = await draws.by_certificate(digest)
    if draw is None or draw.certificate is None:
        raise NotFoundException()
    return draw


def _proof_answer(
    request: Request[Any, Any, Any],
    cert: dict[str, Any],
    digest: str,
    platform: str,
    username: str,
    errors: dict[str, str],
    proofs: list[dict[str, Any]] | None,
    status_code: int,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    context = {
        "cert": cert,
        "digest": digest,
        "platforms": _platforms(cert),
        "lookup": {"platform": platform, "username": username},
        "errors": errors,
        "proofs": proofs,
        "proof_query": [("platform", platform), ("username", username)],
    }
    response = render(
        request, "certificates/proof.html", context, fragment="certificates/_proof.html", status_code=status_code
    )
    response.headers.update(headers or {})
    return response
