"""Public certificate pages: the chain of certificates, each re-checked by the server, and inclusion proofs."""

from __future__ import annotations

import base64
import datetime
import re
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from web.accounts.controllers import client_of
from web.certificates.keys import published_key_set
from web.certificates.log import runs_of
from web.draws.models import Draw
from web.draws.rules import CANONICAL_ORDER
from web.draws.selection import ELIGIBLE_LEAVES, collected_leaves
from web.draws.services import (
    ELIGIBLE_IN_CANONICAL_ORDER,
    ENTRIES_IN_CANONICAL_ORDER,
    PUBLIC_EXCLUSION_LABELS,
    DrawService,
    certified_newest_first,
    stream_rows,
)
from web.fairness.canonical import canonical_json
from web.fairness.certificate_v2 import ALGORITHM_V2
from web.fairness.entries import ELIGIBLE, Entry, collected_leaf, derive_salt, leaf_v2
from web.fairness.entries_csv import EntryRow
from web.fairness.merkle import InclusionProofBuilder
from web.fairness.proofs import inclusion_proof_document, proof_document_v2
from web.fairness.sampling import ALGORITHM
from web.fairness.signing import parse_key_set
from web.fairness.timestamps import rfc3339
from web.fairness.verify import VerificationReport, verify_certificate
from web.forms import clean_page
from web.htmx import render
from web.pagination import Page
from web.ratelimit import Limit, RateLimited, hit

HEX64 = re.compile(r"[0-9a-f]{64}")
# Above this many collected entries the page leaves the Merkle roots to `cleack verify` with the entries CSV:
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
_platforms_of: dict[str, list[str]] = {}

# A lookup matches the handle exactly, as the platform shows it (with or without the leading @).
ENTRIES_OF_USERNAME = f"""
    SELECT platform, platform_user_id, username, comment_id, is_eligible, exclusion_reason
    FROM draw_participants
    WHERE draw_id = $1 AND platform = $2 AND username = $3
    ORDER BY {CANONICAL_ORDER} LIMIT {PROOFS_MAX}
"""  # noqa: S608 - constants only
# The leaf index: how many entries of the same tree come before this one in canonical order.
ENTRIES_BEFORE = """
    SELECT count(*) FILTER (WHERE is_eligible), count(*) FROM draw_participants
    WHERE draw_id = $1
      AND (platform COLLATE "C", platform_user_id COLLATE "C", comment_id COLLATE "C")
        < ($2 COLLATE "C", $3 COLLATE "C", $4 COLLATE "C")
"""
ENTRY_PLATFORMS = """
    WITH RECURSIVE platforms AS (
        (SELECT platform FROM draw_participants WHERE draw_id = $1 ORDER BY platform LIMIT 1)
        UNION ALL
        SELECT (SELECT platform FROM draw_participants WHERE draw_id = $1 AND platform > p.platform
                ORDER BY platform LIMIT 1)
        FROM platforms p WHERE p.platform IS NOT NULL
    )
    SELECT platform FROM platforms WHERE platform IS NOT NULL
"""
COLLECTED_LEAVES = collected_leaves()


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


@dataclass(frozen=True)
class FoundEntry:
    entry: Entry
    verdict: str
    eligible_index: int
    collected_index: int


async def _found_entries(connection: Any, draw: Draw, platform: str, username: str) -> list[FoundEntry]:
    found = []
    for row in await connection.fetch(ENTRIES_OF_USERNAME, draw.id, platform, username):
        entry = Entry(row["platform"], row["platform_user_id"], row["username"], row["comment_id"] or "")
        before = await connection.fetchrow(ENTRIES_BEFORE, draw.id, *entry.fields[:2], entry.entry_id)
        verdict = ELIGIBLE if row["is_eligible"] else str(row["exclusion_reason"])
        found.append(FoundEntry(entry, verdict, int(before[0]), int(before[1])))
    return found


async def _audit_paths(pool: Any, query: str, draw_id: uuid.UUID, column: int, indices: list[int]) -> list[Any]:
    """One pass over the tree's leaves, in canonical order, for every requested leaf index."""
    builders = [InclusionProofBuilder(index) for index in indices]
    batch: list[bytes] = []
    async for row in stream_rows(pool, query, draw_id):
        batch.append(row[column])
        if len(batch) == 4096:
            for builder in builders:
                builder.add_leaf_hashes(batch)
            batch = []
    for builder in builders:
        builder.add_leaf_hashes(batch)
    return builders


