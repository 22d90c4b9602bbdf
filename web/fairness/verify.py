"""Re-checking a certificate from nothing but itself, and optionally the key set, the entries, the chain, a proof."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from web.fairness.canonical import CanonicalJSONError
from web.fairness.certificate import certificate_hash, select_winners
from web.fairness.entries import Entry, leaf_hash
from web.fairness.merkle import MerkleBuilder, verify_inclusion
from web.fairness.sampling import ALGORITHM, Beacon
from web.fairness.signing import PublishedKey, signature_is_valid
from web.fairness.timestamps import parse_rfc3339

_HEX64 = re.compile(r"[0-9a-f]{64}")
_ENTRY_FIELDS = ("platform", "platform_user_id", "username", "entry_id")
# Entries are hashed in batches of this many rows through MerkleBuilder's fast path.
_BATCH = 4096


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str


@dataclass
class VerificationReport:
    checks: list[Check] = field(default_factory=list)
    # What was not checked, and how to check it.
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def first_failure(self) -> Check | None:
        return next((check for check in self.checks if not check.ok), None)

    def add(self, name: str, ok: bool, message: str) -> None:
        self.checks.append(Check(name, ok, message))

    def extend(self, other: VerificationReport) -> None:
        self.checks.extend(other.checks)
        self.notes.extend(other.notes)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def _time_problem(value: object, name: str) -> list[str]:
    if isinstance(value, str):
        try:
            parse_rfc3339(value)
        except ValueError:
            pass
        else:
            return []
    return [f"{name} is not an RFC 3339 time"]


def _pick_problems(picks: object, name: str) -> list[str]:
    if not isinstance(picks, list):
        return [f"{name} is not a list"]
    problems = []
    for number, pick in enumerate(picks, start=1):
        where = f"{name}[{number}]"
        if not isinstance(pick, dict):
            problems.append(f"{where} is not an object")
            continue
        if not _is_int(pick.get("position")) or not _is_int(pick.get("index")):
            problems.append(f"{where}: position and index must be integers")
        if not _is_hex64(pick.get("leaf_hash")):
            problems.append(f"{where}: leaf_hash must be 64 lowercase hex digits")
        if not all(isinstance(pick.get(name), str) for name in _ENTRY_FIELDS):
            problems.append(f"{where}: {', '.join(_ENTRY_FIELDS)} must be strings")
    return problems


def structure_problems(cert: object) -> list[str]:
    """What keeps the document from being read as a certificate at all."""
    if not isinstance(cert, dict):
        return ["the certificate is not a JSON object"]
    problems = []
    if cert.get("algorithm") != ALGORITHM:
        problems.append(f"algorithm is {cert.get('algorithm')!r}; this verifier knows {ALGORITHM!r}")
    draw = cert.get("draw")
    if not isinstance(draw, dict):
        problems.append("draw is not an object")
    else:
        try:
            uuid.UUID(str(draw.get("id")))
        except ValueError:
            problems.append("draw.id is not a UUID")
        for name in ("created_at", "started_at", "completed_at"):
            problems += _time_problem(draw.get(name), f"draw.{name}")
    config = cert.get("config")
    if not isinstance(config, dict) or not all(
        _is_int(config.get(name)) and config[name] >= 0 for name in ("winners_count", "alternates_count")
    ):
        problems.append("config must give winners_count and alternates_count as non-negative integers")
    counts = cert.get("counts")
    if (
        not isinstance(counts, dict)
        or not all(_is_int(counts.get(name)) and counts[name] >= 0 for name in ("participants", "eligible"))
        or not isinstance(counts.get("excluded"), dict)
        or not all(_is_int(value) and value >= 0 for value in counts["excluded"].values())
    ):
        problems.append("counts must give participants, eligible and excluded (by reason) as non-negative integers")
    for name in ("merkle_root", "commitment", "secret", "seed", "certificate_hash"):
        if not _is_hex64(cert.get(name)):
            problems.append(f"{name} must be 64 lowercase hex digits")
    if cert.get("previous_certificate_hash") is not None and not _is_hex64(cert.get("previous_certificate_hash")):
        problems.append("previous_certificate_hash must be null or 64 lowercase hex digits")
    beacon = cert.get("beacon")
    if beacon is not None:
        try:
            Beacon.from_json(beacon)
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"beacon: {exc}")
    problems += _pick_problems(cert.get("winners"), "winners")
    problems += _pick_problems(cert.get("alternates"), "alternates")
    problems += _time_problem(cert.get("issued_at"), "issued_at")
    if not isinstance(cert.get("key_id"), str) or not isinstance(cert.get("signature"), str):
        problems.append("key_id and signature must be strings")
    return problems


def verify_certificate(
    cert: object,
    *,
    keys: Mapping[str, PublishedKey] | None = None,
    entries: Iterable[Entry] | None = None,
    previous: Mapping[str, Any] | None = None,
) -> VerificationReport:
    """Every check a certificate allows; `entries` are the eligible ones, in canonical order."""
    report = VerificationReport()
    problems = structure_problems(cert)
    if problems:
        report.add("format", False, "; ".join(problems))
        return report
    assert isinstance(cert, dict)
    report.add("format", True, f"a {ALGORITHM} certificate with every field")
    _check_hash(report, cert)
    secret = bytes.fromhex(cert["secret"])
    report.add(
        "commitment",
        hashlib.sha256(secret).hexdigest() == cert["commitment"],
        "SHA-256 of the revealed secret is the commitment published at creation"
        if hashlib.sha256(secret).hexdigest() == cert["commitment"]
        else "SHA-256 of the revealed secret is not the commitment",
    )
    counts = cert["counts"]
    excluded = sum(counts["excluded"].values())
    report.add(
        "counts",
        counts["participants"] == counts["eligible"] + excluded,
        f"{counts['participants']} participants = {counts['eligible']} eligible + {excluded} excluded",
    )
    _check_selection(report, cert)
    _check_winner_leaves(report, cert)
    if keys is None:
        report.notes.append("signature not checked: give the key set published at /.well-known/cleack-signing-key")
    else:
        _check_signature(report, cert, keys)
    if previous is not None:
        _check_previous(report, cert, previous)
    if entries is not None:
        _check_entries(report, cert, entries)
    return report


def _check_hash(report: VerificationReport, cert: Mapping[str, Any]) -> None:
    try:
        digest = certificate_hash(cert)
    except CanonicalJSONError as exc:
        report.add("certificate hash", False, f"the certificate has no canonical form: {exc}")
        return
    if digest == cert["certificate_hash"]:
        report.add("certificate hash", True, f"SHA-256 of the canonical JSON is {digest}")
    else:
        report.add("certificate hash", False, f"SHA-256 of the canonical JSON is {digest}, not the stated one")


def _check_selection(report: VerificationReport, cert: Mapping[str, Any]) -> None:
    beacon = None if cert["beacon"] is None else Beacon.from_json(cert["beacon"])
    selection = select_winners(
        secret=bytes.fromhex(cert["secret"]),
        merkle_root=bytes.fromhex(cert["merkle_root"]),
        draw_id=uuid.UUID(cert["draw"]["id"]),
        eligible=cert["counts"]["eligible"],
        winners_count=cert["config"]["winners_count"],
        alternates_count=cert["config"]["alternates_count"],
        beacon=beacon,
    )
    seed_matches = selection.seed.hex() == cert["seed"]
    source = "" if beacon is None else f" and beacon {beacon.source} round {beacon.round}"
    report.add(
        "seed",
        seed_matches,
        f"HMAC-SHA256(secret, merkle_root ‖ draw id{source}) "
        + ("is the stated seed" if seed_matches else f"is {selection.seed.hex()}, not the stated seed"),
    )
    stated = ([pick["index"] for pick in cert["winners"]], [pick["index"] for pick in cert["alternates"]])
    positions_ok = all(
        [pick["position"] for pick in cert[name]] == list(range(1, len(cert[name]) + 1))
        for name in ("winners", "alternates")
    )
    derived = (selection.winner_indices, selection.alternate_indices)
    eligible = cert["counts"]["eligible"]
    if stated == derived and positions_ok:
        report.add(
            "selection",
            True,
            f"winners at leaf indices {derived[0]} and alternates at {derived[1]}, "
            f"re-drawn from the seed among {eligible} eligible entries",
        )
    elif stated == derived:
        report.add("selection", False, "positions must run 1, 2, 3… in draw order")
    else:
        report.add(
            "selection",
            False,
            f"the seed draws winners {derived[0]} and alternates {derived[1]} among {eligible} eligible entries; "
            f"the certificate lists {stated[0]} and {stated[1]}",
        )


def _entry_of(pick: Mapping[str, Any]) -> Entry:
    return Entry(pick["platform"], pick["platform_user_id"], pick["username"], pick["entry_id"])


def _check_winner_leaves(report: VerificationReport, cert: Mapping[str, Any]) -> None:
    wrong = [
        f"{name} {pick['position']}"
        for name in ("winners", "alternates")
        for pick in cert[name]
        if _entry_of(pick).leaf_hash.hex() != pick["leaf_hash"]
    ]
    report.add(
        "winner leaves",
        not wrong,
        "each listed leaf_hash is the hash of its entry's fields"
        if not wrong
        else f"leaf_hash does not match the entry's fields for {', '.join(wrong)}",
    )


def _check_signature(report: VerificationReport, cert: Mapping[str, Any], keys: Mapping[str, PublishedKey]) -> None:
    key = keys.get(cert["key_id"])
    if key is None:
        report.add("signature", False, f"key {cert['key_id']} is not in the key set")
        return
    issued_at = parse_rfc3339(cert["issued_at"])
    if issued_at < key.created_at or (key.retired_at is not None and issued_at > key.retired_at):
        report.add("signature", False, f"key {key.key_id} was not in service at {cert['issued_at']}")
        return
    valid = signature_is_valid(key.public_key, cert["certificate_hash"], cert["signature"])
    report.add(
        "signature",
        valid,
        f"Ed25519 signature by key {key.key_id} over the certificate hash"
        if valid
        else f"the signature is not key {key.key_id}'s over the certificate hash",
    )


def _check_previous(report: VerificationReport, cert: Mapping[str, Any], previous: Mapping[str, Any]) -> None:
    try:
        digest = certificate_hash(previous)
    except CanonicalJSONError as exc:
        report.add("previous certificate", False, f"the previous certificate has no canonical form: {exc}")
        return
    linked = cert["previous_certificate_hash"] == digest
    report.add(
        "previous certificate",
        linked,
        f"previous_certificate_hash is the hash of the given previous certificate ({digest})"
        if linked
        else f"previous_certificate_hash is {cert['previous_certificate_hash']}, the given previous one is {digest}",
    )


def _check_entries(report: VerificationReport, cert: Mapping[str, Any], entries: Iterable[Entry]) -> None:
    picks = {pick["index"]: (label, pick) for label in ("winners", "alternates") for pick in cert[label]}
    found: dict[int, Entry] = {}
    builder = MerkleBuilder()
    batch: list[tuple[str, str, str, str]] = []
    disorder: str | None = None
    previous_key: tuple[str, str, str] | None = None
    for index, entry in enumerate(entries):
        key = entry.key
        if disorder is None and previous_key is not None and key <= previous_key:
            kind = "repeats" if key == previous_key else "comes before"
            disorder = f"eligible entry {index + 1} {kind} the one before it in canonical order: {key}"
        previous_key = key
        if index in picks:
            found[index] = entry
        batch.append(entry.fields)
        if len(batch) == _BATCH:
            builder.add_rows(batch)
            batch = []
    builder.add_rows(batch)
    report.add(
        "entries order",
        disorder is None,
        disorder or "eligible entries are in canonical order (platform, platform_user_id, entry_id), no repeats",
    )
    eligible = cert["counts"]["eligible"]
    report.add(
        "entries count",
        builder.count == eligible,
        f"{builder.count} eligible entries"
        + ("" if builder.count == eligible else f", the certificate says {eligible}"),
    )
    root = builder.root().hex()
    report.add(
        "merkle root",
        root == cert["merkle_root"],
        f"the entries' Merkle root is {root}" + ("" if root == cert["merkle_root"] else ", not the certificate's"),
    )
    wrong = [
        f"{label} {pick['position']} (index {index})"
        for index, (label, pick) in sorted(picks.items())
        if found.get(index) != _entry_of(pick)
    ]
    report.add(
        "winners in entries",
        not wrong,
        "each winner and alternate is the entry at its leaf index"
        if not wrong
        else f"not the entry at its leaf index: {', '.join(wrong)}",
    )


def verify_chain(certs: Sequence[Mapping[str, Any]]) -> VerificationReport:
    """Certificates oldest first: each one's previous_certificate_hash is the hash of the one before it."""
    report = VerificationReport()
    hashes: list[str] = []
    for number, cert in enumerate(certs, start=1):
        try:
            digest = certificate_hash(cert)
        except (CanonicalJSONError, AttributeError) as exc:
            report.add("chain", False, f"certificate {number} has no canonical form: {exc}")
            return report
        if cert.get("certificate_hash") != digest:
            report.add("chain", False, f"certificate {number}'s content does not hash to its certificate_hash")
            return report
        if hashes and cert.get("previous_certificate_hash") != hashes[-1]:
            report.add(
                "chain",
                False,
                f"certificate {number} ({digest[:16]}…) names {str(cert.get('previous_certificate_hash'))[:16]}… "
                f"as previous, but certificate {number - 1} is {hashes[-1][:16]}…",
            )
            return report
        hashes.append(digest)
    report.add("chain", bool(hashes), f"{len(hashes)} certificates, each linked to the one before it")
    return report


