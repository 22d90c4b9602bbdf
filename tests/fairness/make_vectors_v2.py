"""The test vectors of docs/fairness.md (docs/fairness-vectors-v2.json), computed with web.fairness.

.venv/bin/python -m tests.fairness.make_vectors     # rewrites both vector files
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from tests.fairness.make_vectors import COLLECTED, CONFIG, _time, vectors
from web.fairness import (
    COSIGNATURE_V1,
    ELIGIBLE,
    QUICKNET,
    BeaconRound,
    ChainInfo,
    DrawFacts,
    DrawTreesBuilder,
    Entry,
    EntryRow,
    LogProof,
    SaltedPick,
    beacon_record,
    blacklist_digest,
    bls_public_key,
    bls_secret_from_seed,
    build_certificate_v2,
    build_record,
    canonical_json,
    checkpoint_text,
    collected_leaf,
    cosign,
    cosignature_message,
    derive_salt,
    derive_seed_v2,
    entries_csv_lines,
    inclusion_proof,
    key_record,
    key_set,
    leaf_v2,
    load_signing_key,
    log_verifier_key,
    merkle_root,
    next_head,
    randomness_of,
    round_message,
    sign_checkpoint,
    sign_round,
    subjects,
    verifier_key,
)
from web.fairness.certificate import unsigned_part
from web.fairness.certificate_v2 import stream_block_v2, stream_words_v2
from web.fairness.drand import BLS_UNCHAINED_G1
from web.fairness.log import ZERO_HEAD
from web.fairness.sampling import sample_without_replacement, selection_sizes
from web.fairness.signing import b64url_encode, public_key_bytes
from web.fairness.timestamps import rfc3339

# cleack-draw-v2 (docs/fairness.md): docs/fairness-vectors-v2.json.
V2_VECTORS_FILE = Path(__file__).resolve().parents[2] / "docs" / "fairness-vectors-v2.json"
V2_KEY_BYTES = hashlib.sha256(b"cleack-draw-v2 test signing key").digest()
WITNESS_KEY_BYTES = hashlib.sha256(b"cleack-draw-v2 test witness key").digest()
BEACON_SEED = hashlib.sha256(b"cleack-draw-v2 test sandbox beacon").digest()
SALT_KEY = hashlib.sha256(b"cleack-draw-v2 test salt key").digest()
V2_DRAW_ID = uuid.UUID("0193a5b2-7c1d-7e4f-8a9b-0c1d2e3f4a5c")
OTHER_DRAW_ID = uuid.UUID("0193a5b2-7c1d-7e4f-8a9b-0c1d2e3f4a5d")
ORIGIN = "cleack.example/log"
WITNESS = "witness.example"
SANDBOX_GENESIS = 1767225600
LIST_FILE = b'name,comment\nJo "JJ" Smith,win\n'
V2_SOURCES: list[dict[str, Any]] = [
    {"platform": "instagram", "post_id": "C5xAmPle"},
    {"platform": "x", "post_id": "1790000000000000000"},
    {"platform": "list", "file": "friends.csv", "rows": 1, "sha256": hashlib.sha256(LIST_FILE).hexdigest()},
]
EXCLUDED_V2 = [
    (Entry("x", "11", "spam_bot", "1790000000000000011"), "suspicious"),
    (Entry("instagram", "17841400000000003", "carla", "18033333333333333"), "keyword_missing"),
    (Entry("instagram", "17841400000000001", "ana.lima", "18011111111111112"), "duplicate"),
]
QUICKNET_ROUND_1000 = {
    "round": 1000,
    "signature": "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39",
    "randomness": "fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd",
}


def sandbox_chain() -> ChainInfo:
    public_key = bls_public_key(bls_secret_from_seed(BEACON_SEED))
    chain_hash = hashlib.sha256(public_key + SANDBOX_GENESIS.to_bytes(8, "big") + (3).to_bytes(8, "big")).hexdigest()
    return ChainInfo(chain_hash, public_key.hex(), 3, SANDBOX_GENESIS, BLS_UNCHAINED_G1, "cleack-sandbox")


def _record_vector(record: dict[str, Any]) -> dict[str, Any]:
    unsigned = {name: value for name, value in record.items() if name not in ("record_hash", "signature")}
    return {"record": record, "canonical_json": canonical_json(unsigned).decode("utf-8")}


def _selection_vector(seed: bytes, eligible: int, winners_count: int, alternates_count: int) -> dict[str, Any]:
    selection = select_winners_v2_from_seed(seed, eligible, winners_count, alternates_count)
    return {
        "eligible": eligible,
        "winners_count": winners_count,
        "alternates_count": alternates_count,
        "winner_indices": selection[0],
        "alternate_indices": selection[1],
    }


def select_winners_v2_from_seed(
    seed: bytes, eligible: int, winners: int, alternates: int
) -> tuple[list[int], list[int]]:
    count, extra = selection_sizes(eligible, winners, alternates)
    picks = sample_without_replacement(stream_words_v2(seed), eligible, count + extra)
    return picks[:count], picks[count:]


def vectors_v2() -> dict[str, Any]:
    key = load_signing_key(b64url_encode(V2_KEY_BYTES))
    witness_key = load_signing_key(b64url_encode(WITNESS_KEY_BYTES))
    witness = verifier_key(WITNESS, COSIGNATURE_V1, public_key_bytes(witness_key))
    chain = sandbox_chain()
    bls_secret = bls_secret_from_seed(BEACON_SEED)

    collected = sorted([*((entry, ELIGIBLE) for entry in COLLECTED), *EXCLUDED_V2], key=lambda item: item[0].key)
    salts = [derive_salt(SALT_KEY, entry) for entry, _ in collected]
    leaves = [leaf_v2(entry, salt) for (entry, _), salt in zip(collected, salts, strict=True)]
    verdict_leaves = [collected_leaf(leaf, verdict) for leaf, (_, verdict) in zip(leaves, collected, strict=True)]
    eligible_leaves = [leaf for leaf, (_, verdict) in zip(leaves, collected, strict=True) if verdict == ELIGIBLE]
    trees = DrawTreesBuilder()
    trees.add_rows([(*entry.fields, salt, verdict) for (entry, verdict), salt in zip(collected, salts, strict=True)])
    rows = [
        EntryRow(
            entry,
            verdict == ELIGIBLE,
            None if verdict == ELIGIBLE else verdict,
            comment='I "win", really,\nI do' if entry.platform == "x" and verdict == ELIGIBLE else None,
            commented_at=_time("2026-11-21T12:00:00+00:00") if entry.platform != "list" else None,
            salt=salt,
        )
        for (entry, verdict), salt in zip(collected, salts, strict=True)
    ]
    csv_text = "".join(entries_csv_lines(rows, salted=True))

    records: list[dict[str, Any]] = []
    heads = [ZERO_HEAD]

    def append(kind: str, draw_id: uuid.UUID, at: str, **members: Any) -> dict[str, Any]:
        record = build_record(
            kind, origin=ORIGIN, seq=len(records) + 1, draw_id=draw_id, at=_time(at), signing_key=key, **members
        )
        records.append(record)
        heads.append(next_head(heads[-1], bytes.fromhex(record["record_hash"])))
        return record

    blacklist_sha256, blacklist_count = blacklist_digest([("x", "spam_bot"), ("instagram", "fake.giveaways")])
    opened = append(
        "opened",
        V2_DRAW_ID,
        "2026-11-20T09:00:00+00:00",
        draw={
            "title": "Spring giveaway 🌷",
            "platforms": ["instagram", "list", "x"],
            "sources": V2_SOURCES,
            "created_at": "2026-11-20T09:00:00Z",
        },
        config=CONFIG,
        blacklist={"sha256": blacklist_sha256, "count": blacklist_count},
        scheduled_at="2026-11-22T18:00:00Z",
        subjects=subjects(V2_SOURCES),
        beacon={"chain_hash": chain.chain_hash},
    )
    append(
        "opened",
        OTHER_DRAW_ID,
        "2026-11-21T10:00:00+00:00",
        draw={
            "title": "Another giveaway",
            "platforms": ["x"],
            "sources": [{"platform": "x", "post_id": "1790000000000000099"}],
            "created_at": "2026-11-21T10:00:00Z",
        },
        config=CONFIG,
        blacklist={"sha256": blacklist_digest([])[0], "count": 0},
        scheduled_at=None,
        subjects=["post:x:1790000000000000099"],
        beacon={"chain_hash": chain.chain_hash},
    )
    sealed_at = _time("2026-11-22T18:00:00+00:00")
    round_ = chain.round_at(sealed_at + datetime.timedelta(seconds=6)) + 1
    sealed = append(
        "sealed",
        V2_DRAW_ID,
        "2026-11-22T18:00:00+00:00",
        opened=opened["record_hash"],
        counts=trees.counts(),
        merkle_root=trees.merkle_root().hex(),
        collected_root=trees.collected_root().hex(),
        beacon={"chain_hash": chain.chain_hash, "round": round_},
    )
    append("cancelled", OTHER_DRAW_ID, "2026-11-22T18:00:01+00:00", stage="queued")
    size = len(records)
    checkpoint = sign_checkpoint(ORIGIN, size, heads[size], key)
    text = checkpoint_text(ORIGIN, size, heads[size])
    cosigned_at = int(_time("2026-11-22T18:00:03+00:00").timestamp())
    cosignature = cosign(text, WITNESS, witness_key, cosigned_at)
    signature = sign_round(bls_secret, round_)
    randomness = randomness_of(signature)
    seed = derive_seed_v2(bytes.fromhex(sealed["record_hash"]), randomness)
    eligible_entries_ = [
        (entry, salt) for (entry, verdict), salt in zip(collected, salts, strict=True) if verdict == ELIGIBLE
    ]
    winners, alternates = select_winners_v2_from_seed(
        seed, len(eligible_entries_), CONFIG["winners_count"], CONFIG["alternates_count"]
    )
    previous = vectors()["certificate"]
    completed_at = _time("2026-11-22T18:00:10+00:00")
    certificate = build_certificate_v2(
        draw=DrawFacts(
            id=V2_DRAW_ID,
            title="Spring giveaway 🌷",
            platforms=["instagram", "list", "x"],
            sources=V2_SOURCES,
            created_at=_time("2026-11-20T09:00:00+00:00"),
            started_at=_time("2026-11-22T18:00:00+00:00"),
            completed_at=completed_at,
        ),
        config=CONFIG,
        counts=trees.counts(),
        merkle_root=trees.merkle_root(),
        collected_root=trees.collected_root(),
        opened=opened,
        sealed=sealed,
        log=LogProof(
            origin=ORIGIN,
            head_before_seal=heads[sealed["seq"] - 1],
            following=[bytes.fromhex(record["record_hash"]) for record in records[sealed["seq"] : size]],
            checkpoint=checkpoint,
            cosignatures=[cosignature],
            witnesses=[witness.text],
        ),
        beacon=beacon_record(chain, BeaconRound(round_, signature.hex(), randomness.hex())),
        winners=[SaltedPick(index, *eligible_entries_[index]) for index in winners],
        alternates=[SaltedPick(index, *eligible_entries_[index]) for index in alternates],
        signing_key=key,
        issued_at=completed_at,
        previous_certificate_hash=previous["certificate_hash"],
    )
    append(
        "certified",
        V2_DRAW_ID,
        "2026-11-22T18:00:10+00:00",
        sealed=sealed["record_hash"],
        certificate_hash=certificate["certificate_hash"],
    )
    excluded_at = next(index for index, (_, verdict) in enumerate(collected) if verdict != ELIGIBLE)
    empty_trees = DrawTreesBuilder()
    empty_trees.add_rows(
        [(*entry.fields, derive_salt(SALT_KEY, entry), verdict) for entry, verdict in collected if verdict != ELIGIBLE]
    )
    return {
        "keys": {
            "signing_key": b64url_encode(V2_KEY_BYTES),
            "key_set": key_set([key_record(key, _time("2026-01-01T00:00:00+00:00"))]),
            "log_verifier_key": log_verifier_key(ORIGIN, key.public_key()).text,
            "witness_private_key": b64url_encode(WITNESS_KEY_BYTES),
            "witness_verifier_key": witness.text,
            "bls_seed": BEACON_SEED.hex(),
            "bls_secret": f"{bls_secret:064x}",
        },
        "salt_key": SALT_KEY.hex(),
        "entries": [
            {
                "index": index,
                "platform": entry.platform,
                "platform_user_id": entry.platform_user_id,
                "username": entry.username,
                "entry_id": entry.entry_id,
                "verdict": verdict,
                "salt": salt.hex(),
                "leaf_v2": leaf.hex(),
                "collected_leaf": verdict_leaf.hex(),
            }
            for index, ((entry, verdict), salt, leaf, verdict_leaf) in enumerate(
                zip(collected, salts, leaves, verdict_leaves, strict=True)
            )
        ],
        "trees": {
            "merkle_root": merkle_root(eligible_leaves).hex(),
            "collected_root": merkle_root(verdict_leaves).hex(),
            "counts": trees.counts(),
            "eligible_proof": {"index": 1, "audit_path": [node.hex() for node in inclusion_proof(eligible_leaves, 1)]},
            "collected_proof": {
                "index": excluded_at,
                "audit_path": [node.hex() for node in inclusion_proof(verdict_leaves, excluded_at)],
            },
        },
        "entries_csv": {
            "text": csv_text,
            "rows": [
                {
                    "platform": row.entry.platform,
                    "platform_user_id": row.entry.platform_user_id,
                    "username": row.entry.username,
                    "entry_id": row.entry.entry_id,
                    "salt": salts[position].hex(),
                    "verdict": row.verdict,
                }
                for position, row in enumerate(rows)
            ],
        },
        "log": {
            "origin": ORIGIN,
            "records": [_record_vector(record) for record in records],
            "heads": [head.hex() for head in heads],
            "checkpoint": {"size": size, "text": text, "note": checkpoint},
            "cosignature": {
                "time": cosigned_at,
                "message": cosignature_message(text, cosigned_at).decode("utf-8"),
                "line": cosignature,
            },
            "blacklist": {
                "pairs": [["instagram", "fake.giveaways"], ["x", "spam_bot"]],
                "sha256": blacklist_sha256,
                "count": blacklist_count,
            },
        },
        "beacon": {
            "quicknet": {
                **{
                    name: getattr(QUICKNET, name)
                    for name in ("chain_hash", "public_key", "genesis_time", "period", "scheme")
                },
                **QUICKNET_ROUND_1000,
                "message": round_message(1000).hex(),
                "published_at": rfc3339(QUICKNET.time_of(1000)),
            },
            "sandbox": {**beacon_record(chain, BeaconRound(round_, signature.hex(), randomness.hex()))},
        },
        "seed": {
            "sealed_record_hash": sealed["record_hash"],
            "randomness": randomness.hex(),
            "seed": seed.hex(),
            "stream": [stream_block_v2(seed, number).hex() for number in range(3)],
        },
        "selection": _selection_vector(
            seed, len(eligible_entries_), CONFIG["winners_count"], CONFIG["alternates_count"]
        ),
        "clamping": [
            _selection_vector(seed, 5, 4, 3),
            _selection_vector(seed, 2, 5, 2),
        ],
        "empty_draw": {
            "counts": empty_trees.counts(),
            "merkle_root": empty_trees.merkle_root().hex(),
            "collected_root": empty_trees.collected_root().hex(),
            "selection": _selection_vector(seed, 0, 2, 1),
        },
        "chain": [previous, certificate],
        "certificate": certificate,
        "certificate_canonical_json": canonical_json(unsigned_part(certificate)).decode("utf-8"),
    }


def vectors_v2_text() -> str:
    return json.dumps(vectors_v2(), indent=2, ensure_ascii=False) + "\n"
