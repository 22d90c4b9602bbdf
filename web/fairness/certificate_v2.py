"""The cleack-draw-v2 certificate: the log's opened and sealed records, a witnessed head, a public beacon round.

The seed is SHA-256 of the seal and the round's randomness: no secret of the operator enters it
(docs/fairness.md).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import hmac
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from web.fairness.certificate import DrawFacts, Selection, signed
from web.fairness.checks import is_int
from web.fairness.consistency_v2 import (
    beacon_chain,
    beacon_problems,
    cosignature_times,
    log_head_problems,
    log_member_problems,
    opened_problems,
    round_time,
    sealed_problems,
    unix_time,
)
from web.fairness.consistency_v2 import opened_draw as opened_draw  # re-exported: the draw as opened records state it
from web.fairness.drand import verify_round_signature
from web.fairness.entries import SALT_SIZE, Entry, leaf_v2
from web.fairness.log import counts_problems, record_problems
from web.fairness.note import parse_verifier_key
from web.fairness.sampling import sample_without_replacement, selection_sizes
from web.fairness.signing import key_id
from web.fairness.timestamps import rfc3339

ALGORITHM_V2 = "cleack-draw-v2"
STREAM_LABEL_V2 = ALGORITHM_V2.encode("ascii")


def derive_seed_v2(sealed_record_hash: bytes, randomness: bytes) -> bytes:
    """SHA-256("cleack-draw-v2" ‖ the sealed record's hash (32 bytes) ‖ the beacon round's randomness (32 bytes))."""
    if len(sealed_record_hash) != 32 or len(randomness) != 32:
        raise ValueError("the sealed record's hash and the randomness are 32 bytes each")
    return hashlib.sha256(STREAM_LABEL_V2 + sealed_record_hash + randomness).digest()


def stream_block_v2(seed: bytes, number: int) -> bytes:
    """Block i: HMAC-SHA256(key=seed, msg="cleack-draw-v2" ‖ uint64_be(i)); v1's stream with v2's label."""
    return hmac.new(seed, STREAM_LABEL_V2 + number.to_bytes(8, "big"), hashlib.sha256).digest()


def stream_words_v2(seed: bytes) -> Iterator[int]:
    for number in count():
        block = stream_block_v2(seed, number)
        for offset in range(0, 32, 8):
            yield int.from_bytes(block[offset : offset + 8], "big")


def select_winners_v2(
    *, sealed_record_hash: bytes, randomness: bytes, eligible: int, winners_count: int, alternates_count: int
) -> Selection:
    """The seed, then winners and alternates by v1's partial Fisher-Yates over the v2 stream."""
    seed = derive_seed_v2(sealed_record_hash, randomness)
    winners, alternates = selection_sizes(eligible, winners_count, alternates_count)
    indices = sample_without_replacement(stream_words_v2(seed), eligible, winners + alternates)
    return Selection(seed, indices[:winners], indices[winners:])


@dataclass(frozen=True)
class SaltedPick:
    """A selected entry, its leaf index among the eligible entries in canonical order, and its salt."""

    index: int
    entry: Entry
    salt: bytes


@dataclass(frozen=True)
class LogProof:
    """Where the seal sits in the log: the head before it, the records after it, the signed and cosigned head."""

    origin: str
    head_before_seal: bytes
    following: Sequence[bytes]
    checkpoint: str
    cosignatures: Sequence[str]
    witnesses: Sequence[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "head_before_seal": self.head_before_seal.hex(),
            "following": [record_hash.hex() for record_hash in self.following],
            "checkpoint": self.checkpoint,
            "cosignatures": list(self.cosignatures),
            "witnesses": list(self.witnesses),
        }


def salted_pick_record(position: int, pick: SaltedPick) -> dict[str, Any]:
    entry = pick.entry
    return {
        "position": position,
        "index": pick.index,
        "leaf_hash": leaf_v2(entry, pick.salt).hex(),
        "salt": pick.salt.hex(),
        "platform": entry.platform,
        "platform_user_id": entry.platform_user_id,
        "username": entry.username,
        "entry_id": entry.entry_id,
    }


