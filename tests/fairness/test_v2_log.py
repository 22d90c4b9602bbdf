"""Log records, heads, checkpoints, subjects and the frozen blacklist's digest (docs/fairness.md)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import uuid
from typing import Any

import pytest

from tests.fairness.draws import KEY_CREATED_AT
from web.fairness import (
    ED25519_NOTE,
    blacklist_digest,
    build_record,
    canonical_json,
    generate_signing_key,
    key_record,
    key_set,
    log_verifier_key,
    note_signature_valid,
    parse_checkpoint,
    parse_key_set,
    record_hash,
    record_problems,
    sign_certificate_hash,
    sign_checkpoint,
    split_note,
    subjects,
)
from web.fairness.signing import public_key_bytes

ORIGIN = "cleack.test/log"
AT = datetime.datetime(2026, 11, 22, 18, 0, tzinfo=datetime.UTC)
DRAW_ID = uuid.UUID("0193a5b2-7c1d-7e4f-8a9b-0c1d2e3f4a5b")
KEY = generate_signing_key()
KEYS = parse_key_set(key_set([key_record(KEY, KEY_CREATED_AT)]))


def failed_record(**members: Any) -> dict[str, Any]:
    return build_record("failed", origin=ORIGIN, seq=7, draw_id=DRAW_ID, at=AT, signing_key=KEY, **members)


def test_a_record_is_hashed_without_its_hash_and_signature_and_signed_as_a_certificate() -> None:
    record = failed_record(stage="fetching", reason="the platform did not answer")
    assert list(record) == [
        "log",
        "seq",
        "kind",
        "draw_id",
        "at",
        "stage",
        "reason",
        "key_id",
        "record_hash",
        "signature",
    ]
    unsigned = {name: value for name, value in record.items() if name not in ("record_hash", "signature")}
    assert record["record_hash"] == hashlib.sha256(canonical_json(unsigned)).hexdigest() == record_hash(record)
    assert record["at"] == "2026-11-22T18:00:00Z" and record["draw_id"] == str(DRAW_ID)
    assert record_problems(record, KEYS) == []


def test_a_record_without_its_kinds_members_is_refused() -> None:
    with pytest.raises(ValueError, match="reason missing"):
        failed_record(stage="fetching")
    with pytest.raises(ValueError, match="unknown member"):
        failed_record(stage="fetching", reason="r", extra=1)
    with pytest.raises(ValueError, match="kind is 'closed'"):
        build_record("closed", origin=ORIGIN, seq=1, draw_id=DRAW_ID, at=AT, signing_key=KEY)
    with pytest.raises(ValueError, match="counts"):
        build_record(
            "sealed",
            origin=ORIGIN,
            seq=2,
            draw_id=DRAW_ID,
            at=AT,
            signing_key=KEY,
            opened="0" * 64,
            counts={"participants": 3, "excluded": {"duplicate": 1}, "eligible": 1},
            merkle_root="0" * 64,
            collected_root="0" * 64,
            beacon={"chain_hash": "0" * 64, "round": 5},
        )


def test_an_altered_or_forged_record_is_reported() -> None:
    record = failed_record(stage="fetching", reason="timeout")
    assert record_problems({**record, "reason": "other"}) == [
        f"its content hashes to {record_hash({**record, 'reason': 'other'})}, not to its record_hash"
    ]
    stranger = generate_signing_key()
    forged = {**record, "signature": sign_certificate_hash(stranger, record["record_hash"])}
    assert record_problems(forged, KEYS) == [f"the signature is not key {record['key_id']}'s over the record_hash"]
    other = build_record(
        "cancelled", origin=ORIGIN, seq=1, draw_id=DRAW_ID, at=AT, signing_key=stranger, stage="queued"
    )
    assert record_problems(other, KEYS) == [f"key {other['key_id']} is not in the key set"]
    early = build_record(
        "cancelled",
        origin=ORIGIN,
        seq=1,
        draw_id=DRAW_ID,
        at=KEY_CREATED_AT - datetime.timedelta(days=1),
        signing_key=KEY,
        stage="queued",
    )
    assert "was not in service" in record_problems(early, KEYS)[0]
    assert record_problems({**record, "seq": 0}) == ["seq must be a positive integer"]
    assert record_problems({**record, "draw_id": str(DRAW_ID).upper()}) == [
        "draw_id must be a lowercase hyphenated UUID"
    ]


def test_the_checkpoint_note_is_signed_by_the_log_key_under_the_origin() -> None:
    head = hashlib.sha256(b"head").digest()
    note = sign_checkpoint(ORIGIN, 12, head, KEY)
    text, lines = split_note(note)
    assert text == f"{ORIGIN}\n12\n{base64.b64encode(head).decode()}\n"
    assert parse_checkpoint(text).head == head
    verifier = log_verifier_key(ORIGIN, KEY.public_key())
    assert verifier.algorithm == ED25519_NOTE and verifier.name == ORIGIN
    assert verifier == log_verifier_key(ORIGIN, public_key_bytes(KEY))
    assert note_signature_valid(text, lines[0], verifier)
    assert not note_signature_valid(text, lines[0], log_verifier_key("other.test/log", KEY.public_key()))


def test_subjects_name_each_post_and_each_uploaded_file_once_sorted() -> None:
    digest = hashlib.sha256(b"file").hexdigest()
    sources: list[dict[str, Any]] = [
        {"platform": "x", "post_id": "1790000000000000000"},
        {"platform": "instagram", "post_id": "C5xAmPle"},
        {"platform": "list", "file": "friends.csv", "rows": 3, "sha256": digest},
        {"platform": "x", "post_id": "1790000000000000000"},
    ]
    assert subjects(sources) == [f"file:{digest}", "post:instagram:C5xAmPle", "post:x:1790000000000000000"]
    with pytest.raises(ValueError, match="a source is a post"):
        subjects([{"platform": "list", "file": "friends.csv"}])


def test_the_blacklist_digest_is_of_the_sorted_pairs() -> None:
    digest, count = blacklist_digest([("x", "spammer"), ("instagram", "bot_1"), ("x", "another")])
    expected = json.dumps([["instagram", "bot_1"], ["x", "another"], ["x", "spammer"]], separators=(",", ":"))
    assert (digest, count) == (hashlib.sha256(expected.encode()).hexdigest(), 3)
    assert blacklist_digest([]) == (hashlib.sha256(b"[]").hexdigest(), 0)
