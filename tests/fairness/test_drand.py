"""The drand core: BLS12-381 verification of rounds, the chains' arithmetic, and the sandbox beacon's keys."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import random

import pytest
from pyblst import BlstP1Element, BlstP2Element

from web.fairness.drand import (
    BLS_UNCHAINED_G1,
    CURVE_ORDER,
    KNOWN_CHAINS,
    QUICKNET,
    BeaconRound,
    ChainInfo,
    beacon_record,
    bls_public_key,
    bls_secret_from_seed,
    randomness_of,
    round_message,
    sign_round,
    verify_round_signature,
)

UTC = datetime.UTC
SIGNATURE_1000 = bytes.fromhex(
    "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39"
)
RANDOMNESS_1000 = "fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd"
# The base field of BLS12-381; its curves are y² = x³ + 4 (G1) and y² = x³ + 4(1 + i) over Fp² (G2).
P = 0x1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB
SECRET = bls_secret_from_seed(hashlib.sha256(b"test_drand signer").digest())
CHAIN = ChainInfo(
    chain_hash=hashlib.sha256(b"test_drand chain").hexdigest(),
    public_key=bls_public_key(SECRET).hex(),
    period=3,
    genesis_time=1767225600,
    scheme=BLS_UNCHAINED_G1,
    beacon_id="test",
)


# Points that a careless verifier would take: built by hand from the curve equations


def _fp_sqrt(value: int) -> int | None:
    root = pow(value, (P + 1) // 4, P)
    return root if root * root % P == value % P else None


def _g1_compressed(x: int, y: int) -> bytes:
    encoded = bytearray(x.to_bytes(48, "big"))
    encoded[0] |= 0x80 | (0x20 if y > (P - 1) // 2 else 0)
    return bytes(encoded)


def g1_point_off_the_subgroup() -> bytes:
    """A point of E(Fp) outside the order-r subgroup: almost every point is (the cofactor is large)."""
    x = next(x for x in range(1, 100) if _fp_sqrt(x**3 + 4) is not None)
    y = _fp_sqrt(x**3 + 4)
    assert y is not None
    return _g1_compressed(x, y)


def g1_x_off_the_curve() -> bytes:
    x = next(x for x in range(1, 100) if _fp_sqrt(x**3 + 4) is None)
    return _g1_compressed(x, 0)


def _fp2_mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def _fp2_sqrt(a: tuple[int, int]) -> tuple[int, int] | None:
    norm = _fp_sqrt((a[0] * a[0] + a[1] * a[1]) % P)
    if norm is None:
        return None
    half = pow(2, P - 2, P)
    for candidate in ((a[0] + norm) * half % P, (a[0] - norm) * half % P):
        x0 = _fp_sqrt(candidate)
        if x0:
            root = (x0, a[1] * pow(2 * x0, P - 2, P) % P)
            if _fp2_mul(root, root) == (a[0] % P, a[1] % P):
                return root
    return None


def g2_point_off_the_subgroup() -> bytes:
    for x0 in range(1, 100):
        x = (x0, 1)
        cube = _fp2_mul(_fp2_mul(x, x), x)
        y = _fp2_sqrt(((cube[0] + 4) % P, (cube[1] + 4) % P))
        if y is not None:
            encoded = bytearray(x[1].to_bytes(48, "big") + x[0].to_bytes(48, "big"))
            larger = y[1] > (P - 1) // 2 if y[1] else y[0] > (P - 1) // 2
            encoded[0] |= 0x80 | (0x20 if larger else 0)
            return bytes(encoded)
    raise AssertionError("no point found")


G1_IDENTITY = bytes([0xC0]) + bytes(47)
G2_IDENTITY = bytes([0xC0]) + bytes(95)


# quicknet's published round


def test_quicknet_round_1000_verifies_and_its_randomness_is_the_signatures_hash() -> None:
    assert verify_round_signature(QUICKNET, 1000, SIGNATURE_1000)
    assert randomness_of(SIGNATURE_1000).hex() == RANDOMNESS_1000
    assert round_message(1000) == hashlib.sha256((1000).to_bytes(8, "big")).digest()
    assert KNOWN_CHAINS == {QUICKNET.chain_hash: QUICKNET}
    assert QUICKNET.source == "drand:quicknet"


@pytest.mark.parametrize("bit", [0, 5, 7, 8, 100, 200, 383])
def test_a_signature_with_one_bit_flipped_is_refused(bit: int) -> None:
    flipped = bytearray(SIGNATURE_1000)
    flipped[bit // 8] ^= 0x80 >> (bit % 8)
    assert not verify_round_signature(QUICKNET, 1000, bytes(flipped))


def test_a_signature_of_another_round_is_refused() -> None:
    assert not verify_round_signature(QUICKNET, 999, SIGNATURE_1000)
    assert not verify_round_signature(QUICKNET, 1001, SIGNATURE_1000)
    assert not verify_round_signature(CHAIN, 1000, sign_round(SECRET, 999))


def test_the_negated_signature_is_refused() -> None:
    negated = (-BlstP1Element.uncompress(SIGNATURE_1000)).compress()
    assert not verify_round_signature(QUICKNET, 1000, bytes(negated))


def test_points_off_the_curve_or_off_the_subgroup_are_refused_never_raised() -> None:
    off_subgroup, off_curve = g1_point_off_the_subgroup(), g1_x_off_the_curve()

    assert not verify_round_signature(QUICKNET, 1000, off_subgroup)
    assert not verify_round_signature(QUICKNET, 1000, off_curve)
    # verify_round_signature relies on pyblst refusing them when decompressing: pinned here.
    with pytest.raises(ValueError, match="NOT_IN_GROUP"):
        BlstP1Element.uncompress(off_subgroup)
    with pytest.raises(ValueError, match="NOT_ON_CURVE"):
        BlstP1Element.uncompress(off_curve)
    with pytest.raises(ValueError, match="NOT_IN_GROUP"):
        BlstP2Element.uncompress(g2_point_off_the_subgroup())


def test_a_public_key_off_the_subgroup_is_refused() -> None:
    chain = dataclasses.replace(CHAIN, public_key=g2_point_off_the_subgroup().hex())
    assert not verify_round_signature(chain, 7, sign_round(SECRET, 7))


@pytest.mark.parametrize("size", [0, 32, 47, 49, 96])
def test_a_signature_of_the_wrong_length_is_refused(size: int) -> None:
    signature = (SIGNATURE_1000 * 2)[:size]
    assert not verify_round_signature(QUICKNET, 1000, signature)


def test_the_identity_is_refused_as_signature_and_as_public_key() -> None:
    # e(O, g2) = 1 = e(H(m), O): with the identity as key, the identity would "sign" every round.
    assert not verify_round_signature(QUICKNET, 1000, G1_IDENTITY)
    assert not verify_round_signature(dataclasses.replace(CHAIN, public_key=G2_IDENTITY.hex()), 1000, G1_IDENTITY)
    assert not verify_round_signature(
        dataclasses.replace(CHAIN, public_key=G2_IDENTITY.hex()), 1, sign_round(SECRET, 1)
    )


def test_non_canonical_encodings_are_refused() -> None:
    x_too_large = bytearray((P + 4).to_bytes(48, "big"))
    x_too_large[0] |= 0x80
    uncompressed_flag = bytes([SIGNATURE_1000[0] & 0x7F]) + SIGNATURE_1000[1:]
    identity_with_bits = bytes([0xC0]) + bytes(46) + b"\x01"
    for encoded in (bytes(x_too_large), uncompressed_flag, identity_with_bits):
        assert not verify_round_signature(QUICKNET, 1000, encoded)


def test_a_malformed_public_key_unknown_scheme_or_impossible_round_is_refused() -> None:
    signature = sign_round(SECRET, 5)
    assert verify_round_signature(CHAIN, 5, signature)
    for chain in (
        dataclasses.replace(CHAIN, public_key="zz" * 96),
        dataclasses.replace(CHAIN, public_key=CHAIN.public_key[:-2]),
        dataclasses.replace(CHAIN, public_key=QUICKNET.public_key),
        dataclasses.replace(CHAIN, scheme="pedersen-bls-chained"),
        dataclasses.replace(CHAIN, scheme="bls-unchained-on-g1"),
    ):
        assert not verify_round_signature(chain, 5, signature)
    for round_ in (0, -1, 2**64):
        assert not verify_round_signature(CHAIN, round_, signature)


def test_random_bytes_never_raise() -> None:
    draw = random.Random(2026)
    for _ in range(300):
        candidate = bytearray(draw.randbytes(48))
        candidate[0] |= 0x80
        assert not verify_round_signature(QUICKNET, 1000, bytes(candidate))


# The sandbox beacon's keys


def test_the_secret_key_derivation_is_eip_2333s_master_key() -> None:
    seed = bytes.fromhex(
        "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4"
        "ab7c81b2f001698e7463b04"
    )
    assert bls_secret_from_seed(seed) == 6083874454709270928345386274498605044986640685124978867557563392430687146096
    assert 1 <= bls_secret_from_seed(b"\x00" * 32) < CURVE_ORDER
    with pytest.raises(ValueError, match="at least 32 bytes"):
        bls_secret_from_seed(b"short")


def test_a_key_of_our_own_signs_rounds_that_verify_only_for_their_round() -> None:
    public_key = bls_public_key(SECRET)
    signature = sign_round(SECRET, 42)

    assert len(public_key) == 96 and len(signature) == 48
    assert signature == sign_round(SECRET, 42)
    assert verify_round_signature(CHAIN, 42, signature)
    assert not verify_round_signature(CHAIN, 43, signature)
    other = dataclasses.replace(CHAIN, public_key=bls_public_key(SECRET + 1).hex())
    assert not verify_round_signature(other, 42, signature)
    for secret in (0, CURVE_ORDER, -1):
        with pytest.raises(ValueError, match=r"\[1, r\)"):
            sign_round(secret, 1)


# Chain arithmetic and documents


def test_rounds_are_numbered_from_genesis() -> None:
    genesis = datetime.datetime.fromtimestamp(QUICKNET.genesis_time, UTC)
    tick = datetime.timedelta(microseconds=1)

    assert QUICKNET.round_at(genesis - tick) == 0
    assert QUICKNET.round_at(genesis) == 1
    assert QUICKNET.round_at(genesis + datetime.timedelta(seconds=3) - tick) == 1
    assert QUICKNET.round_at(genesis + datetime.timedelta(seconds=3)) == 2
    assert QUICKNET.seconds_of(1000) == 1692803367 + 999 * 3
    assert QUICKNET.time_of(1000) == datetime.datetime(2023, 8, 23, 15, 59, 24, tzinfo=UTC)
    assert QUICKNET.round_at(QUICKNET.time_of(1000)) == 1000


def test_a_chains_info_reads_back_from_drands_format() -> None:
    document = QUICKNET.as_json()

    assert set(document) == {"public_key", "period", "genesis_time", "hash", "groupHash", "schemeID", "metadata"}
    assert ChainInfo.from_json(document) == QUICKNET
    for broken in (
        {**document, "hash": "XY"},
        {**document, "period": 0},
        {**document, "period": "3"},
        {**document, "public_key": "83CF"},
        {key: value for key, value in document.items() if key != "schemeID"},
    ):
        with pytest.raises(ValueError):
            ChainInfo.from_json(broken)


def test_a_certificates_beacon_member_carries_the_chain_and_the_signature() -> None:
    found = BeaconRound(1000, SIGNATURE_1000.hex(), RANDOMNESS_1000)

    assert beacon_record(QUICKNET, found) == {
        "source": "drand:quicknet",
        "chain_hash": QUICKNET.chain_hash,
        "scheme": "bls-unchained-g1-rfc9380",
        "public_key": QUICKNET.public_key,
        "genesis_time": 1692803367,
        "period": 3,
        "round": 1000,
        "signature": SIGNATURE_1000.hex(),
        "randomness": RANDOMNESS_1000,
    }
    assert found.as_json() == {"round": 1000, "randomness": RANDOMNESS_1000, "signature": SIGNATURE_1000.hex()}
