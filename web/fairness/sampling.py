"""The secret and its commitment, the seed, the deterministic byte stream and unbiased sampling without replacement."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import count
from typing import Any

ALGORITHM = "cleack-draw-v1"
STREAM_LABEL = ALGORITHM.encode("ascii")
SECRET_SIZE = 32
WORD_SPACE = 1 << 64
_HEX32 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Beacon:
    """A public randomness round fixed before the draw (drand's `randomness` is 32 bytes)."""

    source: str
    round: int
    value_hex: str

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source:
            raise ValueError("the beacon source must be a non-empty string")
        if not isinstance(self.round, int) or isinstance(self.round, bool) or self.round < 0:
            raise ValueError("the beacon round must be a non-negative integer")
        if not isinstance(self.value_hex, str) or not _HEX32.fullmatch(self.value_hex):
            raise ValueError("the beacon value must be 64 lowercase hexadecimal digits")

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "round": self.round, "value_hex": self.value_hex}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Beacon:
        return cls(source=data["source"], round=data["round"], value_hex=data["value_hex"])


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_SIZE)


def commitment(secret: bytes) -> str:
    """SHA-256 of the secret, in lowercase hexadecimal: published when the draw is created."""
    return hashlib.sha256(secret).hexdigest()


def derive_seed(secret: bytes, merkle_root: bytes, draw_id: uuid.UUID, beacon: Beacon | None = None) -> bytes:
    """HMAC-SHA256(key=secret, msg=merkle_root ‖ draw_id's 16 bytes [‖ the beacon's 32 bytes])."""
    if len(secret) != SECRET_SIZE:
        raise ValueError("the secret must be 32 bytes")
    if len(merkle_root) != 32:
        raise ValueError("the Merkle root must be 32 bytes")
    message = merkle_root + draw_id.bytes
    if beacon is not None:
        message += bytes.fromhex(beacon.value_hex)
    return hmac.new(secret, message, hashlib.sha256).digest()


def stream_block(seed: bytes, number: int) -> bytes:
    """Block i of the stream: HMAC-SHA256(key=seed, msg="cleack-draw-v1" ‖ uint64_be(i))."""
    return hmac.new(seed, STREAM_LABEL + number.to_bytes(8, "big"), hashlib.sha256).digest()


def stream_words(seed: bytes) -> Iterator[int]:
    """The stream read as unsigned 64-bit big-endian integers, four per block."""
    for number in count():
        block = stream_block(seed, number)
        for offset in range(0, 32, 8):
            yield int.from_bytes(block[offset : offset + 8], "big")


def uniform_below(words: Iterator[int], bound: int) -> int:
    """A uniform integer in [0, bound): words at or above the largest multiple of bound are discarded."""
    if not 1 <= bound <= WORD_SPACE:
        raise ValueError("the bound must be between 1 and 2**64")
    limit = WORD_SPACE - WORD_SPACE % bound
    for word in words:
        if word < limit:
            return word % bound
    raise ValueError("the stream ran out")


def sample_without_replacement(words: Iterator[int], n: int, k: int) -> list[int]:
    """k distinct indices of range(n) in draw order: a partial Fisher-Yates over virtual indices.

    The virtual array starts as [0, 1, …, n-1]; step j swaps slot j with slot j + uniform_below(n - j) and
    takes what lands in slot j. Only the slots that moved are kept, so memory is O(k).
    """
    if n < 0 or k < 0:
        raise ValueError("n and k must not be negative")
    moved: dict[int, int] = {}
    picked = []
    for step in range(min(k, n)):
        slot = step + uniform_below(words, n - step)
        value = moved.get(slot, slot)
        moved[slot] = moved.get(step, step)
        picked.append(value)
    return picked


def select_indices(seed: bytes, n: int, k: int) -> list[int]:
    """min(k, n) distinct leaf indices from the seed's stream: winners first, then alternates."""
    return sample_without_replacement(stream_words(seed), n, k)


def selection_sizes(eligible: int, winners_count: int, alternates_count: int) -> tuple[int, int]:
    """How many winners and alternates a draw of `eligible` entries yields."""
    winners = min(winners_count, eligible)
    return winners, min(alternates_count, eligible - winners)
