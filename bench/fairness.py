"""Time of the fairness core on a large cleack-draw-v2 draw: 1,000,000 collected entries by default.

    .venv/bin/python bench/fairness.py [--entries 1000000] [--repeat 3]

The entries are tuples in canonical order, as the draw engine streams them from SQL; one in ten is excluded
(with one of the exclusion reasons in turn), the others are eligible. Every entry has its salt, and the draw
has real records in a log signed with an Ed25519 key, a checkpoint cosigned by a witness key of its own, and a
round signed by a BLS beacon of its own (the sandbox beacon's scheme).

It prints the best of `--repeat` runs of each step a draw takes (the two Merkle roots, the selection, the
certificate, the seal's log records) and the total of roots, selection and certificate against the target (at
most 2 s), twice: with the roots built from stored leaf hashes, as the worker builds them (PostgreSQL hashes
each salted leaf and its verdict's leaf beside the reading), and with every leaf hashed in Python, as a verifier
does. Then, run once: verifying the certificate without and with its entries, and the proofs a participant
downloads (an eligible entry's inclusion proof, an excluded entry's verdict proof), built from the stored leaves
as the server builds them. Last, the figures of a cleack-draw-v1 certificate, which Cleack no longer issues but
still verifies.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
# Run as a script, this file's folder heads the path and `import web` would find bench/web.py.
sys.path[:] = [entry for entry in sys.path if Path(entry or os.curdir).resolve() != BENCH_DIR]
sys.path.insert(0, str(BENCH_DIR.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from web.draws.selection import STREAM_BATCH  # noqa: E402
from web.fairness import (  # noqa: E402
    COSIGNATURE_V1,
    ELIGIBLE,
    EXCLUSION_REASONS,
    ChainInfo,
    DrawFacts,
    DrawTreesBuilder,
    Entry,
    EntryRow,
    InclusionProofBuilder,
    LogProof,
    MerkleBuilder,
    Pick,
    SaltedPick,
    beacon_record,
    bls_public_key,
    bls_secret_from_seed,
    build_certificate,
    build_certificate_v2,
    build_record,
    checkpoint_text,
    collected_leaf_hashes,
    cosign,
    derive_salts,
    generate_signing_key,
    key_record,
    key_set,
    new_secret,
    next_head,
    parse_key_set,
    parse_proof_document,
    proof_document_v2,
    randomness_of,
    read_entries_csv,
    salted_leaf_hashes,
    select_winners,
    select_winners_v2,
    sign_checkpoint,
    sign_round,
    subjects,
    verifier_key,
    verify_certificate,
    verify_proof,
    write_entries_csv,
)
from web.fairness.drand import BLS_UNCHAINED_G1, BeaconRound  # noqa: E402
from web.fairness.log import ZERO_HEAD  # noqa: E402
from web.fairness.signing import public_key_bytes  # noqa: E402
from web.fairness.timestamps import rfc3339  # noqa: E402

TARGET_SECONDS = 2.0
# One collected entry in this many is excluded.
EXCLUDED_EVERY = 10
# The server reads stored leaves for a proof in batches of this many (web.certificates.pages).
PROOF_BATCH = 4096
ORIGIN = "bench.cleack.local/log"
WITNESS_NAME = "bench/witness"
TITLE = "Benchmark giveaway"
SOURCES: list[dict[str, Any]] = [{"kind": "post", "platform": "sandbox", "post_id": "bench", "post_url": None}]
# The sandbox beacon's genesis (2026-01-01T00:00:00Z) and period; a draw waits for the first round after 6 s.
GENESIS = 1767225600
PERIOD = 3
MARGIN = datetime.timedelta(seconds=6)
CONFIG: dict[str, Any] = {
    "filters": {"min_followers": 100, "exclude_suspicious": True, "exclude_businesses": False},
    "rules": {
        "require_like": True,
        "require_comment": True,
        "require_follow": False,
        "comment_keywords": ["amazing", "win"],
        "min_mentions": 0,
        "one_entry_per_user": True,
    },
    "winners_count": 3,
    "alternates_count": 2,
}

Row = tuple[str, str, str, str]


def collected_rows(count: int) -> list[Row]:
    """Every collected entry in canonical order: user ids and comment ids of fixed width sort as generated."""
    return [("sandbox", f"{10_000_000 + i}", f"fan_{i}", f"17{i:015d}") for i in range(count)]


def verdict_of(number: int) -> str:
    if number % EXCLUDED_EVERY != EXCLUDED_EVERY - 1:
        return ELIGIBLE
    return EXCLUSION_REASONS[number // EXCLUDED_EVERY % len(EXCLUSION_REASONS)]


def best(repeat: int, step: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - started)
    return min(times), result


def whole_seconds(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(microsecond=0)


def figure(label: str, seconds: float, unit: str = "s", note: str = "") -> None:
    value = f"{seconds * 1000:>10.3f} ms" if unit == "ms" else f"{seconds:>10.3f} s "
    print(f"  {label:<48}{value}{'  ' + note if note else ''}", flush=True)


@dataclass
class Entries:
    """The collected entries with their salts and verdicts, and their stored leaves (as draw_participants)."""

    rows: list[Row]
    salts: list[bytes]
    verdicts: list[str]
    leaves: list[bytes]
    collected_leaves: list[bytes]

    def tree_rows(self) -> list[tuple[str, str, str, str, bytes, str]]:
        return [(*row, salt, verdict) for row, salt, verdict in zip(self.rows, self.salts, self.verdicts, strict=True)]

    def entry_rows(self) -> Iterator[EntryRow]:
        """entries.csv's rows as a verifier reads them, made one at a time."""
        for row, salt, verdict in zip(self.rows, self.salts, self.verdicts, strict=True):
            eligible = verdict == ELIGIBLE
            yield EntryRow(Entry(*row), eligible, None if eligible else verdict, salt=salt)

    def eligible_positions(self) -> list[int]:
        return [number for number, verdict in enumerate(self.verdicts) if verdict == ELIGIBLE]


