"""What a witness holds and keeps: its key, the latest checkpoint it cosigned per log, its history, forks seen.

Its data directory:
  witness-key.pem  its Ed25519 key (created on first start, mode 0600)
  state.json       per origin: size, head, the checkpoint note it cosigned and its cosignature line
  history.jsonl    every checkpoint it cosigned, one JSON object a line
  forks/           the evidence of each fork or rewritten history it refused
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from web.fairness.log import ZERO_HEAD, fold_heads
from web.fairness.note import (
    COSIGNATURE_V1,
    ED25519_NOTE,
    Checkpoint,
    VerifierKey,
    cosign,
    names_key,
    note_signature_valid,
    verifier_key,
)
from web.fairness.signing import SigningKeyError, load_signing_key, public_key_bytes, signing_key_pem

KEY_FILE = "witness-key.pem"
STATE_FILE = "state.json"
HISTORY_FILE = "history.jsonl"
FORKS_DIR = "forks"


def unix_time() -> int:
    return int(time.time())


@dataclass(frozen=True)
class WitnessConfig:
    data_dir: Path
    name: str
    log_keys: Sequence[VerifierKey]
    clock: Callable[[], int] = unix_time


@dataclass(frozen=True)
class Submission:
    """An add-checkpoint request: the size the log believes the witness holds, the record hashes after it, the note."""

    old_size: int
    record_hashes: tuple[bytes, ...]
    note: str
    text: str
    signature_lines: tuple[str, ...]
    checkpoint: Checkpoint


@dataclass(frozen=True)
class Cosigned:
    """The latest checkpoint cosigned for one log: the note with the log's signatures, and the cosignature line."""

    size: int
    head: bytes
    timestamp: int
    checkpoint: str
    cosignature: str

    @property
    def note(self) -> str:
        return self.checkpoint + self.cosignature


class Refused(Exception):
    """A submission the witness does not cosign: the HTTP status, and why in one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SizeConflict(Refused):
    def __init__(self, size: int) -> None:
        super().__init__(409, f"the witness holds this log at size {size}")
        self.size = size


class WitnessStateError(Exception):
    """A data directory the witness cannot use."""


class Witness:
    def __init__(self, config: WitnessConfig) -> None:
        self.name = config.name
        self._clock = config.clock
        self._data_dir = config.data_dir
        self._keys_by_origin = _log_keys_by_origin(config.log_keys)
        self._key = load_or_create_key(config.data_dir)
        self.verifier_key = verifier_key(config.name, COSIGNATURE_V1, public_key_bytes(self._key))
        self._latest = _read_state(config.data_dir / STATE_FILE)
        # A thread lock held across the check and the write: a cancelled request cannot release it half-way.
        self._lock = threading.Lock()

    def latest(self, origin: str) -> Cosigned | None:
        return self._latest.get(origin)

    async def add_checkpoint(self, submission: Submission) -> str:
        """The cosignature line, once the new state is on disk; Refused says why not."""
        return await asyncio.to_thread(self._add_checkpoint, submission)

    def _add_checkpoint(self, submission: Submission) -> str:
        checkpoint = submission.checkpoint
        keys = self._keys_by_origin.get(checkpoint.origin)
        if not keys:
            raise Refused(404, f"this witness does not witness the log {checkpoint.origin}")
        log_lines = _log_signature_lines(submission, keys)
        with self._lock:
            held = self._latest.get(checkpoint.origin)
            size, head = (held.size, held.head) if held else (0, ZERO_HEAD)
            if submission.old_size != size:
                raise SizeConflict(size)
            problem = _extension_problem(size, head, submission)
            if problem:
                self._keep_evidence(submission, held, problem)
                raise Refused(422, problem)
            # Never dated before the previous cosignature, even if the clock went back.
            timestamp = max(self._clock(), held.timestamp if held else 0)
            cosigned = Cosigned(
                size=checkpoint.size,
                head=checkpoint.head,
                timestamp=timestamp,
                checkpoint=submission.text + "\n" + "".join(log_lines),
                cosignature=cosign(submission.text, self.name, self._key, timestamp),
            )
            latest = {**self._latest, checkpoint.origin: cosigned}
            _write_atomically(self._data_dir / STATE_FILE, _state_document(latest))
            self._latest = latest
            _append_line(self._data_dir / HISTORY_FILE, json.dumps(_cosigned_record(checkpoint.origin, cosigned)))
            return cosigned.cosignature

    def _keep_evidence(self, submission: Submission, held: Cosigned | None, problem: str) -> None:
        evidence = {
            "received_at": self._clock(),
            "problem": problem,
            "origin": submission.checkpoint.origin,
            "old": submission.old_size,
            "record_hashes": [base64.b64encode(record_hash).decode() for record_hash in submission.record_hashes],
            "submitted": submission.note,
            "held": None if held is None else _cosigned_record(submission.checkpoint.origin, held),
        }
        document = json.dumps(evidence, indent=2, ensure_ascii=False).encode()
        folder = self._data_dir / FORKS_DIR
        folder.mkdir(exist_ok=True)
        name = f"{evidence['received_at']}-{hashlib.sha256(document).hexdigest()[:16]}.json"
        _write_atomically(folder / name, document)


def load_or_create_key(data_dir: Path) -> Ed25519PrivateKey:
    """The witness's key from its data directory; a new one, readable by its owner only, on first start."""
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w") as file:
            file.write(signing_key_pem(Ed25519PrivateKey.generate()))
            file.flush()
            os.fsync(file.fileno())
    try:
        return load_signing_key(path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError, SigningKeyError) as exc:
        raise WitnessStateError(f"cannot read the witness key {path}: {exc}") from exc


