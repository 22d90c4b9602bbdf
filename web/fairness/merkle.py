"""RFC 6962 Merkle Tree Hash over the eligible entries, built streaming, with audit paths (inclusion proofs)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

from web.fairness.entries import (
    ELIGIBLE,
    Entry,
    collected_leaf_hashes,
    leaf_hash,
    leaf_hashes,
    salted_leaf_hashes,
)

NODE_PREFIX = b"\x01"
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# Leaves are hashed into perfect subtrees of this many leaves at once: level by level is much faster in Python.
_CHUNK_HEIGHT = 12
_CHUNK = 1 << _CHUNK_HEIGHT
# Audit paths are computed for trees of fewer than 2**64 leaves.
_MAX_HEIGHT = 64


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"".join((NODE_PREFIX, left, right))).digest()


def _check_hashes(hashes: Sequence[bytes]) -> None:
    try:
        size = len(b"".join(hashes))
    except TypeError as exc:
        raise TypeError("leaf hashes must be bytes") from exc
    if size != HASH_SIZE * len(hashes):
        raise ValueError("leaf hashes must be 32 bytes each")


def _perfect_root(level: Sequence[bytes]) -> bytes:
    """Root of a perfect tree (the length is a power of two)."""
    sha256 = hashlib.sha256
    join = b"".join
    while len(level) > 1:
        pairs = iter(level)
        level = [sha256(join((NODE_PREFIX, left, right))).digest() for left, right in zip(pairs, pairs, strict=True)]
    return level[0]


def _subtree_roots(hashes: Sequence[bytes]) -> list[bytes]:
    """Roots of the perfect subtrees, largest first, that RFC 6962 splits a run of leaves into."""
    roots = []
    start, remaining = 0, len(hashes)
    while remaining:
        size = 1 << (remaining.bit_length() - 1)
        roots.append(_perfect_root(hashes[start : start + size]))
        start += size
        remaining -= size
    return roots


def _fold(roots: Sequence[bytes]) -> bytes:
    """MTH from its perfect subtrees, largest first: each joins, as left child, the tree of those after it."""
    if not roots:
        return EMPTY_ROOT
    root = roots[-1]
    for left in reversed(roots[:-1]):
        root = node_hash(left, root)
    return root


class MerkleBuilder:
    """The Merkle Tree Hash of leaves added in order, in O(log n) memory (plus one chunk of 4096 leaf hashes)."""

    __slots__ = ("_count", "_pending", "_stack")

    def __init__(self) -> None:
        self._count = 0
        self._pending: list[bytes] = []
        # Roots of complete chunks merged into perfect subtrees: (height, hash), heights strictly decreasing.
        self._stack: list[tuple[int, bytes]] = []

    @property
    def count(self) -> int:
        return self._count

    def add(self, entry: Entry) -> None:
        self.add_leaf_hash(entry.leaf_hash)

    def add_fields(self, platform: str, platform_user_id: str, username: str, entry_id: str) -> None:
        self.add_leaf_hash(leaf_hash(platform, platform_user_id, username, entry_id))

    def add_rows(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """The fast path: `(platform, platform_user_id, username, entry_id)` tuples, e.g. straight from SQL."""
        iterator = iter(rows)
        while chunk := list(islice(iterator, _CHUNK)):
            self.add_leaf_hashes(leaf_hashes(chunk))

    def add_leaf_hash(self, hash_: bytes) -> None:
        self.add_leaf_hashes((hash_,))

    def add_leaf_hashes(self, hashes: Iterable[bytes]) -> None:
        pending = self._pending
        before = len(pending)
        pending.extend(hashes)
        self._count += len(pending) - before
        while len(pending) >= _CHUNK:
            chunk = pending[:_CHUNK]
            del pending[:_CHUNK]
            _check_hashes(chunk)
            self._push(_CHUNK_HEIGHT, _perfect_root(chunk))

    def _push(self, height: int, root: bytes) -> None:
        stack = self._stack
        while stack and stack[-1][0] == height:
            root = node_hash(stack.pop()[1], root)
            height += 1
        stack.append((height, root))

    def root(self) -> bytes:
        """MTH of the leaves so far (adding more afterwards is allowed)."""
        _check_hashes(self._pending)
        return _fold([root for _, root in self._stack] + _subtree_roots(self._pending))


class DrawTreesBuilder:
    """cleack-draw-v2's two trees and counts from every collected entry, streamed in canonical order.

    Rows are `(platform, platform_user_id, username, entry_id, salt, verdict)`: the eligible ones make the
    merkle_root (leaf_v2), all of them the collected_root (collected_leaf).
    """

    __slots__ = ("_collected", "_eligible", "_excluded")

    def __init__(self) -> None:
        self._eligible = MerkleBuilder()
        self._collected = MerkleBuilder()
        self._excluded: dict[str, int] = {}

    def add_rows(self, rows: Iterable[tuple[str, str, str, str, bytes, str]]) -> None:
        iterator = iter(rows)
        while chunk := list(islice(iterator, _CHUNK)):
            leaves = salted_leaf_hashes([row[:4] for row in chunk], [row[4] for row in chunk])
            verdicts = [row[5] for row in chunk]
            self._collected.add_leaf_hashes(collected_leaf_hashes(leaves, verdicts))
            self._eligible.add_leaf_hashes(
                leaf for leaf, verdict in zip(leaves, verdicts, strict=True) if verdict == ELIGIBLE
            )
            for verdict in verdicts:
                if verdict != ELIGIBLE:
                    self._excluded[verdict] = self._excluded.get(verdict, 0) + 1

    @property
    def participants(self) -> int:
        return self._collected.count

    @property
    def eligible(self) -> int:
        return self._eligible.count

    @property
    def excluded(self) -> dict[str, int]:
        """Excluded entries by reason, reasons sorted, none with a zero count."""
        return dict(sorted(self._excluded.items()))

    def counts(self) -> dict[str, Any]:
        """As the seal and the certificate state them: `{participants, excluded: {reason: n}, eligible}`."""
        return {"participants": self.participants, "excluded": self.excluded, "eligible": self.eligible}

    def merkle_root(self) -> bytes:
        return self._eligible.root()

    def collected_root(self) -> bytes:
        return self._collected.root()


def merkle_root(hashes: Iterable[bytes]) -> bytes:
    builder = MerkleBuilder()
    builder.add_leaf_hashes(hashes)
    return builder.root()


def entries_root(entries: Iterable[Entry]) -> bytes:
    """MTH of entries already in canonical order."""
    builder = MerkleBuilder()
    for entry in entries:
        builder.add(entry)
    return builder.root()


def _audit_ranges(index: int) -> list[tuple[int, int, int]]:
    """(start, end, level) of the leaf and of each sibling subtree on its path, ordered by start.

    At level h the sibling of the leaf's ancestor covers leaves [s·2^h, (s+1)·2^h) with s = (index >> h) ^ 1,
    cut at the tree's size; it is absent when it starts at or beyond the size. Level -1 is the leaf itself.
    """
    left = [(((index >> h) ^ 1) << h, (((index >> h) ^ 1) + 1) << h, h) for h in range(_MAX_HEIGHT) if index >> h & 1]
    right = [
        (((index >> h) ^ 1) << h, (((index >> h) ^ 1) + 1) << h, h) for h in range(_MAX_HEIGHT) if not index >> h & 1
    ]
    return [*sorted(left), (index, index + 1, -1), *right]


class InclusionProofBuilder:
    """The audit path of one leaf, computed while all the leaves stream past in order, in O(log n) memory."""

    def __init__(self, index: int) -> None:
        if not 0 <= index < 1 << _MAX_HEIGHT:
            raise ValueError("the leaf index must be between 0 and 2**64 - 1")
        self.index = index
        self._ranges = _audit_ranges(index)
        self._range = 0
        self._count = 0
        self._current = MerkleBuilder()
        self._roots: dict[int, bytes] = {}

    @property
    def tree_size(self) -> int:
        return self._count

    def add(self, entry: Entry) -> None:
        self.add_leaf_hashes((entry.leaf_hash,))

    def add_rows(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        iterator = iter(rows)
        while chunk := list(islice(iterator, _CHUNK)):
            self.add_leaf_hashes(leaf_hashes(chunk))

    def add_leaf_hashes(self, hashes: Iterable[bytes]) -> None:
        batch = hashes if isinstance(hashes, Sequence) else list(hashes)
        offset, total = 0, len(batch)
        while offset < total:
            _, end, level = self._ranges[self._range]
            take = min(total - offset, end - self._count)
            self._current.add_leaf_hashes(batch[offset : offset + take])
            offset += take
            self._count += take
            if self._count == end:
                self._roots[level] = self._current.root()
                self._current = MerkleBuilder()
                self._range += 1

    @property
    def leaf_hash(self) -> bytes:
        if self._count <= self.index:
            raise ValueError(f"the tree has {self._count} leaves, none at index {self.index}")
        return self._roots[-1]

    def proof(self) -> list[bytes]:
        """The audit path, from the leaf's sibling up to the root's child."""
        roots = dict(self._roots)
        if self._count <= self.index:
            raise ValueError(f"the tree has {self._count} leaves, none at index {self.index}")
        if self._current.count:
            roots[self._ranges[self._range][2]] = self._current.root()
        return [roots[level] for level in range(_MAX_HEIGHT) if level in roots]

    def root(self) -> bytes:
        """The tree's root, derived from the leaf and its audit path."""
        root = root_from_inclusion_proof(self.leaf_hash, self.index, self._count, self.proof())
        assert root is not None
        return root


def inclusion_proof(hashes: Iterable[bytes], index: int) -> list[bytes]:
    """The audit path of leaf `index` among leaf hashes given in order (an iterator is read once)."""
    builder = InclusionProofBuilder(index)
    iterator = iter(hashes)
    while chunk := list(islice(iterator, _CHUNK)):
        builder.add_leaf_hashes(chunk)
    return builder.proof()


def root_from_inclusion_proof(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes]) -> bytes | None:
    """The root the audit path leads to (RFC 9162 §2.1.3.2), or None when the path cannot fit the tree."""
    if not 0 <= index < tree_size or len(leaf) != HASH_SIZE:
        return None
    node, last = index, tree_size - 1
    root = leaf
    for sibling in proof:
        if last == 0 or len(sibling) != HASH_SIZE:
            return None
        if node & 1 or node == last:
            root = node_hash(sibling, root)
            while not node & 1 and node != 0:
                node >>= 1
                last >>= 1
        else:
            root = node_hash(root, sibling)
        node >>= 1
        last >>= 1
    return root if last == 0 else None


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether `leaf` is the leaf at `index` of the tree of `tree_size` leaves whose root is `root`."""
    return root_from_inclusion_proof(leaf, index, tree_size, proof) == root
