"""Inclusion proofs a participant downloads: v1's eligible tree, v2's eligible and collected trees (§H)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from web.fairness.certificate_v2 import ALGORITHM_V2
from web.fairness.checks import ENTRY_FIELDS, VerificationReport, is_hex64, is_int
from web.fairness.entries import ELIGIBLE, VERDICTS, Entry, collected_leaf, leaf_hash, leaf_v2
from web.fairness.merkle import verify_inclusion

TREES = ("eligible", "collected")
_SALT = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class ProofDocument:
    certificate_hash: str
    entry: Entry
    index: int
    tree_size: int
    audit_path: list[bytes]
    # v2 only: the entry's salt, its verdict and which tree the path climbs; None in a v1 proof.
    salt: bytes | None = None
    verdict: str | None = None
    tree: str | None = None


def inclusion_proof_document(
    certificate_hash: str, entry: Entry, index: int, tree_size: int, audit_path: Sequence[bytes]
) -> dict[str, Any]:
    """What a participant downloads to show their entry was counted (a v1 certificate)."""
    return {
        "certificate_hash": certificate_hash,
        "leaf": {name: getattr(entry, name) for name in ENTRY_FIELDS},
        "index": index,
        "tree_size": tree_size,
        "audit_path": [node.hex() for node in audit_path],
    }


def proof_document_v2(
    certificate_hash: str,
    entry: Entry,
    salt: bytes,
    verdict: str,
    *,
    tree: str,
    index: int,
    tree_size: int,
    audit_path: Sequence[bytes],
) -> dict[str, Any]:
    """A v2 proof: in the `eligible` tree (index among the eligible entries) or the `collected` tree (among all)."""
    if tree not in TREES:
        raise ValueError(f"tree is eligible or collected, not {tree!r}")
    if verdict not in VERDICTS or (tree == "eligible" and verdict != ELIGIBLE):
        raise ValueError(f"{verdict!r} is not a verdict this tree holds")
    if len(salt) != 16:
        raise ValueError("a salt is 16 bytes")
    return {
        "certificate_hash": certificate_hash,
        "tree": tree,
        "leaf": {**{name: getattr(entry, name) for name in ENTRY_FIELDS}, "salt": salt.hex()},
        "verdict": verdict,
        "index": index,
        "tree_size": tree_size,
        "audit_path": [node.hex() for node in audit_path],
    }


def parse_proof_document(document: object) -> ProofDocument:
    """A v1 or v2 proof document; ValueError names what is missing or malformed."""
    if not isinstance(document, dict):
        raise ValueError("an inclusion proof is a JSON object")
    leaf, path = document.get("leaf"), document.get("audit_path")
    if not is_hex64(document.get("certificate_hash")):
        raise ValueError("certificate_hash must be 64 lowercase hex digits")
    if not isinstance(leaf, dict) or not all(isinstance(leaf.get(name), str) for name in ENTRY_FIELDS):
        raise ValueError(f"leaf must be an object with {', '.join(ENTRY_FIELDS)} as strings")
    if not is_int(document.get("index")) or not is_int(document.get("tree_size")):
        raise ValueError("index and tree_size must be integers")
    if not isinstance(path, list) or not all(is_hex64(node) for node in path):
        raise ValueError("audit_path must be a list of 64-hex-digit hashes")
    salt = verdict = tree = None
    if "tree" in document:
        tree, verdict, salt_text = document["tree"], document.get("verdict"), leaf.get("salt")
        if tree not in TREES:
            raise ValueError("tree must be eligible or collected")
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}")
        if not isinstance(salt_text, str) or not _SALT.fullmatch(salt_text):
            raise ValueError("leaf.salt must be 32 lowercase hex digits")
        salt = bytes.fromhex(salt_text)
    return ProofDocument(
        certificate_hash=document["certificate_hash"],
        entry=Entry(*(leaf[name] for name in ENTRY_FIELDS)),
        index=document["index"],
        tree_size=document["tree_size"],
        audit_path=[bytes.fromhex(node) for node in path],
        salt=salt,
        verdict=verdict,
        tree=tree,
    )


def verify_proof(proof: ProofDocument, cert: Mapping[str, Any]) -> VerificationReport:
    """Whether the proof's entry is a leaf of the certificate's tree: v1's, or v2's eligible or collected tree."""
    report = VerificationReport()
    report.add(
        "proof certificate",
        proof.certificate_hash == cert["certificate_hash"],
        "the proof is for this certificate"
        if proof.certificate_hash == cert["certificate_hash"]
        else f"the proof is for certificate {proof.certificate_hash}",
    )
    entry = proof.entry
    who = f"{entry.username} ({entry.platform} {entry.platform_user_id}, entry {entry.entry_id})"
    v2 = cert.get("algorithm") == ALGORITHM_V2
    if v2 != (proof.tree is not None):
        report.add(
            "inclusion",
            False,
            "a v2 certificate needs a v2 proof, with the entry's salt and verdict"
            if v2
            else "a v2 proof (with a salt) is for a v2 certificate; this one is v1",
        )
        return report
    counts = cert["counts"]
    if proof.tree is None or proof.tree == "eligible":
        leaf = leaf_hash(*entry.fields) if proof.salt is None else leaf_v2(entry, proof.salt)
        size, root, among = counts["eligible"], cert["merkle_root"], "eligible entries"
        valid_verdict = proof.verdict in (None, ELIGIBLE)
    else:
        assert proof.salt is not None and proof.verdict is not None
        leaf = collected_leaf(leaf_v2(entry, proof.salt), proof.verdict)
        size, root, among = counts["participants"], cert["collected_root"], "collected entries"
        valid_verdict = True
    included = (
        valid_verdict
        and proof.tree_size == size
        and verify_inclusion(leaf, proof.index, proof.tree_size, proof.audit_path, bytes.fromhex(root))
    )
    outcome = "" if proof.verdict in (None, ELIGIBLE) else f", excluded as {proof.verdict}"
    report.add(
        "inclusion",
        included,
        f"{who} is leaf {proof.index} of the {size} {among}{outcome}"
        if included
        else f"the audit path does not lead from {entry.username}'s entry at index {proof.index} "
        f"of {proof.tree_size} to the certificate's {'collected root' if proof.tree == 'collected' else 'Merkle root'}",
    )
    return report