def _log_keys_by_origin(keys: Sequence[VerifierKey]) -> dict[str, list[VerifierKey]]:
    by_origin: dict[str, list[VerifierKey]] = {}
    for key in keys:
        if key.algorithm != ED25519_NOTE:
            raise ValueError(f"{key.text} is not a log's key: a log signs with an Ed25519 note key (type 0x01)")
        by_origin.setdefault(key.name, []).append(key)
    return by_origin


def _log_signature_lines(submission: Submission, keys: list[VerifierKey]) -> list[str]:
    """The lines by the log's keys, all valid; Refused (403) when one fails or none is there (C2SP tlog-witness)."""
    claimed = [(line, key) for line in submission.signature_lines for key in keys if names_key(line, key)]
    if not claimed:
        raise Refused(403, f"the checkpoint carries no signature by a key of {submission.checkpoint.origin}")
    if not all(note_signature_valid(submission.text, line, key) for line, key in claimed):
        raise Refused(403, f"a signature by a key of {submission.checkpoint.origin} does not verify")
    return [line for line, _ in claimed]


def _extension_problem(size: int, head: bytes, submission: Submission) -> str | None:
    """Why the record hashes do not extend the held head to the checkpoint's (a fork or a rewrite), if they do not."""
    new_size, count = submission.checkpoint.size, len(submission.record_hashes)
    if new_size < size:
        return f"the checkpoint's size {new_size} is below {size}, already cosigned: the log's history was rewritten"
    if size + count != new_size:
        return f"{count} record hashes lead from size {size} to {size + count}, not to the checkpoint's size {new_size}"
    if fold_heads(head, submission.record_hashes) != submission.checkpoint.head:
        if count == 0:
            return f"the checkpoint's head at size {size} is not the one already cosigned: the log forked"
        return f"the record hashes do not lead from the head at size {size} to the checkpoint's head: the log forked"
    return None


def _cosigned_record(origin: str, cosigned: Cosigned) -> dict[str, Any]:
    return {
        "origin": origin,
        "size": cosigned.size,
        "head": cosigned.head.hex(),
        "timestamp": cosigned.timestamp,
        "checkpoint": cosigned.checkpoint,
        "cosignature": cosigned.cosignature,
    }


def _state_document(latest: dict[str, Cosigned]) -> bytes:
    logs = {origin: _cosigned_record(origin, cosigned) for origin, cosigned in sorted(latest.items())}
    return json.dumps({"logs": logs}, indent=2, ensure_ascii=False).encode()


def _read_state(path: Path) -> dict[str, Cosigned]:
    if not path.exists():
        return {}
    try:
        logs = json.loads(path.read_text(encoding="utf-8"))["logs"]
        return {origin: _cosigned_from(log) for origin, log in logs.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # Starting afresh would let a forked log be cosigned: the operator restores the file instead.
        raise WitnessStateError(f"cannot read {path} ({exc!r}): restore it from a backup, do not delete it") from exc


def _cosigned_from(log: dict[str, Any]) -> Cosigned:
    head = bytes.fromhex(log["head"])
    if len(head) != 32:
        raise ValueError(f"the head {log['head']} is not 32 bytes")
    return Cosigned(
        size=int(log["size"]),
        head=head,
        timestamp=int(log["timestamp"]),
        checkpoint=str(log["checkpoint"]),
        cosignature=str(log["cosignature"]),
    )


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers and a crash see the old file or the new one, never a part of it."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    _sync_directory(path.parent)


def _append_line(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(line + "\n")
        file.flush()
        os.fsync(file.fileno())


def _sync_directory(path: Path) -> None:
    """Make a rename in `path` survive a power cut."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