@dataclass(frozen=True)
class ProofDocument:
    certificate_hash: str
    entry: Entry
    index: int
    tree_size: int
    audit_path: list[bytes]


def inclusion_proof_document(
    certificate_hash: str, entry: Entry, index: int, tree_size: int, audit_path: Sequence[bytes]
) -> dict[str, Any]:
    """What a participant downloads to show their entry was counted."""
    return {
        "certificate_hash": certificate_hash,
        "leaf": {name: getattr(entry, name) for name in _ENTRY_FIELDS},
        "index": index,
        "tree_size": tree_size,
        "audit_path": [node.hex() for node in audit_path],
    }


def parse_proof_document(document: object) -> ProofDocument:
    """ValueError names what is missing or malformed."""
    if not isinstance(document, dict):
        raise ValueError("an inclusion proof is a JSON object")
    leaf, path = document.get("leaf"), document.get("audit_path")
    if not _is_hex64(document.get("certificate_hash")):
        raise ValueError("certificate_hash must be 64 lowercase hex digits")
    if not isinstance(leaf, dict) or not all(isinstance(leaf.get(name), str) for name in _ENTRY_FIELDS):
        raise ValueError(f"leaf must be an object with {', '.join(_ENTRY_FIELDS)} as strings")
    if not _is_int(document.get("index")) or not _is_int(document.get("tree_size")):
        raise ValueError("index and tree_size must be integers")
    if not isinstance(path, list) or not all(_is_hex64(node) for node in path):
        raise ValueError("audit_path must be a list of 64-hex-digit hashes")
    return ProofDocument(
        certificate_hash=document["certificate_hash"],
        entry=_entry_of(leaf),
        index=document["index"],
        tree_size=document["tree_size"],
        audit_path=[bytes.fromhex(node) for node in path],
    )


def verify_proof(proof: ProofDocument, cert: Mapping[str, Any]) -> VerificationReport:
    """Whether the proof's entry is a leaf of the certificate's Merkle tree."""
    report = VerificationReport()
    report.add(
        "proof certificate",
        proof.certificate_hash == cert["certificate_hash"],
        "the proof is for this certificate"
        if proof.certificate_hash == cert["certificate_hash"]
        else f"the proof is for certificate {proof.certificate_hash}",
    )
    eligible = cert["counts"]["eligible"]
    included = proof.tree_size == eligible and verify_inclusion(
        leaf_hash(*proof.entry.fields),
        proof.index,
        proof.tree_size,
        proof.audit_path,
        bytes.fromhex(cert["merkle_root"]),
    )
    entry = proof.entry
    report.add(
        "inclusion",
        included,
        f"{entry.username} ({entry.platform} {entry.platform_user_id}, entry {entry.entry_id}) is leaf {proof.index} "
        f"of the {eligible} eligible entries"
        if included
        else f"the audit path does not lead from {entry.username}'s entry at index {proof.index} "
        f"of {proof.tree_size} to the certificate's Merkle root",
    )
    return report
