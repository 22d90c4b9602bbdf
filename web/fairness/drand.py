"""drand rounds, checked with BLS12-381: randomness that nobody holds (docs/fairness.md).

A drand chain publishes round R at genesis_time + (R - 1) * period. For the scheme `bls-unchained-g1-rfc9380`
(quicknet) the round's signature is a BLS signature, a compressed G1 point of 48 bytes, over
SHA-256(uint64_be(R)) under the chain's public key, a compressed G2 point of 96 bytes; it is valid iff
e(signature, g2) = e(H(message), public key), H being RFC 9380's hash to G1 with the DST below. The round's
randomness is SHA-256 of the signature's bytes. The threshold key behind quicknet is held by no one.

Pure: the standard library and pyblst only (no settings, no network).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyblst import BlstP1Element, BlstP2Element, final_verify, miller_loop

BLS_UNCHAINED_G1 = "bls-unchained-g1-rfc9380"
SUPPORTED_SCHEMES = (BLS_UNCHAINED_G1,)
DST_G1 = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"
# The order r of BLS12-381's G1 and G2 groups.
CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
G2_GENERATOR = BlstP2Element.uncompress(
    bytes.fromhex(
        "93e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e"
        "024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8"
    )
)
SIGNATURE_SIZE = 48
PUBLIC_KEY_SIZE = 96
_G1_IDENTITY = BlstP1Element()
_G2_IDENTITY = BlstP2Element()
_KEYGEN_SALT = b"BLS-SIG-KEYGEN-SALT-"
_KEYGEN_LENGTH = 48
_CHAIN_HASH = re.compile(r"[0-9a-f]{64}")
_LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})+")
_UTC = datetime.UTC


@dataclass(frozen=True)
class ChainInfo:
    """A drand chain's parameters, as its /info document gives them (public key in hex)."""

    chain_hash: str
    public_key: str
    period: int
    genesis_time: int
    scheme: str
    beacon_id: str
    group_hash: str = ""

    def round_at(self, moment: datetime.datetime) -> int:
        """The newest round out at `moment` (an aware datetime), 0 before genesis, as drand numbers them."""
        elapsed = moment - datetime.datetime.fromtimestamp(self.genesis_time, _UTC)
        if elapsed < datetime.timedelta(0):
            return 0
        return elapsed // datetime.timedelta(seconds=self.period) + 1

    def seconds_of(self, round_: int) -> int:
        """When round `round_` is published, in Unix seconds: genesis_time + (round - 1) * period."""
        return self.genesis_time + (round_ - 1) * self.period

    def time_of(self, round_: int) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.seconds_of(round_), _UTC)

    @property
    def source(self) -> str:
        """How a certificate names this beacon: `drand:quicknet`, `drand:cleack-sandbox`."""
        return f"drand:{self.beacon_id or self.chain_hash[:16]}"

    def as_json(self) -> dict[str, Any]:
        """The chain's document in drand's `GET /{chain_hash}/info` format."""
        return {
            "public_key": self.public_key,
            "period": self.period,
            "genesis_time": self.genesis_time,
            "hash": self.chain_hash,
            "groupHash": self.group_hash,
            "schemeID": self.scheme,
            "metadata": {"beaconID": self.beacon_id},
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ChainInfo:
        """A drand /info document read back; ValueError names what is missing or unusable."""
        metadata = body.get("metadata")
        beacon_id = metadata.get("beaconID") if isinstance(metadata, dict) else None
        period, genesis_time = body.get("period"), body.get("genesis_time")
        texts = {name: body.get(name) for name in ("hash", "public_key", "schemeID")}
        if missing := [name for name, value in texts.items() if not isinstance(value, str) or not value]:
            raise ValueError(f"{', '.join(missing)} missing")
        chain_hash, public_key, scheme = (str(texts[name]) for name in ("hash", "public_key", "schemeID"))
        if type(period) is not int or period < 1 or type(genesis_time) is not int or genesis_time < 0:
            raise ValueError("period and genesis_time must be positive integers")
        if not _CHAIN_HASH.fullmatch(chain_hash) or not _LOWER_HEX.fullmatch(public_key):
            raise ValueError("hash and public_key must be lowercase hexadecimal")
        group_hash = body.get("groupHash")
        return cls(
            chain_hash=chain_hash,
            public_key=public_key,
            period=period,
            genesis_time=genesis_time,
            scheme=scheme,
            beacon_id=beacon_id if isinstance(beacon_id, str) else "",
            group_hash=group_hash if isinstance(group_hash, str) else "",
        )


QUICKNET = ChainInfo(
    chain_hash="52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971",
    public_key=(
        "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c"
        "921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a"
    ),
    period=3,
    genesis_time=1692803367,
    scheme=BLS_UNCHAINED_G1,
    beacon_id="quicknet",
    group_hash="f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e",
)
# Chains whose parameters are pinned here: their public key is never taken from a relay, nor from a certificate.
KNOWN_CHAINS: dict[str, ChainInfo] = {QUICKNET.chain_hash: QUICKNET}


@dataclass(frozen=True)
class BeaconRound:
    """One published round: its number, its signature and its randomness (hex)."""

    round: int
    signature: str
    randomness: str

    def as_json(self) -> dict[str, Any]:
        """The round in drand's `GET /{chain_hash}/public/{round}` format."""
        return {"round": self.round, "randomness": self.randomness, "signature": self.signature}


def round_message(round_: int) -> bytes:
    """What round `round_` signs: SHA-256(uint64_be(round))."""
    return hashlib.sha256(round_.to_bytes(8, "big")).digest()


def randomness_of(signature: bytes) -> bytes:
    """A round's randomness: SHA-256 of its signature's bytes."""
    return hashlib.sha256(signature).digest()


def verify_round_signature(info: ChainInfo, round_: int, signature: bytes) -> bool:
    """Whether `signature` is round `round_`'s BLS signature under the chain's public key; never raises.

    pyblst's uncompress refuses bad encodings, points off the curve and points outside the prime-order
    subgroup (blst checks subgroup membership on decompression; tests/fairness/test_drand.py pins it);
    the identity, which would make any message verify under the identity key, is refused here.
    """
    if info.scheme not in SUPPORTED_SCHEMES or not 1 <= round_ < 2**64 or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        public_key = bytes.fromhex(info.public_key)
    except ValueError:
        return False
    if len(public_key) != PUBLIC_KEY_SIZE:
        return False
    try:
        point = BlstP1Element.uncompress(bytes(signature))
        key = BlstP2Element.uncompress(public_key)
    except ValueError:
        return False
    if point == _G1_IDENTITY or key == _G2_IDENTITY:
        return False
    hashed = BlstP1Element.hash_to_group(round_message(round_), DST_G1)
    return bool(final_verify(miller_loop(point, G2_GENERATOR), miller_loop(hashed, key)))


def beacon_record(info: ChainInfo, found: BeaconRound) -> dict[str, Any]:
    """The certificate's `beacon` member (docs/fairness.md): the chain, and the round with its signature."""
    return {
        "source": info.source,
        "chain_hash": info.chain_hash,
        "scheme": info.scheme,
        "public_key": info.public_key,
        "genesis_time": info.genesis_time,
        "period": info.period,
        "round": found.round,
        "signature": found.signature,
        "randomness": found.randomness,
    }


# BLS keys of a beacon of our own (the sandbox beacon): the same scheme as quicknet, with one signer.


def bls_secret_from_seed(seed: bytes) -> int:
    """A BLS secret key in [1, r) from a seed of at least 32 bytes: KeyGen of the IETF BLS signature draft.

    salt = "BLS-SIG-KEYGEN-SALT-"; repeat { salt = SHA-256(salt); PRK = HKDF-Extract(salt, seed ‖ 0x00);
    OKM = HKDF-Expand(PRK, uint16_be(48), 48); SK = int(OKM) mod r } until SK ≠ 0 (key_info empty; the
    same derivation as EIP-2333's master key, whose vectors the tests check).
    """
    if len(seed) < 32:
        raise ValueError("a BLS key seed is at least 32 bytes")
    salt, secret = _KEYGEN_SALT, 0
    while secret == 0:
        salt = hashlib.sha256(salt).digest()
        prk = hmac.new(salt, seed + b"\x00", hashlib.sha256).digest()
        info = _KEYGEN_LENGTH.to_bytes(2, "big")
        okm, block = b"", b""
        for counter in range(1, -(-_KEYGEN_LENGTH // 32) + 1):
            block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
            okm += block
        secret = int.from_bytes(okm[:_KEYGEN_LENGTH], "big") % CURVE_ORDER
    return secret


def _checked_secret(secret: int) -> int:
    if not 1 <= secret < CURVE_ORDER:
        raise ValueError("a BLS secret key is an integer in [1, r)")
    return secret


def bls_public_key(secret: int) -> bytes:
    """The public key of `secret`: secret * g2, compressed (96 bytes)."""
    return bytes(G2_GENERATOR.scalar_mul(_checked_secret(secret)).compress())


def sign_round(secret: int, round_: int) -> bytes:
    """Round `round_`'s signature under `secret`: secret * H(round_message), compressed (48 bytes)."""
    hashed = BlstP1Element.hash_to_group(round_message(round_), DST_G1)
    return bytes(hashed.scalar_mul(_checked_secret(secret)).compress())
