"""Signed notes, checkpoints and cosignatures (web/fairness/note.py) against C2SP's bytes."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from web.fairness.note import (
    COSIGNATURE_V1,
    ED25519_NOTE,
    Checkpoint,
    checkpoint_text,
    cosign,
    cosignature_message,
    cosignature_time,
    key_hash,
    names_key,
    note_signature_valid,
    parse_checkpoint,
    parse_verifier_key,
    sign_note,
    split_note,
    verifier_key,
)
from web.fairness.signing import public_key_bytes

# The example of c2sp.org/signed-note ("Verifier keys", "Example").
C2SP_KEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# Fixed keys and a fixed checkpoint, so that the bytes below are pinned.
LOG_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
ORIGIN = "cleack.test/log"
WITNESS = "witness.test/w1"
HEAD = hashlib.sha256(b"head").digest()
HEAD_BASE64 = "ny5tM6NxfugmNTpAS6RhjRrutoea15Nrzo7V9GgUkk0="
TEXT = f"cleack.test/log\n3\n{HEAD_BASE64}\n"
T = 1_800_000_000


def noncanonical(encoded: str) -> str:
    """The same bytes in base64 with a padding bit set: decoders that are not strict accept it."""
    data_end = len(encoded.rstrip("="))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(encoded[data_end - 1]) | 1]
    assert base64.b64decode(encoded[: data_end - 1] + last + encoded[data_end:]) == base64.b64decode(encoded)
    return encoded[: data_end - 1] + last + encoded[data_end:]


def flip(line: str, position: int) -> str:
    """A signature line with one bit of its signature bytes changed."""
    dash_name, encoded = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[position] ^= 1
    return f"{dash_name} {base64.b64encode(bytes(raw)).decode()}\n"


def test_the_c2sp_example_key_and_note_verify() -> None:
    key = parse_verifier_key(C2SP_KEY)
    text, lines = split_note(C2SP_NOTE)

    assert (key.name, key.key_hash.hex(), key.algorithm) == ("example.com/foo", "530d903a", ED25519_NOTE)
    assert key.key_hash == key_hash(key.name, ED25519_NOTE, key.public_key)
    assert key.text == C2SP_KEY
    assert text == "This is an example message.\n"
    assert note_signature_valid(text, lines[0], key)


def test_the_key_hash_is_the_first_four_bytes_of_sha256_of_name_newline_type_and_key() -> None:
    public = public_key_bytes(LOG_KEY)

    assert key_hash(ORIGIN, ED25519_NOTE, public).hex() == "8bb0c7b2"
    assert key_hash(ORIGIN, COSIGNATURE_V1, public) != key_hash(ORIGIN, ED25519_NOTE, public)
    assert verifier_key(ORIGIN, ED25519_NOTE, public).text == (
        "cleack.test/log+8bb0c7b2+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
    )
    assert verifier_key(WITNESS, COSIGNATURE_V1, public_key_bytes(WITNESS_KEY)).text == (
        "witness.test/w1+ad1959f2+BCmsuuFBvMrwsi4alNNNC8c2HlJtC/4SyJeUvJMilm3X"
    )


def test_a_signed_checkpoint_has_the_pinned_bytes() -> None:
    assert checkpoint_text(ORIGIN, 3, HEAD) == TEXT
    assert sign_note(TEXT, ORIGIN, LOG_KEY) == (
        TEXT + "\n— cleack.test/log "
        "i7DHskrMv9QBJQmjPoQzt1pvIye+aNwc/npSY1MpxU91vaikcmHIbTRuj53zLVDkVq10GsDy5UvbCBNH+Tip1Ben+gI=\n"
    )


def test_a_cosignature_is_key_hash_time_and_signature_of_the_cosignature_v1_message() -> None:
    line = cosign(TEXT, WITNESS, WITNESS_KEY, T)
    raw = base64.b64decode(line.removeprefix(f"— {WITNESS} ").removesuffix("\n"))
    message = b"cosignature/v1\ntime 1800000000\n" + TEXT.encode()

    assert line == (
        "— witness.test/w1 "
        "rRlZ8gAAAABrSdIAjD/mG1ivjHeN7ady4ydrqY7oRrpZR1QbpmvE+w2DRRsUke7NzY1jCrYdRgASrOebenbndTdMj0RM8Zdiyv6OBg==\n"
    )
    assert cosignature_message(TEXT, T) == message
    assert raw[:4] == hashlib.sha256(b"witness.test/w1\n\x04" + public_key_bytes(WITNESS_KEY)).digest()[:4]
    assert int.from_bytes(raw[4:12], "big") == T
    WITNESS_KEY.public_key().verify(raw[12:], message)


def test_a_cosignature_verifies_with_its_time_and_nothing_changed_does() -> None:
    key = verifier_key(WITNESS, COSIGNATURE_V1, public_key_bytes(WITNESS_KEY))
    line = cosign(TEXT, WITNESS, WITNESS_KEY, T)
    later = base64.b64decode(line.split(" ")[2])
    later = later[:4] + (T + 1).to_bytes(8, "big") + later[12:]

    assert cosignature_time(TEXT, line, key) == T
    assert cosignature_time(TEXT.replace("\n3\n", "\n4\n"), line, key) is None
    assert cosignature_time(TEXT, f"— {WITNESS} {base64.b64encode(later).decode()}\n", key) is None
    assert cosignature_time(TEXT, flip(line, 20), key) is None
    assert cosignature_time(TEXT, line.replace(WITNESS, "witness.test/w2"), key) is None
    other = Ed25519PrivateKey.generate()
    assert cosignature_time(TEXT, line, verifier_key(WITNESS, COSIGNATURE_V1, public_key_bytes(other))) is None
    # The same key as a note key (type 0x01) does not accept a cosignature, nor the reverse.
    note_key = verifier_key(WITNESS, ED25519_NOTE, public_key_bytes(WITNESS_KEY))
    assert cosignature_time(TEXT, line, note_key) is None
    assert not note_signature_valid(TEXT, line, note_key)


def test_a_note_signature_fails_on_any_changed_byte() -> None:
    key = verifier_key(ORIGIN, ED25519_NOTE, public_key_bytes(LOG_KEY))
    text, lines = split_note(sign_note(TEXT, ORIGIN, LOG_KEY))

    assert text == TEXT and len(lines) == 1
    assert note_signature_valid(text, lines[0], key)
    assert not note_signature_valid(text.replace("3", "4", 1), lines[0], key)
    assert not note_signature_valid(text, flip(lines[0], 10), key)
    assert not note_signature_valid(text, lines[0], verifier_key(ORIGIN, ED25519_NOTE, bytes(32)))
    assert names_key(flip(lines[0], 10), key)
    assert not names_key(flip(lines[0], 0), key)


def test_a_checkpoint_round_trips_and_its_extension_lines_are_ignored() -> None:
    assert parse_checkpoint(TEXT) == Checkpoint(ORIGIN, 3, HEAD)
    assert parse_checkpoint(checkpoint_text(ORIGIN, 0, bytes(32))) == Checkpoint(ORIGIN, 0, bytes(32))
    assert parse_checkpoint(TEXT + "extension line\n") == Checkpoint(ORIGIN, 3, HEAD)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(TEXT.rstrip("\n"), id="no final newline"),
        pytest.param("cleack.test/log\n3\n", id="two lines"),
        pytest.param(TEXT.replace("\n3\n", "\n03\n"), id="leading zero"),
        pytest.param(TEXT.replace("\n3\n", "\n+3\n"), id="sign"),
        pytest.param(TEXT.replace("\n3\n", "\n-3\n"), id="negative"),
        pytest.param(TEXT.replace("\n3\n", "\n٣\n"), id="non-ASCII digit"),
        pytest.param(TEXT.replace("\n3\n", f"\n{2**63}\n"), id="over 2^63-1"),
        pytest.param(TEXT.replace(HEAD_BASE64, noncanonical(HEAD_BASE64)), id="non-canonical head"),
        pytest.param(TEXT.replace(HEAD_BASE64, base64.b64encode(HEAD[:31]).decode()), id="31-byte head"),
        pytest.param(TEXT.replace("=\n", "\n"), id="head without padding"),
        pytest.param(TEXT + "\n", id="empty extension line"),
        pytest.param("\n3\n" + TEXT.split("\n")[2] + "\n", id="empty origin"),
        pytest.param(TEXT.replace("cleack.test/log", "cleack.test/\tlog"), id="control character"),
    ],
)
def test_a_malformed_checkpoint_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    "note",
    [
        pytest.param(TEXT, id="no signature"),
        pytest.param(TEXT + "\n", id="empty line but no signature"),
        pytest.param(TEXT + "— cleack.test/log AAAAAAA=\n", id="no empty line"),
        pytest.param(TEXT + "\n- cleack.test/log AAAAAAA=\n", id="hyphen instead of em dash"),
        pytest.param(TEXT + "\n— cleack.test/log AAAAAA==\n", id="signature without bytes after the key hash"),
        pytest.param(TEXT + "\n— cleack.test/log " + noncanonical("AAAAAAA=") + "\n", id="non-canonical base64"),
        pytest.param(TEXT + "\n— cleack.test/log AAAAAAA\n", id="base64 without padding"),
        pytest.param(TEXT + "\n— cleack.test/log AAAAAAA=", id="no final newline"),
        pytest.param(TEXT + "\n— cleack+test/log AAAAAAA=\n", id="plus in the name"),
        pytest.param(TEXT + "\n— cleack.test/log AAAAAAA=\nmore text\n", id="text after the signatures"),
        pytest.param(TEXT + "\n— cleack.test/log AAAAAAA=\n\n", id="empty line at the end"),
    ],
)
def test_a_malformed_note_is_refused(note: str) -> None:
    with pytest.raises(ValueError):
        split_note(note)


def test_the_text_of_a_note_may_hold_empty_lines() -> None:
    note = sign_note("first paragraph\n\nsecond paragraph\n", ORIGIN, LOG_KEY)
    text, lines = split_note(note)

    assert text == "first paragraph\n\nsecond paragraph\n"
    assert note_signature_valid(text, lines[0], verifier_key(ORIGIN, ED25519_NOTE, public_key_bytes(LOG_KEY)))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", id="wrong key hash"),
        pytest.param("example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", id="uppercase hex"),
        pytest.param("example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", id="another name"),
        pytest.param("example.com/foo+530d903a", id="two parts"),
        pytest.param("cleack.test/log+8bb0c7b2+AQOhB7/zzhC-HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4", id="base64url alphabet"),
        pytest.param("example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", id="unknown type"),
        pytest.param("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U0=", id="31-byte key"),
        pytest.param("example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", id="space in the name"),
    ],
)
def test_a_malformed_verifier_key_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_verifier_key(text)


def test_a_verifier_key_round_trips_even_with_a_plus_in_its_base64() -> None:
    key = verifier_key(ORIGIN, ED25519_NOTE, public_key_bytes(LOG_KEY))

    assert "+" in key.text.split("+", 2)[2]
    assert parse_verifier_key(key.text) == key
    assert parse_verifier_key(f"  {key.text}\n") == key
