"""The test vectors of docs/fairness.md, computed with web.fairness.

.venv/bin/python -m tests.fairness.make_vectors     # rewrites docs/fairness-vectors.json and -v2.json
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from web.fairness import (
    Beacon,
    DrawFacts,
    Entry,
    Pick,
    build_certificate,
    canonical_json,
    commitment,
    derive_seed,
    inclusion_proof,
    key_record,
    key_set,
    load_signing_key,
    merkle_root,
    select_winners,
    sort_canonically,
)
from web.fairness.certificate import unsigned_part
from web.fairness.entries import encode_entry
from web.fairness.merkle import EMPTY_ROOT, node_hash
from web.fairness.sampling import WORD_SPACE, stream_block, stream_words, uniform_below
from web.fairness.signing import b64url_encode

VECTORS_FILE = Path(__file__).resolve().parents[2] / "docs" / "fairness-vectors.json"

# Published on purpose: these keys and secrets exist only to make the vectors reproducible.
TEST_KEY_BYTES = hashlib.sha256(b"cleack-draw-v1 test signing key").digest()
TEST_SECRET = hashlib.sha256(b"cleack-draw-v1 test secret").digest()
DRAW_ID = uuid.UUID("0193a5b2-7c1d-7e4f-8a9b-0c1d2e3f4a5b")
COLLECTED = [
    Entry("x", "9", "tab\there", "1790000000000000009"),
    Entry("instagram", "17841400000000002", "bruno_k", "18022222222222222"),
    Entry("list", "row-7", 'Jo "JJ" Smith', "7"),
    Entry("x", "10", "zoë 🎉", "1790000000000000010"),
    Entry("instagram", "17841400000000001", "ana.lima", "18011111111111111"),
]
CONFIG: dict[str, Any] = {
    "filters": {"min_followers": 0, "exclude_suspicious": True, "exclude_businesses": False},
    "rules": {
        "require_like": False,
        "require_comment": True,
        "require_follow": False,
        "comment_keywords": ["win"],
        "min_mentions": 0,
        "one_entry_per_user": True,
    },
    "winners_count": 2,
    "alternates_count": 1,
}
BEACON = Beacon("drand:quicknet", 12345678, hashlib.sha256(b"cleack-draw-v1 test beacon").hexdigest())
CANONICAL_JSON_CASES: list[Any] = [
    {"b": 1, "a": [True, False, None], "": "empty key"},
    {"é": 1, "z": 2, "Z": 3, "ä": 4, "\u00e9t\u00e9": 5},
    'quote " backslash \\ slash / tab \t newline \n return \r bs \b ff \f nul \x00 us \x1f del \x7f',
    "non-ASCII as is: zoë, 日本, 🎉, \u2028",
    [0, -1, 9007199254740991, -9007199254740991],
    {"nested": {"list": [{}, []], "text": "x"}},
]


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


def vectors() -> dict[str, Any]:
    key = load_signing_key(b64url_encode(TEST_KEY_BYTES))
    entries = sort_canonically(COLLECTED)
    leaves = [entry.leaf_hash for entry in entries]
    root = merkle_root(leaves)
    node_01, node_23 = node_hash(leaves[0], leaves[1]), node_hash(leaves[2], leaves[3])
    node_0123 = node_hash(node_01, node_23)
    seed = derive_seed(TEST_SECRET, root, DRAW_ID)
    words = stream_words(seed)
    steps: list[dict[str, Any]] = []
    moved: dict[int, int] = {}
    n = len(entries)
    for step in range(CONFIG["winners_count"] + CONFIG["alternates_count"]):
        word = next(words)
        bound = n - step
        limit = WORD_SPACE - WORD_SPACE % bound
        draw = word % bound
        slot = step + draw
        picked = moved.get(slot, slot)
        moved[slot] = moved.get(step, step)
        steps.append(
            {
                "step": step,
                "bound": bound,
                "word": str(word),
                "limit": str(limit),
                "draw": draw,
                "slot": slot,
                "picked": picked,
            }
        )
    selection = select_winners(
        secret=TEST_SECRET,
        merkle_root=root,
        draw_id=DRAW_ID,
        eligible=n,
        winners_count=CONFIG["winners_count"],
        alternates_count=CONFIG["alternates_count"],
    )
    certificate = build_certificate(
        draw=DrawFacts(
            id=DRAW_ID,
            title="Spring giveaway 🌷",
            platforms=["instagram", "list", "x"],
            sources=[
                {"platform": "instagram", "post_id": "C5xAmPle"},
                {"platform": "x", "post_id": "1790000000000000000"},
                {"platform": "list", "file": "friends.csv", "rows": 1},
            ],
            created_at=_time("2026-11-20T09:00:00+00:00"),
            started_at=_time("2026-11-22T18:00:00+00:00"),
            completed_at=_time("2026-11-22T18:00:04.250000+00:00"),
        ),
        config=CONFIG,
        participants=8,
        excluded={"duplicate": 1, "keyword_missing": 2},
        eligible=n,
        merkle_root=root,
        secret=TEST_SECRET,
        winners=[Pick(index, entries[index]) for index in selection.winner_indices],
        alternates=[Pick(index, entries[index]) for index in selection.alternate_indices],
        signing_key=key,
        issued_at=_time("2026-11-22T18:00:05+00:00"),
    )
    rejection_words = [WORD_SPACE - 1, WORD_SPACE - 2, 12345]
    return {
        "canonical_json": [
            {"value": value, "canonical": canonical_json(value).decode("utf-8")} for value in CANONICAL_JSON_CASES
        ],
        "entries": [
            {
                "index": index,
                "platform": entry.platform,
                "platform_user_id": entry.platform_user_id,
                "username": entry.username,
                "entry_id": entry.entry_id,
                "encoding": encode_entry(*entry.fields).decode("utf-8"),
                "encoding_hex": encode_entry(*entry.fields).hex(),
                "leaf_hash": entry.leaf_hash.hex(),
            }
            for index, entry in enumerate(entries)
        ],
        "merkle": {
            "empty_root": EMPTY_ROOT.hex(),
            "node_0_2": node_01.hex(),
            "node_2_4": node_23.hex(),
            "node_0_4": node_0123.hex(),
            "root": root.hex(),
            "proofs": [
                {"index": index, "audit_path": [node.hex() for node in inclusion_proof(leaves, index)]}
                for index in range(n)
            ],
        },
        "draw_id": str(DRAW_ID),
        "draw_id_bytes_hex": DRAW_ID.bytes.hex(),
        "secret": TEST_SECRET.hex(),
        "commitment": commitment(TEST_SECRET),
        "seed": seed.hex(),
        "beacon": {**BEACON.as_json(), "seed": derive_seed(TEST_SECRET, root, DRAW_ID, BEACON).hex()},
        "stream": [stream_block(seed, number).hex() for number in range(3)],
        "selection": {
            "eligible": n,
            "winners_count": CONFIG["winners_count"],
            "alternates_count": CONFIG["alternates_count"],
            "steps": steps,
            "winner_indices": selection.winner_indices,
            "alternate_indices": selection.alternate_indices,
        },
        "rejection": {
            "bound": 7,
            "limit": str(WORD_SPACE - WORD_SPACE % 7),
            "words": [str(word) for word in rejection_words],
            "result": uniform_below(iter(rejection_words), 7),
        },
        "signing_key": {
            "private_key": b64url_encode(TEST_KEY_BYTES),
            "key_set": key_set([key_record(key, _time("2026-01-01T00:00:00+00:00"))]),
        },
        "certificate": certificate,
        "certificate_canonical_json": canonical_json(unsigned_part(certificate)).decode("utf-8"),
        "certificate_hash": certificate["certificate_hash"],
        "signature": certificate["signature"],
    }


def vectors_text() -> str:
    return json.dumps(vectors(), indent=2) + "\n"


if __name__ == "__main__":
    from tests.fairness.make_vectors_v2 import V2_VECTORS_FILE, vectors_v2_text

    VECTORS_FILE.write_text(vectors_text(), encoding="utf-8")
    V2_VECTORS_FILE.write_text(vectors_v2_text(), encoding="utf-8")
    print(f"wrote {VECTORS_FILE} and {V2_VECTORS_FILE}")