def build_certificate_v2(
    *,
    draw: DrawFacts,
    config: Mapping[str, Any],
    counts: Mapping[str, Any],
    merkle_root: bytes,
    collected_root: bytes,
    opened: Mapping[str, Any],
    sealed: Mapping[str, Any],
    log: LogProof,
    beacon: Mapping[str, Any],
    winners: Sequence[SaltedPick],
    alternates: Sequence[SaltedPick],
    signing_key: Ed25519PrivateKey,
    issued_at: datetime.datetime,
    previous_certificate_hash: str | None = None,
) -> dict[str, Any]:
    """The signed v2 certificate; ValueError lists every input that disagrees with the records or the algorithm."""
    certificate: dict[str, Any] = {
        "algorithm": ALGORITHM_V2,
        "draw": {
            "id": str(draw.id),
            "title": draw.title,
            "platforms": list(draw.platforms),
            "sources": copy.deepcopy([dict(source) for source in draw.sources]),
            "created_at": rfc3339(draw.created_at),
            "started_at": rfc3339(draw.started_at),
            "completed_at": rfc3339(draw.completed_at),
        },
        "config": copy.deepcopy(dict(config)),
        "counts": {
            "participants": counts.get("participants"),
            "excluded": dict(counts.get("excluded") or {}),
            "eligible": counts.get("eligible"),
        },
        "merkle_root": merkle_root.hex(),
        "collected_root": collected_root.hex(),
        "opened": copy.deepcopy(dict(opened)),
        "sealed": copy.deepcopy(dict(sealed)),
        "log": log.as_json(),
        "beacon": dict(beacon),
    }
    problems = _input_problems(certificate)
    if problems:
        raise ValueError("; ".join(problems))
    selection = select_winners_v2(
        sealed_record_hash=bytes.fromhex(sealed["record_hash"]),
        randomness=bytes.fromhex(beacon["randomness"]),
        eligible=certificate["counts"]["eligible"],
        winners_count=config["winners_count"],
        alternates_count=config["alternates_count"],
    )
    if [pick.index for pick in winners] != selection.winner_indices or [
        pick.index for pick in alternates
    ] != selection.alternate_indices:
        raise ValueError("the picks are not the entries the seed selects")
    if any(len(pick.salt) != SALT_SIZE for pick in (*winners, *alternates)):
        raise ValueError("every pick's salt is 16 bytes")
    certificate.update(
        {
            "seed": selection.seed.hex(),
            "winners": [salted_pick_record(position, pick) for position, pick in enumerate(winners, start=1)],
            "alternates": [salted_pick_record(position, pick) for position, pick in enumerate(alternates, start=1)],
            "previous_certificate_hash": previous_certificate_hash,
            "issued_at": rfc3339(issued_at),
            "key_id": key_id(signing_key),
        }
    )
    return signed(certificate, signing_key)


def _input_problems(cert: Mapping[str, Any]) -> list[str]:
    config, counts, opened, sealed = cert["config"], cert["counts"], cert["opened"], cert["sealed"]
    if not all(is_int(config.get(name)) and config[name] >= 0 for name in ("winners_count", "alternates_count")):
        return ["the config must give winners_count and alternates_count as non-negative integers"]
    problems = counts_problems(counts)
    problems += [f"opened record: {problem}" for problem in record_problems(opened)]
    problems += [f"sealed record: {problem}" for problem in record_problems(sealed)]
    problems += log_member_problems(cert["log"])
    problems += beacon_problems(cert["beacon"])
    problems += [
        f"the {kind} record is of kind {record.get('kind')!r}"
        for kind, record in (("opened", opened), ("sealed", sealed))
        if record.get("kind") != kind
    ]
    if problems:
        return problems
    problems = [*opened_problems(cert), *sealed_problems(cert), *log_head_problems(cert)]
    beacon = cert["beacon"]
    if not verify_round_signature(beacon_chain(beacon), beacon["round"], bytes.fromhex(beacon["signature"])):
        problems.append(f"the beacon's signature is not round {beacon['round']}'s under the chain's public key")
    if not problems:
        problems += _witness_problems(cert)
    return problems


def _witness_problems(cert: Mapping[str, Any]) -> list[str]:
    """A certificate is only issued with a cosignature, by a witness it names, made before the round was out."""
    try:
        keys = [parse_verifier_key(text) for text in cert["log"]["witnesses"]]
    except ValueError as exc:
        return [f"log.witnesses: {exc}"]
    published = round_time(cert["beacon"])
    if any(timestamp < published for timestamp, _ in cosignature_times(cert["log"], keys)):
        return []
    return [
        f"no cosignature by the witnesses named in log.witnesses predates round {cert['beacon']['round']} "
        f"(published at {unix_time(published)})"
    ]
