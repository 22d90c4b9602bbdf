"""Re-checking a certificate from nothing but itself, and optionally the key set, the entries, the chain, a proof.

`verify_certificate` reads the certificate's `algorithm`: cleack-draw-v1 is checked here, cleack-draw-v2 by
verify_v2 (docs/fairness.md).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from web.fairness.canonical import CanonicalJSONError
from web.fairness.certificate import certificate_hash, select_winners
from web.fairness.certificate_v2 import ALGORITHM_V2
from web.fairness.checks import (
    Check,
    VerificationReport,
    certificate_signature_problem,
    check_certificate_hash,
    check_previous,
    check_seed_and_picks,
    check_winner_leaves,
    draw_problems,
    entry_of,
    is_hex64,
    is_int,
    pick_problems,
    signature_not_checked,
    time_problem,
)
from web.fairness.entries import Entry
from web.fairness.entries_csv import EntryRow
from web.fairness.note import VerifierKey
from web.fairness.proofs import (
    ProofDocument,
    inclusion_proof_document,
    parse_proof_document,
    proof_document_v2,
    verify_proof,
)
from web.fairness.sampling import ALGORITHM, Beacon
from web.fairness.signing import PublishedKey
from web.fairness.verify_entries import check_eligible_entries, check_rows_v1
from web.fairness.verify_v2 import verify_certificate_v2

__all__ = [
    "Check",
    "ProofDocument",
    "VerificationReport",
    "inclusion_proof_document",
    "parse_proof_document",
    "proof_document_v2",
    "structure_problems",
    "verify_certificate",
    "verify_chain",
    "verify_proof",
]

ALGORITHMS = (ALGORITHM, ALGORITHM_V2)
# Entries are hashed in batches of this many rows through MerkleBuilder's fast path.
_BATCH = 4096


def verify_certificate(
    cert: object,
    *,
    keys: Mapping[str, PublishedKey] | None = None,
    entries: Iterable[Entry] | None = None,
    rows: Iterable[EntryRow] | None = None,
    previous: Mapping[str, Any] | None = None,
    witnesses: Sequence[VerifierKey] | None = None,
    log_records: Sequence[Mapping[str, Any]] | None = None,
) -> VerificationReport:
    """Every check the certificate and the given material allow.

    `entries`: the eligible entries in canonical order (a v1 certificate only: v2 leaves are salted).
    `rows`: every row of entries.csv, eligible or not, in canonical order; v2 rows carry their salt.
    `witnesses`: witness verifier keys the caller trusts (v2); `log_records`: a log extract, oldest first (v2).
    Without `keys` the signature is reported as not checked, and the report is not ok.
    """
    if isinstance(cert, dict) and cert.get("algorithm") == ALGORITHM_V2:
        return verify_certificate_v2(
            cert, keys=keys, entries=entries, rows=rows, previous=previous, witnesses=witnesses, log_records=log_records
        )
    report = VerificationReport()
    problems = structure_problems(cert)
    if problems:
        report.add("format", False, "; ".join(problems))
        return report
    assert isinstance(cert, dict)
    report.add("format", True, f"a {ALGORITHM} certificate with every field")
    check_certificate_hash(report, cert)
    secret = bytes.fromhex(cert["secret"])
    committed = hashlib.sha256(secret).hexdigest() == cert["commitment"]
    report.add(
        "commitment",
        committed,
        "SHA-256 of the revealed secret is the commitment published at creation"
        if committed
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
    check_winner_leaves(report, cert, lambda pick: entry_of(pick).leaf_hash, "the hash")
    if keys is None:
        signature_not_checked(report, "the certificate's")
    else:
        problem = certificate_signature_problem(cert, keys)
        report.add(
            "signature",
            problem is None,
            problem or f"Ed25519 signature by key {cert['key_id']} over the certificate hash",
        )
    if previous is not None:
        check_previous(report, cert, previous)
    if rows is not None:
        check_rows_v1(report, cert, rows)
    elif entries is not None:
        check_eligible_entries(report, cert, entries)
    if witnesses or log_records:
        report.notes.append("witnesses and log records are not part of a cleack-draw-v1 certificate: not used")
    return report


def structure_problems(cert: object) -> list[str]:
    """What keeps the document from being read as a v1 certificate at all."""
    if not isinstance(cert, dict):
        return ["the certificate is not a JSON object"]
    problems = []
    if cert.get("algorithm") != ALGORITHM:
        problems.append(f"algorithm is {cert.get('algorithm')!r}; this verifier knows {' and '.join(ALGORITHMS)}")
    problems += draw_problems(cert.get("draw"))
    config = cert.get("config")
    if not isinstance(config, dict) or not all(
        is_int(config.get(name)) and config[name] >= 0 for name in ("winners_count", "alternates_count")
    ):
        problems.append("config must give winners_count and alternates_count as non-negative integers")
    counts = cert.get("counts")
    if (
        not isinstance(counts, dict)
        or not all(is_int(counts.get(name)) and counts[name] >= 0 for name in ("participants", "eligible"))
        or not isinstance(counts.get("excluded"), dict)
        or not all(is_int(value) and value >= 0 for value in counts["excluded"].values())
    ):
        problems.append("counts must give participants, eligible and excluded (by reason) as non-negative integers")
    for name in ("merkle_root", "commitment", "secret", "seed", "certificate_hash"):
        if not is_hex64(cert.get(name)):
            problems.append(f"{name} must be 64 lowercase hex digits")
    if cert.get("previous_certificate_hash") is not None and not is_hex64(cert.get("previous_certificate_hash")):
        problems.append("previous_certificate_hash must be null or 64 lowercase hex digits")
    beacon = cert.get("beacon")
    if beacon is not None:
        try:
            Beacon.from_json(beacon)
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"beacon: {exc}")
    problems += pick_problems(cert.get("winners"), "winners")
    problems += pick_problems(cert.get("alternates"), "alternates")
    problems += time_problem(cert.get("issued_at"), "issued_at")
    if not isinstance(cert.get("key_id"), str) or not isinstance(cert.get("signature"), str):
        problems.append("key_id and signature must be strings")
    return problems


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
    source = "" if beacon is None else f" and beacon {beacon.source} round {beacon.round}"
    check_seed_and_picks(report, cert, selection, f"HMAC-SHA256(secret, merkle_root ‖ draw id{source})")


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
