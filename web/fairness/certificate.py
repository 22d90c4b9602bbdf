"""The fairness certificate: what was drawn, how, from what, by whom, signed and chained to the previous one."""

from __future__ import annotations

import datetime
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from web.fairness.canonical import canonical_json
from web.fairness.entries import Entry
from web.fairness.sampling import ALGORITHM, Beacon, commitment, derive_seed, select_indices, selection_sizes
from web.fairness.signing import key_id, sign_certificate_hash
from web.fairness.timestamps import rfc3339

UNHASHED_FIELDS = ("certificate_hash", "signature")


@dataclass(frozen=True)
class DrawFacts:
    """The draw as the certificate describes it; `sources` is the draw's list of sources (posts, uploads)."""

    id: uuid.UUID
    title: str
    platforms: Sequence[str]
    sources: Sequence[Mapping[str, Any]]
    created_at: datetime.datetime
    started_at: datetime.datetime
    completed_at: datetime.datetime


@dataclass(frozen=True)
class Pick:
    """A selected entry and its leaf index in the canonical order."""

    index: int
    entry: Entry


@dataclass(frozen=True)
class Selection:
    """What the seed picks: leaf indices of the winners, then of the alternates, in draw order."""

    seed: bytes
    winner_indices: list[int]
    alternate_indices: list[int]


def select_winners(
    *,
    secret: bytes,
    merkle_root: bytes,
    draw_id: uuid.UUID,
    eligible: int,
    winners_count: int,
    alternates_count: int,
    beacon: Beacon | None = None,
) -> Selection:
    seed = derive_seed(secret, merkle_root, draw_id, beacon)
    winners, alternates = selection_sizes(eligible, winners_count, alternates_count)
    indices = select_indices(seed, eligible, winners + alternates)
    return Selection(seed, indices[:winners], indices[winners:])


def winner_record(position: int, pick: Pick) -> dict[str, Any]:
    entry = pick.entry
    return {
        "position": position,
        "index": pick.index,
        "leaf_hash": entry.leaf_hash.hex(),
        "platform": entry.platform,
        "platform_user_id": entry.platform_user_id,
        "username": entry.username,
        "entry_id": entry.entry_id,
    }


def unsigned_part(certificate: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in certificate.items() if name not in UNHASHED_FIELDS}


def certificate_hash(certificate: Mapping[str, Any]) -> str:
    """SHA-256, lowercase hex, of the canonical JSON of the certificate without certificate_hash and signature."""
    return hashlib.sha256(canonical_json(unsigned_part(certificate))).hexdigest()


def signed(certificate: dict[str, Any], signing_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The certificate with its certificate_hash and the signature of that hash."""
    digest = certificate_hash(certificate)
    certificate["certificate_hash"] = digest
    certificate["signature"] = sign_certificate_hash(signing_key, digest)
    return certificate


def build_certificate(
    *,
    draw: DrawFacts,
    config: Mapping[str, Any],
    participants: int,
    excluded: Mapping[str, int],
    eligible: int,
    merkle_root: bytes,
    secret: bytes,
    winners: Sequence[Pick],
    alternates: Sequence[Pick],
    signing_key: Ed25519PrivateKey,
    issued_at: datetime.datetime,
    previous_certificate_hash: str | None = None,
    beacon: Beacon | None = None,
) -> dict[str, Any]:
    """The signed certificate; ValueError when the figures or the picks disagree with the algorithm."""
    if participants != eligible + sum(excluded.values()):
        raise ValueError("participants must equal eligible plus every excluded entry")
    winners_count, alternates_count = config.get("winners_count"), config.get("alternates_count")
    if not isinstance(winners_count, int) or not isinstance(alternates_count, int):
        raise ValueError("the config must give winners_count and alternates_count as integers")
    selection = select_winners(
        secret=secret,
        merkle_root=merkle_root,
        draw_id=draw.id,
        eligible=eligible,
        winners_count=winners_count,
        alternates_count=alternates_count,
        beacon=beacon,
    )
    if [pick.index for pick in winners] != selection.winner_indices or [
        pick.index for pick in alternates
    ] != selection.alternate_indices:
        raise ValueError("the picks are not the entries the seed selects")
    certificate: dict[str, Any] = {
        "algorithm": ALGORITHM,
        "draw": {
            "id": str(draw.id),
            "title": draw.title,
            "platforms": list(draw.platforms),
            "sources": [dict(source) for source in draw.sources],
            "created_at": rfc3339(draw.created_at),
            "started_at": rfc3339(draw.started_at),
            "completed_at": rfc3339(draw.completed_at),
        },
        "config": dict(config),
        "counts": {"participants": participants, "excluded": dict(excluded), "eligible": eligible},
        "merkle_root": merkle_root.hex(),
        "commitment": commitment(secret),
        "secret": secret.hex(),
        "beacon": None if beacon is None else beacon.as_json(),
        "seed": selection.seed.hex(),
        "winners": [winner_record(position, pick) for position, pick in enumerate(winners, start=1)],
        "alternates": [winner_record(position, pick) for position, pick in enumerate(alternates, start=1)],
        "previous_certificate_hash": previous_certificate_hash,
        "issued_at": rfc3339(issued_at),
        "key_id": key_id(signing_key),
    }
    return signed(certificate, signing_key)
