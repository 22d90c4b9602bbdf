"""Tokens at rest: authenticated encryption bound to its row, keys from configuration."""

from __future__ import annotations

import pytest

from web.fairness import signing_key_text
from web.fairness.signing import generate_signing_key
from web.security import TokenCipher, TokenDecryptionError, decode_token_key, new_token_key
from web.settings import ConfigurationError, load_settings

CONTEXT = "social_accounts:0190b1f0-0000-7000-8000-000000000001:access_token"


def cipher(*keys: str) -> TokenCipher:
    return TokenCipher([decode_token_key(key) for key in keys])


def test_a_sealed_token_reads_back_and_does_not_contain_the_plaintext() -> None:
    sealed = cipher(new_token_key()).encrypt("IGQVJ-secret-token", CONTEXT)
    assert b"IGQVJ" not in sealed
    key = new_token_key()
    assert cipher(key).decrypt(cipher(key).encrypt("IGQVJ-secret-token", CONTEXT), CONTEXT) == "IGQVJ-secret-token"


def test_the_same_token_seals_differently_each_time() -> None:
    box = cipher(new_token_key())
    assert box.encrypt("token", CONTEXT) != box.encrypt("token", CONTEXT)


def test_a_token_moved_to_another_row_or_column_does_not_read() -> None:
    box = cipher(new_token_key())
    sealed = box.encrypt("token", CONTEXT)
    with pytest.raises(TokenDecryptionError):
        box.decrypt(sealed, CONTEXT.replace("access_token", "refresh_token"))


def test_an_altered_token_does_not_read() -> None:
    box = cipher(new_token_key())
    sealed = bytearray(box.encrypt("token", CONTEXT))
    sealed[-1] ^= 1
    with pytest.raises(TokenDecryptionError):
        box.decrypt(bytes(sealed), CONTEXT)
    with pytest.raises(TokenDecryptionError):
        box.decrypt(b"plaintext", CONTEXT)


def test_old_keys_still_read_and_only_the_first_key_seals() -> None:
    old, new = new_token_key(), new_token_key()
    sealed_with_old = cipher(old).encrypt("token", CONTEXT)
    rotated = cipher(new, old)
    assert rotated.decrypt(sealed_with_old, CONTEXT) == "token"
    assert not rotated.is_current(sealed_with_old)
    assert rotated.is_current(rotated.encrypt("token", CONTEXT))
    with pytest.raises(TokenDecryptionError, match="no longer configured"):
        cipher(new).decrypt(sealed_with_old, CONTEXT)


def test_keys_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        decode_token_key("c2hvcnQ")


PRODUCTION = {
    "CLEACK_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "DATABASE_URL": "postgresql://cleack@db/cleack",
    "SMTP_URL": "smtp://mail:25",
    "BASE_URL": "https://cleack.example",
    "WITNESSES": "https://witness.example witness.example+7e81f231+BAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",
    "SIGNING_KEYS": signing_key_text(generate_signing_key()),
}


def test_production_refuses_to_start_without_token_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("TOKEN_KEYS", raising=False)
    monkeypatch.delenv("SANDBOX", raising=False)
    with pytest.raises(ConfigurationError, match="TOKEN_KEYS"):
        load_settings()
    monkeypatch.setenv("TOKEN_KEYS", "not-a-key")
    with pytest.raises(ConfigurationError, match="TOKEN_KEYS"):
        load_settings()
    monkeypatch.setenv("TOKEN_KEYS", f"{new_token_key()},{new_token_key()}")
    settings = load_settings()
    assert len(settings.token_keys) == 2 and not settings.sandbox_enabled


def test_production_refuses_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TOKEN_KEYS", new_token_key())
    monkeypatch.setenv("SANDBOX", "on")
    with pytest.raises(ConfigurationError, match="sandbox"):
        load_settings()
