"""Sample cleack-draw-v2 draws made with the fairness core: real Ed25519 keys, a real BLS beacon of our own,
a real log with signed records and checkpoint, a real witness cosignature."""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.fairness.draws import CONFIG, KEY_CREATED_AT, collected_entries
from web.fairness import (
    COSIGNATURE_V1,
    ChainInfo,
    DrawFacts,
    DrawTreesBuilder,
    Entry,
    EntryRow,
    LogProof,
    SaltedPick,
    VerifierKey,
    bls_public_key,
    bls_secret_from_seed,
    build_certificate_v2,
    build_record,
    checkpoint_text,
    cosign,
    derive_salt,
    generate_signing_key,
    key_record,
    key_set,
    next_head,
    parse_key_set,
    select_winners_v2,
    sign_checkpoint,
    sign_round,
    subjects,
    verifier_key,
    write_entries_csv,
)
from web.fairness.drand import BLS_UNCHAINED_G1, randomness_of
from web.fairness.log import ZERO_HEAD
from web.fairness.signing import PublishedKey, public_key_bytes

ORIGIN = "cleack.test/log"
WITNESS_NAME = "witness.test"
SANDBOX_GENESIS = 1767225600
SOURCES = [{"platform": "instagram", "post_id": "p1"}]
OPENED_AT = datetime.datetime(2026, 11, 22, 17, 59, tzinfo=datetime.UTC)
SEALED_AT = datetime.datetime(2026, 11, 22, 18, 0, tzinfo=datetime.UTC)
# The first round published strictly after the seal plus 6 seconds: 18:00:06 is round (…)+1, so 18:00:09.
MARGIN = datetime.timedelta(seconds=6)
EXCLUDED = [
    (Entry("x", "bot-1", "spam_bot", "c-bot"), "suspicious"),
    (Entry("instagram", "42", "no_keyword", "c-nokw"), "keyword_missing"),
    (Entry("instagram", "43", "again", "c-dup"), "duplicate"),
]


def sandbox_chain(secret: int) -> ChainInfo:
    public_key = bls_public_key(secret)
    chain_hash = hashlib.sha256(public_key + SANDBOX_GENESIS.to_bytes(8, "big") + (3).to_bytes(8, "big")).hexdigest()
    return ChainInfo(chain_hash, public_key.hex(), 3, SANDBOX_GENESIS, BLS_UNCHAINED_G1, "cleack-sandbox")


def first_round_after(chain: ChainInfo, moment: datetime.datetime) -> int:
    return chain.round_at(moment) + 1


@dataclass
class Log:
    """A log being written: its records oldest first and their heads."""

    key: Ed25519PrivateKey
    records: list[dict[str, Any]] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=lambda: [ZERO_HEAD])

    def append(self, kind: str, draw_id: uuid.UUID, at: datetime.datetime, **members: Any) -> dict[str, Any]:
        record = build_record(
            kind, origin=ORIGIN, seq=len(self.records) + 1, draw_id=draw_id, at=at, signing_key=self.key, **members
        )
        self.records.append(record)
        self.heads.append(next_head(self.heads[-1], bytes.fromhex(record["record_hash"])))
        return record

    def open(
        self,
        draw_id: uuid.UUID,
        sources: list[dict[str, Any]],
        chain: ChainInfo,
        at: datetime.datetime,
        config: dict[str, Any] = CONFIG,
    ) -> dict[str, Any]:
        return self.append(
            "opened",
            draw_id,
            at,
            draw={"title": "Giveaway", "platforms": ["instagram", "x"], "sources": sources, "created_at": _t(at)},
            config=config,
            blacklist={"sha256": hashlib.sha256(b"[]").hexdigest(), "count": 0},
            scheduled_at=None,
            subjects=subjects(sources),
            beacon={"chain_hash": chain.chain_hash},
        )

    @property
    def size(self) -> int:
        return len(self.records)


