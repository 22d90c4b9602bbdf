"""The Merkle tree is RFC 6962's for every size, built streaming, with audit paths that prove membership."""

from __future__ import annotations

import hashlib
import random

import pytest

from web.db import connect
from web.fairness import (
    EMPTY_ROOT,
    Entry,
    InclusionProofBuilder,
    MerkleBuilder,
    entries_root,
    inclusion_proof,
    leaf_hash,
    leaf_hashes,
    merkle_root,
    sort_canonically,
    verify_inclusion,
)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def naive_root(leaves: list[bytes]) -> bytes:
    """MTH as RFC 6962 §2.1 writes it."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return sha256(b"\x01" + naive_root(leaves[:split]) + naive_root(leaves[split:]))


def naive_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) as RFC 6962 §2.1.1 writes it."""
    if len(leaves) <= 1:
        return []
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    if index < split:
        return [*naive_path(index, leaves[:split]), naive_root(leaves[split:])]
    return [*naive_path(index - split, leaves[split:]), naive_root(leaves[:split])]


def leaves_of(count: int) -> list[bytes]:
    return [leaf_hash("sandbox", str(number), f"user{number}", f"c{number}") for number in range(count)]


@pytest.mark.parametrize("count", range(34))
def test_root_is_rfc6962_mth_for_every_small_size(count: int) -> None:
    leaves = leaves_of(count)
    one_by_one = MerkleBuilder()
    for leaf in leaves:
        one_by_one.add_leaf_hash(leaf)

    assert merkle_root(leaves) == naive_root(leaves)
    assert one_by_one.root() == naive_root(leaves)
    assert one_by_one.count == count


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    assert merkle_root([]) == EMPTY_ROOT == sha256(b"")


@pytest.mark.parametrize("count", [4095, 4096, 4097, 8192, 12289])
def test_root_across_chunk_boundaries_whatever_way_entries_are_added(count: int) -> None:
    entries = [Entry("sandbox", str(number), f"user{number}", f"c{number}") for number in range(count)]
    by_rows, by_fields, by_entry = MerkleBuilder(), MerkleBuilder(), MerkleBuilder()
    by_rows.add_rows(entry.fields for entry in entries)
    for entry in entries:
        by_fields.add_fields(*entry.fields)
        by_entry.add(entry)
    expected = naive_root([entry.leaf_hash for entry in entries])

    assert by_rows.root() == by_fields.root() == by_entry.root() == entries_root(entries) == expected


def test_root_can_be_read_midway_and_the_tree_keeps_growing() -> None:
    leaves = leaves_of(5000)
    builder = MerkleBuilder()
    builder.add_leaf_hashes(leaves[:4100])
    assert builder.root() == naive_root(leaves[:4100])
    builder.add_leaf_hashes(leaves[4100:])
    assert builder.root() == naive_root(leaves)


def test_rows_needing_escapes_hash_like_single_entries() -> None:
    rows = [("x", "1", 'a "quoted"\tname', "c1"), ("x", "2", "back\\slash", "c2"), ("x", "3", "zoë", "c3")]
    assert leaf_hashes(rows) == [leaf_hash(*row) for row in rows]
    assert leaf_hashes(rows[2:]) == [leaf_hash(*rows[2])]


def test_leaves_that_are_not_32_bytes_or_fields_that_are_not_strings_are_refused() -> None:
    builder = MerkleBuilder()
    builder.add_leaf_hash(b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        builder.root()
    with pytest.raises(TypeError):
        leaf_hashes([("x", 1, "name", "c1")])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        leaf_hash("x", "1", None, "c1")  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [*range(1, 20), 31, 32, 33, 100, 4097])
def test_every_member_has_the_rfc6962_audit_path_and_it_verifies(count: int) -> None:
    leaves = leaves_of(count)
    root = naive_root(leaves)
    indices = range(count) if count < 40 else [0, 1, count // 2, count - 2, count - 1, 4096 % count]
    for index in indices:
        proof = inclusion_proof(iter(leaves), index)
        assert proof == naive_path(index, leaves), (count, index)
        assert verify_inclusion(leaves[index], index, count, proof, root)


def test_streaming_proof_builder_fed_in_uneven_batches_gives_leaf_path_and_root() -> None:
    leaves = leaves_of(10_000)
    builder = InclusionProofBuilder(6789)
    cut = random.Random(7)
    position = 0
    while position < len(leaves):
        step = cut.randint(1, 3000)
        builder.add_leaf_hashes(leaves[position : position + step])
        position += step

    assert builder.tree_size == 10_000
    assert builder.leaf_hash == leaves[6789]
    assert builder.proof() == naive_path(6789, leaves)
    assert builder.root() == naive_root(leaves)


def test_proof_for_an_index_beyond_the_tree_is_refused() -> None:
    with pytest.raises(ValueError, match="none at index 5"):
        inclusion_proof(leaves_of(5), 5)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 8, 9, 33])
def test_non_members_and_altered_proofs_do_not_verify(count: int) -> None:
    leaves = leaves_of(count)
    root = naive_root(leaves)
    outsider = leaf_hash("sandbox", "999999", "intruder", "c-999999")
    for index in range(count):
        proof = naive_path(index, leaves)
        assert not verify_inclusion(outsider, index, count, proof, root)
        assert not verify_inclusion(leaves[index], index, count, [*proof, root], root)
        assert not verify_inclusion(leaves[index], count, count, proof, root)
        if count > 1:
            assert not verify_inclusion(leaves[index], (index + 1) % count, count, proof, root)
            assert not verify_inclusion(leaves[index], index, count, proof[:-1], root)
            assert not verify_inclusion(leaves[index], index, count, [sha256(proof[0]), *proof[1:]], root)


TRICKY = ["", "a", "B", "b", "ab", "a b", "é", "e\u0301", "\x7f", "\uffff", "\U0001f600", "10", "9", "Z", "z", "_"]


async def test_canonical_order_is_postgresql_collate_c_order(database_url: str) -> None:
    picker = random.Random(3)
    entries = [
        Entry(picker.choice(["x", "instagram", "list", "tiktök"]), picker.choice(TRICKY), "name", picker.choice(TRICKY))
        for _ in range(300)
    ]
    async with connect(database_url) as conn:
        rows = await conn.fetch(
            """
            SELECT platform, platform_user_id, entry_id
            FROM unnest($1::text[], $2::text[], $3::text[]) AS e(platform, platform_user_id, entry_id)
            ORDER BY platform COLLATE "C", platform_user_id COLLATE "C", entry_id COLLATE "C"
            """,
            [entry.platform for entry in entries],
            [entry.platform_user_id for entry in entries],
            [entry.entry_id for entry in entries],
        )

    by_bytes = sorted(entries, key=lambda entry: tuple(part.encode() for part in entry.key))
    assert [entry.key for entry in sort_canonically(entries)] == [tuple(row) for row in rows]
    assert sort_canonically(entries) == by_bytes