@dataclass
class Log:
    """A log being written: its records oldest first and their heads."""

    key: Ed25519PrivateKey
    records: list[dict[str, Any]]
    heads: list[bytes]

    def append(self, kind: str, draw_id: uuid.UUID, at: datetime.datetime, **members: Any) -> dict[str, Any]:
        record = build_record(
            kind, origin=ORIGIN, seq=len(self.records) + 1, draw_id=draw_id, at=at, signing_key=self.key, **members
        )
        self.records.append(record)
        self.heads.append(next_head(self.heads[-1], bytes.fromhex(record["record_hash"])))
        return record

    def open(self, draw_id: uuid.UUID, chain: ChainInfo, at: datetime.datetime) -> dict[str, Any]:
        return self.append(
            "opened",
            draw_id,
            at,
            draw={"title": TITLE, "platforms": ["sandbox"], "sources": SOURCES, "created_at": rfc3339(at)},
            config=CONFIG,
            blacklist={"sha256": hashlib.sha256(b"[]").hexdigest(), "count": 0},
            scheduled_at=None,
            subjects=subjects(SOURCES),
            beacon={"chain_hash": chain.chain_hash},
        )


def sandbox_chain(secret: int) -> ChainInfo:
    public_key = bls_public_key(secret)
    chain_hash = hashlib.sha256(public_key + GENESIS.to_bytes(8, "big") + PERIOD.to_bytes(8, "big")).hexdigest()
    return ChainInfo(chain_hash, public_key.hex(), PERIOD, GENESIS, BLS_UNCHAINED_G1, "cleack-sandbox")