def _t(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SampleDrawV2:
    rows: list[EntryRow]
    certificate: dict[str, Any]
    key: Ed25519PrivateKey
    key_set: dict[str, Any]
    witness_key: Ed25519PrivateKey
    witness: VerifierKey
    bls_secret: int
    chain: ChainInfo
    log: Log

    @property
    def keys(self) -> dict[str, PublishedKey]:
        return parse_key_set(self.key_set)

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.log.records

    @property
    def eligible(self) -> list[Entry]:
        return [row.entry for row in self.rows if row.eligible]

    def write(self, folder: Path) -> tuple[Path, Path, Path]:
        """certificate.json, entries.csv (v2, salted) and keys.json in `folder`."""
        certificate = folder / "certificate.json"
        certificate.write_text(json.dumps(self.certificate, ensure_ascii=False), encoding="utf-8")
        entries = folder / "entries.csv"
        with entries.open("w", encoding="utf-8", newline="") as file:
            write_entries_csv(file, self.rows, salted=True)
        keys = folder / "keys.json"
        keys.write_text(json.dumps(self.key_set), encoding="utf-8")
        return certificate, entries, keys


def make_draw_v2(
    count: int = 40,
    *,
    key: Ed25519PrivateKey | None = None,
    log: Log | None = None,
    previous_certificate_hash: str | None = None,
    winners_count: int = 3,
    alternates_count: int = 2,
    excluded: list[tuple[Entry, str]] | None = None,
) -> SampleDrawV2:
    """A complete v2 draw; `log` continues an existing log (same key), else a new one with an unrelated draw first."""
    key = key or generate_signing_key()
    log = log or Log(key)
    bls_secret = bls_secret_from_seed(hashlib.sha256(b"cleack test sandbox beacon").digest())
    chain = sandbox_chain(bls_secret)
    witness_key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"cleack test witness").digest())
    witness = verifier_key(WITNESS_NAME, COSIGNATURE_V1, public_key_bytes(witness_key))
    draw_id, salt_key = uuid.uuid4(), hashlib.sha256(b"salt key" + str(count).encode()).digest()
    day = datetime.timedelta(days=log.size)
    if not log.records:
        unrelated = uuid.uuid4()
        log.open(unrelated, [{"platform": "x", "post_id": "elsewhere"}], chain, OPENED_AT - datetime.timedelta(hours=1))
        log.append("cancelled", unrelated, OPENED_AT - datetime.timedelta(minutes=30), stage="queued")
    config = {**CONFIG, "winners_count": winners_count, "alternates_count": alternates_count}
    opened = log.open(draw_id, SOURCES, chain, OPENED_AT + day, config)

    collected = [(entry, "eligible") for entry in collected_entries(count)] + list(
        EXCLUDED if excluded is None else excluded
    )
    ordered = sorted(collected, key=lambda item: item[0].key)
    rows = [
        EntryRow(
            entry,
            verdict == "eligible",
            None if verdict == "eligible" else verdict,
            comment=f"I want to win, {entry.username}!",
            salt=derive_salt(salt_key, entry),
        )
        for entry, verdict in ordered
    ]
    trees = DrawTreesBuilder()
    trees.add_rows([(*entry.fields, derive_salt(salt_key, entry), verdict) for entry, verdict in ordered])
    sealed_at = SEALED_AT + day
    round_ = first_round_after(chain, sealed_at + MARGIN)
    sealed = log.append(
        "sealed",
        draw_id,
        sealed_at,
        opened=opened["record_hash"],
        counts=trees.counts(),
        merkle_root=trees.merkle_root().hex(),
        collected_root=trees.collected_root().hex(),
        beacon={"chain_hash": chain.chain_hash, "round": round_},
    )
    seal_seq = sealed["seq"]
    log.open(uuid.uuid4(), [{"platform": "x", "post_id": "another"}], chain, sealed_at + datetime.timedelta(seconds=1))
    size = log.size
    checkpoint = sign_checkpoint(ORIGIN, size, log.heads[size], key)
    cosigned_at = int((sealed_at + datetime.timedelta(seconds=3)).timestamp())
    cosignature = cosign(checkpoint_text(ORIGIN, size, log.heads[size]), WITNESS_NAME, witness_key, cosigned_at)
    signature = sign_round(bls_secret, round_)
    eligible = [row for row in rows if row.eligible]
    selection = select_winners_v2(
        sealed_record_hash=bytes.fromhex(sealed["record_hash"]),
        randomness=randomness_of(signature),
        eligible=len(eligible),
        winners_count=winners_count,
        alternates_count=alternates_count,
    )
    completed_at = chain.time_of(round_) + datetime.timedelta(seconds=1)

    def pick(index: int) -> SaltedPick:
        row = eligible[index]
        assert row.salt is not None
        return SaltedPick(index, row.entry, row.salt)

    certificate = build_certificate_v2(
        draw=DrawFacts(draw_id, "Giveaway", ["instagram", "x"], SOURCES, OPENED_AT + day, sealed_at, completed_at),
        config=config,
        counts=trees.counts(),
        merkle_root=trees.merkle_root(),
        collected_root=trees.collected_root(),
        opened=opened,
        sealed=sealed,
        log=LogProof(
            origin=ORIGIN,
            head_before_seal=log.heads[seal_seq - 1],
            following=[bytes.fromhex(record["record_hash"]) for record in log.records[seal_seq:size]],
            checkpoint=checkpoint,
            cosignatures=[cosignature],
            witnesses=[witness.text],
        ),
        beacon={
            "source": chain.source,
            "chain_hash": chain.chain_hash,
            "scheme": chain.scheme,
            "public_key": chain.public_key,
            "genesis_time": chain.genesis_time,
            "period": chain.period,
            "round": round_,
            "signature": signature.hex(),
            "randomness": randomness_of(signature).hex(),
        },
        winners=[pick(index) for index in selection.winner_indices],
        alternates=[pick(index) for index in selection.alternate_indices],
        signing_key=key,
        issued_at=completed_at,
        previous_certificate_hash=previous_certificate_hash,
    )
    log.append(
        "certified",
        draw_id,
        completed_at,
        sealed=sealed["record_hash"],
        certificate_hash=certificate["certificate_hash"],
    )
    return SampleDrawV2(
        rows=rows,
        certificate=certificate,
        key=key,
        key_set=key_set([key_record(key, KEY_CREATED_AT)]),
        witness_key=witness_key,
        witness=witness,
        bls_secret=bls_secret,
        chain=chain,
        log=log,
    )
