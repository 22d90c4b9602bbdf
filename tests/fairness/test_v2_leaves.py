"""Salted leaves, verdict leaves and the two trees of a v2 draw (docs/fairness.md)."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.fairness.draws import collected_entries
from web.fairness import (
    ELIGIBLE,
    EXCLUSION_REASONS,
    VERDICTS,
    DrawTreesBuilder,
    Entry,
    collected_leaf,
    collected_leaf_hashes,
    derive_salt,
    derive_salts,
    leaf_v2,
    merkle_root,
    salted_leaf_hashes,
    sort_canonically,
)

SALT_KEY = bytes(range(32))


def encode(entry: Entry) -> bytes:
    return json.dumps(list(entry.fields), ensure_ascii=False, separators=(",", ":")).encode()


def test_a_salted_leaf_is_sha256_of_zero_salt_and_the_encoding() -> None:
    entry = Entry("x", "10", 'zoë "🎉"', "1790000000000000010")
    salt = bytes.fromhex("00112233445566778899aabbccddeeff")
    assert leaf_v2(entry, salt) == hashlib.sha256(b"\x00" + salt + encode(entry)).digest()
    assert leaf_v2(entry, salt) != entry.leaf_hash
    with pytest.raises(ValueError, match="16 bytes"):
        leaf_v2(entry, salt[:15])


def test_a_collected_leaf_binds_the_verdict() -> None:
    leaf = leaf_v2(Entry("x", "1", "a", "c1"), bytes(16))
    assert collected_leaf(leaf, "duplicate") == hashlib.sha256(b"\x02" + leaf + b"duplicate").digest()
    assert len({collected_leaf(leaf, verdict) for verdict in VERDICTS}) == len(VERDICTS)
    with pytest.raises(ValueError, match="not a verdict"):
        collected_leaf(leaf, "unlucky")


def test_the_salt_is_derived_from_the_draws_salt_key_and_the_entry() -> None:
    entry = Entry("instagram", "17841400000000001", "ana.lima", "18011111111111111")
    assert derive_salt(SALT_KEY, entry) == hashlib.sha256(SALT_KEY + encode(entry)).digest()[:16]
    assert derive_salt(bytes(32), entry) != derive_salt(SALT_KEY, entry)


def test_the_verdicts_are_the_apps_exclusion_reasons() -> None:
    from web.draws.models import EXCLUSION_REASONS as APP_REASONS

    assert EXCLUSION_REASONS == APP_REASONS
    assert VERDICTS == (ELIGIBLE, *APP_REASONS)


@pytest.mark.parametrize("count", [0, 1, 7, 4096, 4099])
def test_batch_functions_equal_one_at_a_time(count: int) -> None:
    entries = sort_canonically(collected_entries(count))
    rows = [entry.fields for entry in entries]
    salts = derive_salts(SALT_KEY, rows)
    assert salts == [derive_salt(SALT_KEY, entry) for entry in entries]
    leaves = salted_leaf_hashes(rows, salts)
    assert leaves == [leaf_v2(entry, salt) for entry, salt in zip(entries, salts, strict=True)]
    verdicts = [VERDICTS[number % len(VERDICTS)] for number in range(count)]
    assert collected_leaf_hashes(leaves, verdicts) == [
        collected_leaf(leaf, verdict) for leaf, verdict in zip(leaves, verdicts, strict=True)
    ]


def test_the_two_trees_and_the_counts_of_a_draw() -> None:
    entries = sort_canonically(collected_entries(300))
    verdicts = [ELIGIBLE if number % 4 else EXCLUSION_REASONS[number % 3] for number in range(300)]
    salts = [derive_salt(SALT_KEY, entry) for entry in entries]
    builder = DrawTreesBuilder()
    rows = [(*entry.fields, salt, verdict) for entry, salt, verdict in zip(entries, salts, verdicts, strict=True)]
    builder.add_rows(rows[:100])
    builder.add_rows(rows[100:])

    leaves = [leaf_v2(entry, salt) for entry, salt in zip(entries, salts, strict=True)]
    eligible = [leaf for leaf, verdict in zip(leaves, verdicts, strict=True) if verdict == ELIGIBLE]
    assert builder.merkle_root() == merkle_root(eligible)
    assert builder.collected_root() == merkle_root(
        [collected_leaf(leaf, verdict) for leaf, verdict in zip(leaves, verdicts, strict=True)]
    )
    assert builder.counts() == {
        "participants": 300,
        "excluded": {"blacklisted": 25, "duplicate": 25, "keyword_missing": 25},
        "eligible": 225,
    }


def test_an_empty_draw_has_the_empty_roots() -> None:
    builder = DrawTreesBuilder()
    assert builder.merkle_root() == builder.collected_root() == hashlib.sha256(b"").digest()
    assert builder.counts() == {"participants": 0, "excluded": {}, "eligible": 0}
