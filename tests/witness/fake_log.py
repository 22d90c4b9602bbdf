"""A log as a witness sees it: record hashes, the heads they chain to, checkpoints signed with the log's key."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from web.fairness.log import ZERO_HEAD, fold_heads
from web.fairness.note import ED25519_NOTE, VerifierKey, checkpoint_text, sign_note, verifier_key
from web.fairness.signing import public_key_bytes

ORIGIN = "cleack.test/log"


class FakeLog:
    def __init__(self, origin: str = ORIGIN, key: Ed25519PrivateKey | None = None) -> None:
        self.origin = origin
        self.key = key or Ed25519PrivateKey.generate()
        self.record_hashes: list[bytes] = []

    @property
    def verifier_key(self) -> VerifierKey:
        return verifier_key(self.origin, ED25519_NOTE, public_key_bytes(self.key))

    @property
    def size(self) -> int:
        return len(self.record_hashes)

    def append(self, count: int = 1, *, label: str = "record") -> FakeLog:
        for _ in range(count):
            seq = self.size + 1
            self.record_hashes.append(hashlib.sha256(f"{self.origin} {label} {seq}".encode()).digest())
        return self

    def fork(self, at: int) -> FakeLog:
        """The same log with its records from `at` on replaced by others, signed with the same key."""
        forked = FakeLog(self.origin, self.key)
        forked.record_hashes = self.record_hashes[: at - 1]
        return forked.append(self.size - at + 1, label="forked record")

    def head(self, size: int | None = None) -> bytes:
        return fold_heads(ZERO_HEAD, self.record_hashes[:size])

    def text(self, size: int | None = None) -> str:
        size = self.size if size is None else size
        return checkpoint_text(self.origin, size, self.head(size))

    def checkpoint(self, size: int | None = None) -> str:
        """The checkpoint note at `size` (default: the whole log), signed by the log."""
        return sign_note(self.text(size), self.origin, self.key)

    def body(self, old: int, size: int | None = None) -> bytes:
        """An add-checkpoint request from `old` to `size`."""
        size = self.size if size is None else size
        hashes = "".join(f"{base64.b64encode(h).decode()}\n" for h in self.record_hashes[old:size])
        return f"old {old}\n{hashes}\n{self.checkpoint(size)}".encode()


class Clock:
    """The witness's clock, set by the test."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now
