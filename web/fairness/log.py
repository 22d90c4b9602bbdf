"""The public log: signed records, the hash chain of their heads, signed checkpoints (docs/fairness.md)."""

from __future__ import annotations

import datetime
import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from web.fairness.canonical import CanonicalJSONError, canonical_json
from web.fairness.entries import EXCLUSION_REASONS
from web.fairness.note import ED25519_NOTE, VerifierKey, checkpoint_text, sign_note, verifier_key
from web.fairness.signing import (
    PublishedKey,
    key_id,
    public_key_bytes,
    sign_certificate_hash,
    signature_is_valid,
    signature_spelling_problem,
)
from web.fairness.timestamps import parse_rfc3339, rfc3339

ZERO_HEAD = bytes(32)
_HEX64 = re.compile(r"[0-9a-f]{64}")


def next_head(head: bytes, record_hash: bytes) -> bytes:
    """head(n) = SHA-256(0x03 ‖ head(n-1) ‖ record_hash(n)), both 32 bytes."""
    if len(head) != 32 or len(record_hash) != 32:
        raise ValueError("a head and a record hash are 32 bytes each")
    return hashlib.sha256(b"\x03" + head + record_hash).digest()


def fold_heads(head: bytes, record_hashes: Iterable[bytes]) -> bytes:
    """The head after appending `record_hashes`, in order, to a log whose head is `head`."""
    for record_hash in record_hashes:
        head = next_head(head, record_hash)
    return head


# Records (docs/fairness.md): small signed JSON objects, one per event of a draw.
KINDS = ("opened", "sealed", "certified", "failed", "cancelled")
FINAL_KINDS = ("certified", "failed", "cancelled")
COMMON_MEMBERS = ("log", "seq", "kind", "draw_id", "at", "key_id", "record_hash", "signature")
KIND_MEMBERS: dict[str, tuple[str, ...]] = {
    "opened": ("draw", "config", "blacklist", "scheduled_at", "subjects", "beacon"),
    "sealed": ("opened", "counts", "merkle_root", "collected_root", "beacon"),
    "certified": ("sealed", "certificate_hash"),
    "failed": ("stage", "reason"),
    "cancelled": ("stage",),
}
UNHASHED_MEMBERS = ("record_hash", "signature")
_OPENED_DRAW_MEMBERS = ("title", "platforms", "sources", "created_at")


def record_hash(record: Mapping[str, Any]) -> str:
    """hex(SHA-256(canonical JSON of the record without record_hash and signature))."""
    unsigned = {name: value for name, value in record.items() if name not in UNHASHED_MEMBERS}
    return hashlib.sha256(canonical_json(unsigned)).hexdigest()


def build_record(
    kind: str,
    *,
    origin: str,
    seq: int,
    draw_id: uuid.UUID | str,
    at: datetime.datetime,
    signing_key: Ed25519PrivateKey,
    **members: Any,
) -> dict[str, Any]:
    """The signed record; ValueError names what the kind's members lack or get wrong."""
    record: dict[str, Any] = {
        "log": origin,
        "seq": seq,
        "kind": kind,
        "draw_id": str(draw_id),
        "at": rfc3339(at),
        **members,
        "key_id": key_id(signing_key),
    }
    record["record_hash"] = record_hash(record)
    record["signature"] = sign_certificate_hash(signing_key, record["record_hash"])
    problems = record_problems(record)
    if problems:
        raise ValueError(f"not a {kind} record: {'; '.join(problems)}")
    return record


def record_problems(record: object, keys: Mapping[str, PublishedKey] | None = None) -> list[str]:
    """What is wrong with a record: its members, its record_hash, and its signature when the key set is given."""
    problems = record_form_problems(record)
    if problems:
        return problems
    assert isinstance(record, dict)
    try:
        digest = record_hash(record)
    except CanonicalJSONError as exc:
        return [f"no canonical form: {exc}"]
    if digest != record["record_hash"]:
        return [f"its content hashes to {digest}, not to its record_hash"]
    return [] if keys is None else record_signature_problems(record, keys)


