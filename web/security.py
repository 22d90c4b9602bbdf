"""Passwords, random tokens, the session cookie, guards, CSRF and security headers."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import unicodedata
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import NotAuthorizedException, NotFoundException

from web.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar.connection import ASGIConnection
    from litestar.handlers import BaseRouteHandler
    from litestar.types import Message, Scope

    from web.accounts.services import CurrentUser

# OWASP's recommended argon2id floor is m=19 MiB, t=2, p=1; we sit above it on memory.
PASSWORD_HASHER = PasswordHasher(
    time_cost=2, memory_cost=24 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
_DUMMY_HASH = PASSWORD_HASHER.hash("an unguessable placeholder for timing")


def _normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(PASSWORD_HASHER.hash, _normalize(password))


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the account exists."""

    def verify() -> bool:
        try:
            return PASSWORD_HASHER.verify(password_hash or _DUMMY_HASH, _normalize(password)) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def password_needs_rehash(password_hash: str) -> bool:
    return PASSWORD_HASHER.check_needs_rehash(password_hash)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def session_cookie_name(settings: Settings) -> str:
    # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and on "/".
    return "__Host-cleack_session" if settings.secure_cookies else "cleack_session"


def csrf_config(settings: Settings) -> CSRFConfig:
    return CSRFConfig(
        secret=hashlib.sha256(b"csrf:" + settings.secret_key.encode()).hexdigest(),
        cookie_name="__Host-csrftoken" if settings.secure_cookies else "csrftoken",
        cookie_secure=settings.secure_cookies,
        cookie_samesite="lax",
        header_name="x-csrftoken",
        # Protected their own way: the Stripe signature, the OAuth `state`; the sandbox platform's token, revocation
        # and API endpoints are called server to server with client credentials or a bearer token.
        exclude=["/webhooks/", "/accounts/callback/", "/sandbox/oauth/token", "/sandbox/oauth/revoke", "/sandbox/api/"],
    )


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> CurrentUser | None:
    return connection.scope.get("state", {}).get("user")


async def requires_login(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if current_user(connection) is None:
        raise NotAuthorizedException("Please log in to continue.")


async def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    user = current_user(connection)
    # Everyone else sees the admin area as if it did not exist.
    if user is None or not user.is_admin:
        raise NotFoundException()


def content_security_policy() -> str:
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "object-src 'none'",
        )
    )


def security_headers_hook(settings: Settings) -> Callable[[Message, Scope], Awaitable[None]]:
    """A before-send hook, so that every response gets the headers, errors and unknown paths included."""
    headers = {
        "content-security-policy": content_security_policy(),
        "x-content-type-options": "nosniff",
        "referrer-policy": "strict-origin-when-cross-origin",
        "x-frame-options": "DENY",
        "permissions-policy": "camera=(), microphone=(), geolocation=()",
        "cross-origin-opener-policy": "same-origin",
    }
    if settings.secure_cookies:
        headers["strict-transport-security"] = "max-age=63072000; includeSubDomains"
    encoded = [(name.encode(), value.encode()) for name, value in headers.items()]

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *encoded]

    return add_headers


# Tokens at rest


class TokenDecryptionError(Exception):
    """A stored token could not be read with any configured key."""


_CIPHER_VERSION = b"\x01"


class TokenCipher:
    """AES-256-GCM for platform tokens, bound to the row and column they belong to.

    Stored form: version (1 byte) ‖ key id (8 bytes) ‖ nonce (12 bytes) ‖ ciphertext and tag.
    The first key encrypts; every key decrypts, so a new key can be put first and the rows
    re-encrypted (`cleack rotate-keys`) while the old key still reads.
    """

    def __init__(self, keys: list[bytes]) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not keys or any(len(key) != 32 for key in keys):
            raise ValueError("token keys are 32 bytes each")
        self._keys = {hashlib.sha256(key).digest()[:8]: AESGCM(key) for key in keys}
        self.current_key_id = hashlib.sha256(keys[0]).digest()[:8]

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCipher:
        if settings.token_keys:
            return cls([decode_token_key(key) for key in settings.token_keys])
        # Development and tests: one key derived from the secret key.
        return cls([hashlib.sha256(b"cleack-token-key:" + settings.secret_key.encode()).digest()])

    def encrypt(self, plaintext: str, context: str) -> bytes:
        nonce = secrets.token_bytes(12)
        sealed = self._keys[self.current_key_id].encrypt(nonce, plaintext.encode(), context.encode())
        return _CIPHER_VERSION + self.current_key_id + nonce + sealed

    def decrypt(self, stored: bytes, context: str) -> str:
        from cryptography.exceptions import InvalidTag

        if len(stored) < 1 + 8 + 12 + 16 or stored[:1] != _CIPHER_VERSION:
            raise TokenDecryptionError("not a stored token")
        key = self._keys.get(stored[1:9])
        if key is None:
            raise TokenDecryptionError("the key that sealed this token is no longer configured")
        try:
            return key.decrypt(stored[9:21], stored[21:], context.encode()).decode()
        except InvalidTag as exc:
            raise TokenDecryptionError("the token was altered or belongs elsewhere") from exc

    def is_current(self, stored: bytes) -> bool:
        return stored[1:9] == self.current_key_id


def new_token_key() -> str:
    """A fresh key for TOKEN_KEYS."""
    from base64 import urlsafe_b64encode

    return urlsafe_b64encode(secrets.token_bytes(32)).decode()


def decode_token_key(text: str) -> bytes:
    from base64 import urlsafe_b64decode

    try:
        key = urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise ValueError("a token key is 32 bytes in URL-safe base64 (cleack rotate-keys --new-key makes one)") from exc
    if len(key) != 32:
        raise ValueError("a token key is 32 bytes in URL-safe base64 (cleack rotate-keys --new-key makes one)")
    return key
