"""Ed25519 signing keys: generate, load, identify, publish as a key set, sign and check certificate hashes."""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from web.fairness.timestamps import parse_rfc3339, rfc3339

ALGORITHM = "Ed25519"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class SigningKeyError(ValueError):
    """A key or key set that cannot be read."""


def b64url_encode(data: bytes) -> str:
    """Base64url (RFC 4648 §5) without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Canonical base64url only: no padding, no `+` or `/`, no whitespace, the unused low bits zero.

    A signature has one text, so a verifier refuses every other spelling of the same bytes.
    """
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise SigningKeyError("not canonical base64url (RFC 4648 §5, without padding)")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(data) != text:
        raise SigningKeyError("not canonical base64url: the unused bits of the last character are not zero")
    return data


def b64url_decode_lenient(text: str) -> bytes:
    """Base64url with or without padding, plain base64 too (both alphabets): for keys pasted into configuration."""
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SigningKeyError("not base64url") from exc


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def load_signing_key(text: str) -> Ed25519PrivateKey:
    """A PKCS#8 PEM private key, or the 32 raw private bytes in base64url/base64."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SigningKeyError("the PEM text is not an unencrypted private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError("the PEM key is not an Ed25519 key")
        return key
    raw = b64url_decode_lenient(text)
    if len(raw) != 32:
        raise SigningKeyError("an Ed25519 private key is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(raw)


def signing_key_text(key: Ed25519PrivateKey) -> str:
    """The 32 raw private bytes in base64url, as `load_signing_key` reads them."""
    return b64url_encode(
        key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    )


def signing_key_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey | bytes) -> str:
    """The first 16 hexadecimal digits of SHA-256 of the raw 32-byte public key."""
    raw = key if isinstance(key, bytes) else public_key_bytes(key)
    return hashlib.sha256(raw).hexdigest()[:16]


def key_record(
    key: Ed25519PrivateKey | Ed25519PublicKey,
    created_at: datetime.datetime,
    retired_at: datetime.datetime | None = None,
) -> dict[str, Any]:
    """One key as the published key set lists it."""
    return {
        "key_id": key_id(key),
        "algorithm": ALGORITHM,
        "public_key": b64url_encode(public_key_bytes(key)),
        "created_at": rfc3339(created_at),
        "retired_at": None if retired_at is None else rfc3339(retired_at),
    }


def key_set(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The document served at /.well-known/cleack-signing-key."""
    return {"keys": [dict(record) for record in records]}


def sign_certificate_hash(key: Ed25519PrivateKey, certificate_hash: str) -> str:
    """Ed25519 over the 64 ASCII bytes of the lowercase hexadecimal certificate_hash, in base64url."""
    return b64url_encode(key.sign(certificate_hash.encode("ascii")))


def signature_is_valid(public_key: Ed25519PublicKey, certificate_hash: str, signature: str) -> bool:
    try:
        public_key.verify(b64url_decode(signature), certificate_hash.encode("ascii"))
    except (InvalidSignature, SigningKeyError, UnicodeEncodeError):
        return False
    return True


def signature_spelling_problem(signature: str) -> str | None:
    """Why a signature's text is not the one canonical base64url spelling of 64 bytes, or None."""
    try:
        raw = b64url_decode(signature)
    except SigningKeyError as exc:
        return f"the signature is {exc}"
    return None if len(raw) == 64 else f"the signature is {len(raw)} bytes, an Ed25519 signature is 64"


@dataclass(frozen=True)
class PublishedKey:
    key_id: str
    public_key: Ed25519PublicKey
    created_at: datetime.datetime
    retired_at: datetime.datetime | None


def parse_key_set(document: object) -> dict[str, PublishedKey]:
    """The keys of a published key set by key_id; SigningKeyError names what is wrong."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise SigningKeyError('a key set is an object with a "keys" list')
    keys = {}
    for position, record in enumerate(document["keys"]):
        where = f"key {position + 1}"
        if not isinstance(record, dict):
            raise SigningKeyError(f"{where} is not an object")
        if record.get("algorithm") != ALGORITHM:
            raise SigningKeyError(f"{where}: the algorithm must be {ALGORITHM}")
        try:
            raw = b64url_decode(str(record["public_key"]))
            created_at = parse_rfc3339(str(record["created_at"]))
            retired_at = None if record.get("retired_at") is None else parse_rfc3339(str(record["retired_at"]))
        except KeyError as exc:
            raise SigningKeyError(f"{where}: {exc.args[0]} is missing") from exc
        except ValueError as exc:
            raise SigningKeyError(f"{where}: {exc}") from exc
        if len(raw) != 32:
            raise SigningKeyError(f"{where}: an Ed25519 public key is 32 bytes")
        if record.get("key_id") != key_id(raw):
            raise SigningKeyError(f"{where}: key_id is not the first 16 hex digits of SHA-256 of the public key")
        keys[key_id(raw)] = PublishedKey(key_id(raw), Ed25519PublicKey.from_public_bytes(raw), created_at, retired_at)
    return keys