async def entry_proofs(pool: Any, draw: Draw, platform: str, username: str) -> list[dict[str, Any]]:
    """The proof of each entry of `username` on `platform`: for a v2 certificate an inclusion proof among the
    eligible entries, or, for an excluded entry, the proof of its verdict among every collected entry; for a v1
    certificate, inclusion proofs of the eligible entries only."""
    async with pool.acquire() as connection:
        found = await _found_entries(connection, draw, platform, username)
    assert draw.certificate_hash is not None and draw.certificate is not None
    if draw.certificate.get("algorithm") == ALGORITHM:
        return await _v1_proofs(pool, draw, [item for item in found if item.verdict == ELIGIBLE])
    eligible = [item for item in found if item.verdict == ELIGIBLE]
    excluded = [item for item in found if item.verdict != ELIGIBLE]
    documents = []
    if eligible:
        builders = await _audit_paths(pool, ELIGIBLE_LEAVES, draw.id, 0, [item.eligible_index for item in eligible])
        documents += _v2_documents(draw, eligible, builders, "eligible")
    if excluded:
        indices = [item.collected_index for item in excluded]
        builders = await _audit_paths(pool, COLLECTED_LEAVES, draw.id, 0, indices)
        documents += _v2_documents(draw, excluded, builders, "collected")
    return documents


def _v2_documents(draw: Draw, found: list[FoundEntry], builders: list[Any], tree: str) -> list[dict[str, Any]]:
    assert draw.certificate_hash is not None
    documents = []
    for item, builder in zip(found, builders, strict=True):
        salt = derive_salt(draw.secret or b"", item.entry)
        leaf = leaf_v2(item.entry, salt)
        expected = leaf if tree == "eligible" else collected_leaf(leaf, item.verdict)
        if builder.leaf_hash != expected:
            raise RuntimeError(f"draw {draw.id}: the stored {tree} leaf {builder.index} is not the entry's")
        index = item.eligible_index if tree == "eligible" else item.collected_index
        documents.append(
            proof_document_v2(
                draw.certificate_hash,
                item.entry,
                salt,
                item.verdict,
                tree=tree,
                index=index,
                tree_size=builder.tree_size,
                audit_path=builder.proof(),
            )
        )
    return documents


async def _v1_proofs(pool: Any, draw: Draw, found: list[FoundEntry]) -> list[dict[str, Any]]:
    if not found:
        return []
    assert draw.certificate_hash is not None
    builders = await _audit_paths(pool, ELIGIBLE_LEAVES, draw.id, 0, [item.eligible_index for item in found])
    documents = []
    for item, builder in zip(found, builders, strict=True):
        if builder.leaf_hash != item.entry.leaf_hash:
            raise RuntimeError(f"draw {draw.id}: the stored leaf {item.eligible_index} is not the entry's")
        documents.append(
            inclusion_proof_document(
                draw.certificate_hash, item.entry, item.eligible_index, builder.tree_size, builder.proof()
            )
        )
    return documents


@dataclass(frozen=True)
class Moment:
    at: str
    what: str
    detail: str


def _cosigned_at(line: str) -> tuple[str, int] | None:
    """A cosignature line's witness name and time (read, not checked: the checks above do that)."""
    try:
        _, name, blob = line.strip().split(" ")
        raw = base64.b64decode(blob, validate=True)
    except ValueError:
        return None
    return (name, int.from_bytes(raw[4:12], "big")) if len(raw) == 76 else None