def two_roots_from_stored_leaves(leaves: Sequence[bytes], collected: Sequence[bytes], verdicts: Sequence[str]) -> Any:
    """What the seal does in the worker (web.draws.selection.SealedEntries): PostgreSQL hands over each entry's
    salted leaf and its verdict's leaf in batches; Python only builds the two trees."""
    eligible_tree, collected_tree = MerkleBuilder(), MerkleBuilder()
    for start in range(0, len(leaves), STREAM_BATCH):
        end = start + STREAM_BATCH
        collected_tree.add_leaf_hashes(collected[start:end])
        eligible_tree.add_leaf_hashes(
            [leaf for leaf, verdict in zip(leaves[start:end], verdicts[start:end], strict=True) if verdict == ELIGIBLE]
        )
    return eligible_tree.root(), collected_tree.root()


def audit_path(leaves: Sequence[bytes], index: int) -> InclusionProofBuilder:
    """One leaf's audit path, as the server builds it while the stored leaves stream past."""
    builder = InclusionProofBuilder(index)
    for start in range(0, len(leaves), PROOF_BATCH):
        builder.add_leaf_hashes(leaves[start : start + PROOF_BATCH])
    return builder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000, help="collected entries (one in ten excluded)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    repeat = args.repeat

    rows = collected_rows(args.entries)
    verdicts = [verdict_of(number) for number in range(len(rows))]
    salt_key = new_secret()
    salts_seconds, salts = best(1, lambda: derive_salts(salt_key, rows))
    leaves = salted_leaf_hashes(rows, salts)
    entries = Entries(rows, salts, verdicts, leaves, collected_leaf_hashes(leaves, verdicts))
    tree_rows = entries.tree_rows()

    key = generate_signing_key()
    witness_key = Ed25519PrivateKey.generate()
    witness = verifier_key(WITNESS_NAME, COSIGNATURE_V1, public_key_bytes(witness_key))
    bls_secret = bls_secret_from_seed(hashlib.sha256(b"cleack bench sandbox beacon").digest())
    chain = sandbox_chain(bls_secret)
    now = whole_seconds(datetime.datetime.now(datetime.UTC))
    keys = parse_key_set(key_set([key_record(key, now - datetime.timedelta(days=1))]))
    draw_id = uuid.uuid4()
    opened_at = now - datetime.timedelta(minutes=10)
    log = Log(key, [], [ZERO_HEAD])
    log.open(uuid.uuid4(), chain, opened_at - datetime.timedelta(minutes=1))
    opened = log.open(draw_id, chain, opened_at)

    def roots() -> DrawTreesBuilder:
        trees = DrawTreesBuilder()
        trees.add_rows(tree_rows)
        return trees

    roots_seconds, trees = best(repeat, roots)
    stored_seconds, stored_roots = best(
        repeat, lambda: two_roots_from_stored_leaves(entries.leaves, entries.collected_leaves, entries.verdicts)
    )
    assert stored_roots == (trees.merkle_root(), trees.collected_root())
    counts = trees.counts()

    sealed_at = now
    round_ = chain.round_at(sealed_at + MARGIN) + 1

    def seal() -> tuple[dict[str, Any], str, str]:
        """The sealed record, one more record after it, the log's signed checkpoint and the witness's cosignature."""
        del log.records[2:], log.heads[3:]
        sealed = log.append(
            "sealed",
            draw_id,
            sealed_at,
            opened=opened["record_hash"],
            counts=counts,
            merkle_root=trees.merkle_root().hex(),
            collected_root=trees.collected_root().hex(),
            beacon={"chain_hash": chain.chain_hash, "round": round_},
        )
        log.open(uuid.uuid4(), chain, sealed_at + datetime.timedelta(seconds=1))
        size = len(log.records)
        note = sign_checkpoint(ORIGIN, size, log.heads[size], key)
        cosigned_at = int(sealed_at.timestamp()) + 2
        return (
            sealed,
            note,
            cosign(checkpoint_text(ORIGIN, size, log.heads[size]), WITNESS_NAME, witness_key, cosigned_at),
        )

    seal_seconds, (sealed, note, cosignature) = best(repeat, seal)
    size = len(log.records)
    signature = sign_round(bls_secret, round_)
    beacon = beacon_record(chain, BeaconRound(round_, signature.hex(), randomness_of(signature).hex()))

    def select() -> Any:
        return select_winners_v2(
            sealed_record_hash=bytes.fromhex(sealed["record_hash"]),
            randomness=randomness_of(signature),
            eligible=trees.eligible,
            winners_count=CONFIG["winners_count"],
            alternates_count=CONFIG["alternates_count"],
        )

    select_seconds, selection = best(repeat, select)
    positions = entries.eligible_positions()
    completed_at = chain.time_of(round_) + datetime.timedelta(seconds=1)

    def picks(indices: list[int]) -> list[SaltedPick]:
        return [SaltedPick(index, Entry(*rows[positions[index]]), salts[positions[index]]) for index in indices]

    def certify() -> dict[str, Any]:
        return build_certificate_v2(
            draw=DrawFacts(draw_id, TITLE, ["sandbox"], SOURCES, opened_at, sealed_at, completed_at),
            config=CONFIG,
            counts=counts,
            merkle_root=trees.merkle_root(),
            collected_root=trees.collected_root(),
            opened=opened,
            sealed=sealed,
            log=LogProof(
                origin=ORIGIN,
                head_before_seal=log.heads[sealed["seq"] - 1],
                following=[bytes.fromhex(record["record_hash"]) for record in log.records[sealed["seq"] : size]],
                checkpoint=note,
                cosignatures=[cosignature],
                witnesses=[witness.text],
            ),
            beacon=beacon,
            winners=picks(selection.winner_indices),
            alternates=picks(selection.alternate_indices),
            signing_key=key,
            issued_at=completed_at,
        )

    certify_seconds, certificate = best(repeat, certify)
    excluded = counts["participants"] - counts["eligible"]
    print(
        f"cleack-draw-v2, {counts['participants']:,} collected entries"
        f" ({counts['eligible']:,} eligible, {excluded:,} excluded)"
    )
    print(f"  best of {repeat}:")
    figure("two roots from stored leaves (the seal's pass)", stored_seconds, note="(SQL hashed the leaves)")
    figure("two roots from the entries and salts", roots_seconds, note="(every leaf hashed in Python)")
    figure("selection (3 + 2)", select_seconds, "ms")
    figure("certificate (checks incl. BLS, hash, sign)", certify_seconds, "ms")
    figure("sealed record + checkpoint + cosignature", seal_seconds, "ms")
    for label, roots_time in (
        ("total in the worker (stored leaves)", stored_seconds),
        ("total hashing every leaf in Python", roots_seconds),
    ):
        total = roots_time + select_seconds + certify_seconds
        verdict = "meets" if total <= TARGET_SECONDS else "MISSES"
        figure(label, total, note=f"(roots + selection + certificate: {verdict} the {TARGET_SECONDS:.0f} s target)")
    figure("salts of every entry, run once", salts_seconds, note="(the engine derives them in SQL)")

    print("  verification, run once:")
    witnesses = [witness]
    verify_seconds, report = best(1, lambda: verify_certificate(certificate, keys=keys, witnesses=witnesses))
    assert report.ok, report.first_failure
    figure("verify the certificate alone", verify_seconds, "ms", f"({len(report.checks)} checks)")
    verify_seconds, report = best(
        1, lambda: verify_certificate(certificate, keys=keys, witnesses=witnesses, rows=entries.entry_rows())
    )
    assert report.ok, report.first_failure
    figure("verify with every collected entry", verify_seconds, note=f"({len(report.checks)} checks; rows in memory)")
    entries_csv = io.StringIO(newline="")
    write_entries_csv(entries_csv, entries.entry_rows(), salted=True)
    megabytes = entries_csv.tell() / 1_000_000

    def verify_file() -> Any:
        entries_csv.seek(0)
        return verify_certificate(certificate, keys=keys, witnesses=witnesses, rows=read_entries_csv(entries_csv))

    verify_seconds, report = best(1, verify_file)
    assert report.ok, report.first_failure
    figure("verify with entries.csv", verify_seconds, note=f"({megabytes:.0f} MB, parsing included)")

    winner = selection.winner_indices[0]
    eligible_leaves = [entries.leaves[position] for position in positions]
    prove_seconds, builder = best(1, lambda: audit_path(eligible_leaves, winner))
    winner_pick = picks([winner])[0]
    document = proof_document_v2(
        certificate["certificate_hash"],
        winner_pick.entry,
        winner_pick.salt,
        ELIGIBLE,
        tree="eligible",
        index=winner,
        tree_size=builder.tree_size,
        audit_path=builder.proof(),
    )
    check_seconds, report = best(1, lambda: verify_proof(parse_proof_document(document), certificate))
    assert report.ok, report.first_failure
    figure(f"eligible inclusion proof ({counts['eligible']:,} leaves)", prove_seconds, note="(stored leaves)")
    figure("  its check", check_seconds, "ms")
    excluded_at = len(rows) // 2 // EXCLUDED_EVERY * EXCLUDED_EVERY + EXCLUDED_EVERY - 1
    prove_seconds, builder = best(1, lambda: audit_path(entries.collected_leaves, excluded_at))
    document = proof_document_v2(
        certificate["certificate_hash"],
        Entry(*rows[excluded_at]),
        salts[excluded_at],
        verdicts[excluded_at],
        tree="collected",
        index=excluded_at,
        tree_size=builder.tree_size,
        audit_path=builder.proof(),
    )
    check_seconds, report = best(1, lambda: verify_proof(parse_proof_document(document), certificate))
    assert report.ok, report.first_failure
    figure(f"collected (exclusion) proof ({counts['participants']:,} leaves)", prove_seconds, note="(stored leaves)")
    figure("  its check", check_seconds, "ms")

    v1_figures(rows, verdicts, key, keys, now)


