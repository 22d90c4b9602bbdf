"""Signed notes, checkpoints and witness cosignatures, byte for byte as C2SP specifies them.

c2sp.org/signed-note (verifier keys, signature lines, Ed25519 note signatures), c2sp.org/tlog-checkpoint
(the note text of a log's head) and c2sp.org/tlog-cosignature (cosignature/v1, timestamped Ed25519).
docs/fairness.md says how the public log and its witnesses use them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from web.fairness.signing import public_key_bytes

ED25519_NOTE = 0x01
COSIGNATURE_V1 = 0x04

_DASH = "\u2014 "
_KEY_HASH_SIZE = 4
_TIMESTAMP_SIZE = 8
_SIGNATURE_SIZE = 64
_MAX_INTEGER = 2**63 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_KEY_HASH_HEX = re.compile(r"[0-9a-f]{8}")


@dataclass(frozen=True)
class VerifierKey:
    """A public key as a verifier is configured with it: its name, key hash, algorithm byte and Ed25519 key."""

    name: str
    key_hash: bytes
    algorithm: int
    public_key: bytes

    @property
    def text(self) -> str:
        """`<name>+<8 hex digits of key_hash>+<base64(algorithm ‖ public_key)>`."""
        return f"{self.name}+{self.key_hash.hex()}+{_encode(bytes([self.algorithm]) + self.public_key)}"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    head: bytes


def key_hash(name: str, algorithm: int, public_key: bytes) -> bytes:
    """SHA-256(name ‖ 0x0A ‖ algorithm ‖ public_key)[:4], the key ID of signed-note."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([algorithm]) + public_key).digest()[:_KEY_HASH_SIZE]


def verifier_key(name: str, algorithm: int, public_key: bytes) -> VerifierKey:
    _check_name(name)
    if algorithm not in (ED25519_NOTE, COSIGNATURE_V1):
        raise ValueError(f"the key type 0x{algorithm:02x} is not supported: only 0x01 (log) and 0x04 (witness)")
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return VerifierKey(name, key_hash(name, algorithm, public_key), algorithm, public_key)


def parse_verifier_key(text: str) -> VerifierKey:
    """A verifier key as `VerifierKey.text` writes it (surrounding whitespace ignored)."""
    # The name and the hash hold no "+", the base64 key may.
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise ValueError("a verifier key is <name>+<8 hex digits>+<base64 key>")
    name, hash_hex, encoded = parts
    if not _KEY_HASH_HEX.fullmatch(hash_hex):
        raise ValueError("the key hash of a verifier key is 8 lowercase hexadecimal digits")
    raw = _decode(encoded, "the key of a verifier key")
    if not raw:
        raise ValueError("the key of a verifier key is empty")
    key = verifier_key(name, raw[0], raw[1:])
    if key.key_hash.hex() != hash_hex:
        raise ValueError(f"the key hash {hash_hex} is not the one of this name and key ({key.key_hash.hex()})")
    return key


def checkpoint_text(origin: str, size: int, head: bytes) -> str:
    """`<origin>\\n<size>\\n<base64(head)>\\n`."""
    _check_origin(origin)
    if not 0 <= size <= _MAX_INTEGER:
        raise ValueError(f"a checkpoint's size is between 0 and {_MAX_INTEGER}")
    if len(head) != 32:
        raise ValueError("a checkpoint's head is 32 bytes")
    return f"{origin}\n{size}\n{_encode(head)}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """The origin, size and head of a checkpoint's text; extension lines after them are ignored."""
    _check_text(text, "a checkpoint")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise ValueError("a checkpoint has three lines: its origin, its size and its head")
    origin, size_line, head_line, *extensions = lines
    _check_origin(origin)
    if not _DECIMAL.fullmatch(size_line) or int(size_line) > _MAX_INTEGER:
        raise ValueError(f"the checkpoint's size {size_line!r} is not a decimal number without leading zeros")
    head = _decode(head_line, "the checkpoint's head")
    if len(head) != 32:
        raise ValueError("the checkpoint's head is not 32 bytes")
    if "" in extensions:
        raise ValueError("a checkpoint's extension lines are not empty")
    return Checkpoint(origin, int(size_line), head)


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """The signed note: `text`, an empty line, and the Ed25519 signature line of `key` under `name`."""
    _check_text(text, "a note's text")
    _check_name(name)
    key_id = key_hash(name, ED25519_NOTE, public_key_bytes(key))
    return text + "\n" + _signature_line(name, key_id + key.sign(text.encode("utf-8")))