def record_form_problems(record: object) -> list[str]:
    """Whether the record has its kind's members, each of the right type."""
    if not isinstance(record, dict):
        return ["a record is a JSON object"]
    kind = record.get("kind")
    if not isinstance(kind, str) or kind not in KIND_MEMBERS:
        return [f"kind is {kind!r}, not one of {', '.join(KINDS)}"]
    expected = set(COMMON_MEMBERS) | set(KIND_MEMBERS[kind])
    problems = []
    missing, extra = sorted(expected - set(record)), sorted(set(record) - expected)
    if missing:
        problems.append(f"{', '.join(missing)} missing")
    if extra:
        problems.append(f"unknown member(s) {', '.join(extra)}")
    if problems:
        return problems
    return _common_problems(record) + _KIND_CHECKS[kind](record)


def record_signature_problems(record: Mapping[str, Any], keys: Mapping[str, PublishedKey]) -> list[str]:
    """Whether the record's signature is its key's, that key being in service when the record was appended."""
    key = keys.get(record["key_id"])
    if key is None:
        return [f"key {record['key_id']} is not in the key set"]
    at = parse_rfc3339(record["at"])
    if at < key.created_at or (key.retired_at is not None and at > key.retired_at):
        return [f"key {key.key_id} was not in service at {record['at']}"]
    spelling = signature_spelling_problem(record["signature"])
    if spelling is not None:
        return [spelling]
    if not signature_is_valid(key.public_key, record["record_hash"], record["signature"]):
        return [f"the signature is not key {key.key_id}'s over the record_hash"]
    return []


def _common_problems(record: Mapping[str, Any]) -> list[str]:
    problems = []
    if not isinstance(record["log"], str) or not record["log"]:
        problems.append("log must name the log's origin")
    if not _is_int(record["seq"]) or record["seq"] < 1:
        problems.append("seq must be a positive integer")
    if not isinstance(record["draw_id"], str) or not _is_uuid(record["draw_id"]):
        problems.append("draw_id must be a lowercase hyphenated UUID")
    if not _is_time(record["at"]):
        problems.append("at must be an RFC 3339 time")
    if not isinstance(record["key_id"], str) or not isinstance(record["signature"], str):
        problems.append("key_id and signature must be strings")
    if not _is_hex64(record["record_hash"]):
        problems.append("record_hash must be 64 lowercase hex digits")
    return problems


def _opened_problems(record: Mapping[str, Any]) -> list[str]:
    problems = []
    draw = record["draw"]
    if not isinstance(draw, dict) or set(draw) != set(_OPENED_DRAW_MEMBERS):
        problems.append(f"draw must be an object with exactly {', '.join(_OPENED_DRAW_MEMBERS)}")
    elif not isinstance(draw["title"], str) or not _is_str_list(draw["platforms"]) or not _is_time(draw["created_at"]):
        problems.append("draw: title a string, platforms a list of strings, created_at an RFC 3339 time")
    elif not isinstance(draw["sources"], list) or not all(isinstance(source, dict) for source in draw["sources"]):
        problems.append("draw.sources must be a list of objects")
    if not isinstance(record["config"], dict):
        problems.append("config must be an object")
    blacklist = record["blacklist"]
    if not (
        isinstance(blacklist, dict)
        and set(blacklist) == {"sha256", "count"}
        and _is_hex64(blacklist["sha256"])
        and _is_count(blacklist["count"])
    ):
        problems.append('blacklist must be {"sha256": 64 hex digits, "count": n}')
    if record["scheduled_at"] is not None and not _is_time(record["scheduled_at"]):
        problems.append("scheduled_at must be null or an RFC 3339 time")
    found = record["subjects"]
    if not _is_str_list(found) or found != sorted(set(found)):
        problems.append("subjects must be a sorted list of distinct strings")
    beacon = record["beacon"]
    if not (isinstance(beacon, dict) and set(beacon) == {"chain_hash"} and _is_hex64(beacon["chain_hash"])):
        problems.append('beacon must be {"chain_hash": 64 hex digits}')
    return problems