def v1_figures(rows: list[Row], verdicts: list[str], key: Ed25519PrivateKey, keys: Any, now: datetime.datetime) -> None:
    """A cleack-draw-v1 certificate over the same eligible entries: what `cleack verify` still checks."""
    eligible = [row for row, verdict in zip(rows, verdicts, strict=True) if verdict == ELIGIBLE]
    builder = MerkleBuilder()
    builder.add_rows(eligible)
    merkle_root = builder.root()
    draw_id, secret = uuid.uuid4(), new_secret()
    selection = select_winners(
        secret=secret,
        merkle_root=merkle_root,
        draw_id=draw_id,
        eligible=len(eligible),
        winners_count=CONFIG["winners_count"],
        alternates_count=CONFIG["alternates_count"],
    )

    def picks(indices: list[int]) -> list[Pick]:
        return [Pick(index, Entry(*eligible[index])) for index in indices]

    certificate = build_certificate(
        draw=DrawFacts(draw_id, TITLE, ["sandbox"], SOURCES, now, now, now),
        config=CONFIG,
        participants=len(eligible),
        excluded={},
        eligible=len(eligible),
        merkle_root=merkle_root,
        secret=secret,
        winners=picks(selection.winner_indices),
        alternates=picks(selection.alternate_indices),
        signing_key=key,
        issued_at=now,
    )
    print(f"cleack-draw-v1 (verified, no longer issued), {len(eligible):,} eligible entries, run once:")
    verify_seconds, report = best(1, lambda: verify_certificate(certificate, keys=keys))
    assert report.ok, report.first_failure
    figure("verify the certificate alone", verify_seconds, "ms", f"({len(report.checks)} checks)")
    verify_seconds, report = best(
        1, lambda: verify_certificate(certificate, keys=keys, entries=(Entry(*row) for row in eligible))
    )
    assert report.ok, report.first_failure
    figure("verify with every eligible entry", verify_seconds, note=f"({len(report.checks)} checks)")


if __name__ == "__main__":
    main()