def split_note(note: str) -> tuple[str, list[str]]:
    """The text (with its final newline) and the signature lines (each with its newline) of a signed note."""
    _check_text(note, "a signed note")
    # The text may hold empty lines: the last empty line separates it from the signatures.
    cut = note.rfind("\n\n")
    if cut < 0 or cut + 2 == len(note):
        raise ValueError("a signed note is its text, an empty line, then one signature line or more")
    lines = [line + "\n" for line in note[cut + 2 : -1].split("\n")]
    for line in lines:
        _parse_signature_line(line)
    return note[: cut + 1], lines


def names_key(line: str, key: VerifierKey) -> bool:
    """Whether a signature line claims to be by `key` (its name and key hash), valid or not."""
    return _signature_by(line, key) is not None


def note_signature_valid(text: str, line: str, key: VerifierKey) -> bool:
    """Whether `line` is a valid Ed25519 note signature of `text` by `key`."""
    signature = _signature_by(line, key)
    if key.algorithm != ED25519_NOTE or signature is None or len(signature) != _SIGNATURE_SIZE:
        return False
    try:
        message = text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return _verified(key, signature, message)


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """What a witness signs: `cosignature/v1\\ntime <T>\\n` then the checkpoint's text."""
    if not 0 <= timestamp <= _MAX_INTEGER:
        raise ValueError(f"a cosignature's time is between 0 and {_MAX_INTEGER}")
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def cosign(checkpoint_text: str, name: str, key: Ed25519PrivateKey, timestamp: int) -> str:
    """The witness's cosignature line over a checkpoint at `timestamp` (Unix seconds), ending with a newline."""
    parse_checkpoint(checkpoint_text)
    _check_name(name)
    key_id = key_hash(name, COSIGNATURE_V1, public_key_bytes(key))
    signature = key.sign(cosignature_message(checkpoint_text, timestamp))
    return _signature_line(name, key_id + timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature)


def cosignature_time(checkpoint_text: str, line: str, key: VerifierKey) -> int | None:
    """The time a valid cosignature of `key` over the checkpoint carries; None when it is not one."""
    signature = _signature_by(line, key)
    if key.algorithm != COSIGNATURE_V1 or signature is None or len(signature) != _TIMESTAMP_SIZE + _SIGNATURE_SIZE:
        return None
    timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
    if timestamp > _MAX_INTEGER:
        return None
    try:
        message = cosignature_message(checkpoint_text, timestamp)
    except UnicodeEncodeError:
        return None
    return timestamp if _verified(key, signature[_TIMESTAMP_SIZE:], message) else None


def _signature_line(name: str, signature: bytes) -> str:
    return f"{_DASH}{name} {_encode(signature)}\n"


def _parse_signature_line(line: str) -> tuple[str, bytes]:
    """The key name and the signature bytes (key hash first) of one line, its final newline optional."""
    body = line.removesuffix("\n")
    if not body.startswith(_DASH):
        raise ValueError("a signature line starts with an em dash (U+2014) and a space")
    name, space, encoded = body[len(_DASH) :].partition(" ")
    if not space:
        raise ValueError("a signature line is: em dash, space, key name, space, base64 signature")
    _check_name(name)
    signature = _decode(encoded, f"the signature of {name}")
    if len(signature) <= _KEY_HASH_SIZE:
        raise ValueError(f"the signature of {name} is too short to hold a key hash and a signature")
    return name, signature


def _signature_by(line: str, key: VerifierKey) -> bytes | None:
    """The signature after the key hash when `line` names `key` (its name and key hash), else None."""
    try:
        name, signature = _parse_signature_line(line)
    except ValueError:
        return None
    if name != key.name or signature[:_KEY_HASH_SIZE] != key.key_hash:
        return None
    return signature[_KEY_HASH_SIZE:]


def _verified(key: VerifierKey, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decode(text: str, what: str) -> bytes:
    """Standard base64 with padding, refused unless re-encoding gives the same text."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError(f"{what} is not base64") from None
    if _encode(data) != text:
        raise ValueError(f"{what} is not canonical base64 (padding or trailing bits)")
    return data


def _check_name(name: str) -> None:
    if not name or "+" in name or any(character.isspace() or character < " " for character in name):
        raise ValueError(f"the key name {name!r} is empty or holds a space, a control character or a '+'")


def _check_origin(origin: str) -> None:
    if not origin or any(character < " " for character in origin):
        raise ValueError("a checkpoint's origin is one non-empty line without control characters")


def _check_text(text: str, what: str) -> None:
    """Signed-note text: UTF-8, ending with a newline, no control character but newlines."""
    if not text.endswith("\n"):
        raise ValueError(f"{what} ends with a newline")
    if any(character < " " and character != "\n" for character in text):
        raise ValueError(f"{what} holds a control character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode text") from None