def _sealed_problems(record: Mapping[str, Any]) -> list[str]:
    problems = []
    if not _is_hex64(record["opened"]):
        problems.append("opened must be the opened record's record_hash")
    problems += counts_problems(record["counts"])
    if not _is_hex64(record["merkle_root"]) or not _is_hex64(record["collected_root"]):
        problems.append("merkle_root and collected_root must be 64 lowercase hex digits")
    beacon = record["beacon"]
    if not (
        isinstance(beacon, dict)
        and set(beacon) == {"chain_hash", "round"}
        and _is_hex64(beacon["chain_hash"])
        and _is_int(beacon["round"])
        and beacon["round"] >= 1
    ):
        problems.append('beacon must be {"chain_hash": 64 hex digits, "round": a positive integer}')
    return problems


def _certified_problems(record: Mapping[str, Any]) -> list[str]:
    if _is_hex64(record["sealed"]) and _is_hex64(record["certificate_hash"]):
        return []
    return ["sealed and certificate_hash must be 64 lowercase hex digits"]


def _failed_problems(record: Mapping[str, Any]) -> list[str]:
    if isinstance(record["stage"], str) and isinstance(record["reason"], str):
        return []
    return ["stage and reason must be strings"]


def _cancelled_problems(record: Mapping[str, Any]) -> list[str]:
    return [] if isinstance(record["stage"], str) else ["stage must be a string"]


_KIND_CHECKS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "opened": _opened_problems,
    "sealed": _sealed_problems,
    "certified": _certified_problems,
    "failed": _failed_problems,
    "cancelled": _cancelled_problems,
}


def counts_problems(counts: object) -> list[str]:
    """`{participants, excluded: {reason: n}, eligible}` with participants = eligible + Σ excluded."""
    if not (
        isinstance(counts, dict)
        and set(counts) == {"participants", "excluded", "eligible"}
        and _is_count(counts["participants"])
        and _is_count(counts["eligible"])
        and isinstance(counts["excluded"], dict)
        and all(_is_count(value) for value in counts["excluded"].values())
    ):
        return ["counts must be {participants, excluded: {reason: n}, eligible}, non-negative integers"]
    unknown = sorted(set(counts["excluded"]).difference(EXCLUSION_REASONS))
    if unknown:
        return [f"counts.excluded names unknown reason(s) {', '.join(unknown)}"]
    if counts["participants"] != counts["eligible"] + sum(counts["excluded"].values()):
        return ["counts: participants must equal eligible plus every excluded entry"]
    return []


# Checkpoints (§B.3): the log signs its head as a C2SP signed note, with the server's signing key.
def log_verifier_key(origin: str, public_key: Ed25519PublicKey | bytes) -> VerifierKey:
    """The log's note verifier key: name = origin, algorithm 0x01 (Ed25519), the signing key's public key."""
    raw = public_key if isinstance(public_key, bytes) else public_key_bytes(public_key)
    return verifier_key(origin, ED25519_NOTE, raw)


def sign_checkpoint(origin: str, size: int, head: bytes, signing_key: Ed25519PrivateKey) -> str:
    """The signed note of the checkpoint `<origin>\\n<size>\\n<base64(head)>\\n`, signed as the origin."""
    return sign_note(checkpoint_text(origin, size, head), origin, signing_key)


# What a draw is about and what it filtered with (§B.1 subjects, §B.4 frozen blacklist).
def subjects(sources: Iterable[Mapping[str, Any]]) -> list[str]:
    """`post:<platform>:<post_id>` for each post, `file:<sha256>` for each uploaded file: sorted, distinct."""
    found = set()
    for source in sources:
        if isinstance(source.get("sha256"), str):
            if not _is_hex64(source["sha256"]):
                raise ValueError("an uploaded file's sha256 must be 64 lowercase hex digits")
            found.add(f"file:{source['sha256']}")
        elif isinstance(source.get("platform"), str) and isinstance(source.get("post_id"), str):
            found.add(f"post:{source['platform']}:{source['post_id']}")
        else:
            raise ValueError(f"a source is a post (platform, post_id) or an uploaded file (sha256): {dict(source)}")
    return sorted(found)


def blacklist_digest(pairs: Iterable[tuple[str, str]]) -> tuple[str, int]:
    """hex(SHA-256(canonical JSON of the sorted [platform, username] pairs)) and how many there are."""
    listed = sorted([platform, username] for platform, username in pairs)
    return hashlib.sha256(canonical_json(listed)).hexdigest(), len(listed)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _is_time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_rfc3339(value)
    except ValueError:
        return False
    return True