def timeline(cert: dict[str, Any]) -> list[Moment]:
    """A v2 certificate's story, in the order the protocol fixes: opened, sealed, witnessed, the randomness
    published, certified (a witness's time is in whole seconds, so it can read as the seal's own second)."""
    opened, sealed, beacon = cert["opened"], cert["sealed"], cert["beacon"]
    moments = [
        Moment(
            opened["at"],
            "Opened",
            f"record {opened['seq']} of the public log: the rules, the sources and the "
            f"blacklist were fixed before any entry was collected",
        ),
        Moment(
            sealed["at"],
            "Sealed",
            f"record {sealed['seq']}: {cert['counts']['participants']:,} collected entries, "
            f"each with its verdict, and round {beacon['round']} of {beacon['source']} named as the randomness",
        ),
    ]
    for line in cert["log"]["cosignatures"]:
        found = _cosigned_at(line)
        if found is not None:
            name, seconds = found
            moments.append(
                Moment(
                    rfc3339(datetime.datetime.fromtimestamp(seconds, datetime.UTC)),
                    "Witnessed",
                    f"{name} cosigned the log's first {cert['log']['checkpoint'].split(chr(10))[1]} "
                    "records, the seal included",
                )
            )
    published = int(beacon["genesis_time"]) + (int(beacon["round"]) - 1) * int(beacon["period"])
    moments.append(
        Moment(
            rfc3339(datetime.datetime.fromtimestamp(published, datetime.UTC)),
            "Randomness published",
            f"round {beacon['round']} of {beacon['source']}: {beacon['randomness']}",
        )
    )
    moments.append(Moment(cert["issued_at"], "Certified", "the winners drawn and this certificate signed"))
    return moments


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
        if request.headers.get("hx-boosted") == "true":
            # The page checks itself with its own scripts and data blocks, which a boosted swap would drop.
            return Response(content=b"", status_code=200, headers={"hx-redirect": f"/certificates/{digest}"})
        report, entries_checked = await _recheck(request, draws, draw)
        platforms = await entry_platforms(request.app.state.read_pool, draw)
        v2 = cert.get("algorithm") == ALGORITHM_V2
        opened = cert.get("opened") or {}
        return render(
            request,
            "certificates/show.html",
            {
                "cert": cert,
                "v2": v2,
                "digest": digest,
                "report": report,
                "entries_checked": entries_checked,
                "labels": PUBLIC_EXCLUSION_LABELS,
                "platforms": platforms,
                "lookup": {"platform": (platforms or [""])[0], "username": ""},
                "runs": await runs_of(db_session, opened.get("subjects") or []) if v2 else [],
                "runs_by_file": any(subject.startswith("file:") for subject in opened.get("subjects") or []),
                "key_set": published_key_set(request.app.state.settings),
                # A visitor pins witness keys of their own choosing; the page names only those the certificate names.
                "witness_keys": [],
                "timeline": timeline(cert) if v2 else [],
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
        platforms = await entry_platforms(request.app.state.read_pool, draw)
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
                return _proof_answer(
                    request, cert, name, platforms, platform, username, errors, None, 429, _retry(limited)
                )
        if errors:
            if as_json:
                return Response({"error": "invalid lookup", "fields": errors}, status_code=400)
            return _proof_answer(request, cert, name, platforms, platform, username, errors, None, 400)
        proofs = await entry_proofs(request.app.state.read_pool, draw, platform, username)
        if as_json:
            chosen = request.query_params.get("entry") or "0"
            position = int(chosen) if chosen.isascii() and chosen.isdigit() and len(chosen) <= 2 else len(proofs)
            if position >= len(proofs):
                return Response({"error": "no entry of this username was collected"}, status_code=404)
            return Response(
                content=canonical_json(proofs[position]),
                media_type="application/json",
                headers={"content-disposition": attachment(f"cleack-proof-{name[:16]}-{username}.json")},
            )
        return _proof_answer(request, cert, name, platforms, platform, username, {}, proofs, 200)


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
    keys = parse_key_set(published_key_set(request.app.state.settings))
    checked = draw.participants_count <= ENTRIES_CHECK_MAX
    pool = request.app.state.read_pool
    if cert.get("algorithm") == ALGORITHM:
        entries = None
        if checked:
            entries = [
                Entry(row["platform"], row["platform_user_id"], row["username"], row["comment_id"] or "")
                async for row in stream_rows(pool, ELIGIBLE_IN_CANONICAL_ORDER, draw.id)
            ]
        report = verify_certificate(cert, keys=keys, entries=entries, previous=previous)
    else:
        rows = None
        if checked:
            rows = [
                EntryRow(
                    entry=Entry(row["platform"], row["platform_user_id"], row["username"], row["comment_id"] or ""),
                    eligible=bool(row["is_eligible"]),
                    exclusion_reason=row["exclusion_reason"],
                    salt=row["salt"],
                )
                async for row in stream_rows(pool, ENTRIES_IN_CANONICAL_ORDER, draw.id)
            ]
        report = verify_certificate(cert, keys=keys, rows=rows, previous=previous)
    _rechecks[draw.certificate_hash] = (time.monotonic(), report, checked)
    _rechecks.move_to_end(draw.certificate_hash)
    while len(_rechecks) > RECHECKS_KEPT:
        _rechecks.popitem(last=False)
    return report, checked


def _retry(limited: RateLimited) -> dict[str, str]:
    return {"retry-after": str(limited.retry_after)}


async def _issued(draws: DrawService, digest: str) -> Draw:
    if not HEX64.fullmatch(digest):
        raise NotFoundException()
    draw = await draws.by_certificate(digest)
    if draw is None or draw.certificate is None:
        raise NotFoundException()
    return draw


def attachment(filename: str) -> str:
    """Content-Disposition for any file name (RFC 6266): an ASCII fallback, and the UTF-8 name in filename*."""
    fallback = "".join(char if (char.isascii() and char.isalnum()) or char in "-._" else "_" for char in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def entry_platforms(pool: Any, draw: Draw) -> list[str]:
    """The platforms the draw's entries are on (an uploaded list's rows name their own), kept per certificate."""
    assert draw.certificate_hash is not None
    known = _platforms_of.get(draw.certificate_hash)
    if known is None:
        async with pool.acquire() as connection:
            known = [row["platform"] for row in await connection.fetch(ENTRY_PLATFORMS, draw.id)]
        _platforms_of[draw.certificate_hash] = known
        while len(_platforms_of) > RECHECKS_KEPT:
            _platforms_of.pop(next(iter(_platforms_of)))
    return known


def _proof_answer(
    request: Request[Any, Any, Any],
    cert: dict[str, Any],
    digest: str,
    platforms: list[str],
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
        "platforms": platforms,
        "lookup": {"platform": platform, "username": username},
        "errors": errors,
        "proofs": proofs,
        "proof_query": [("platform", platform), ("username", username)],
        "labels": PUBLIC_EXCLUSION_LABELS,
    }
    response = render(
        request, "certificates/proof.html", context, fragment="certificates/_proof.html", status_code=status_code
    )
    response.headers.update(headers or {})
    return response
