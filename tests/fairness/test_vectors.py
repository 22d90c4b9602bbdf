"""The published test vectors, recomputed by a minimal verifier written from docs/fairness.md alone.

Nothing here imports web.fairness except the last tests, which check that the library and the
documentation still produce and quote exactly these values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DOCS = Path(__file__).resolve().parents[2] / "docs"
VECTORS = json.loads((DOCS / "fairness-vectors.json").read_text(encoding="utf-8"))
SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quote(text: str) -> str:
    escaped = (SHORT_ESCAPES.get(char) or (f"\\u{ord(char):04x}" if ord(char) < 0x20 else char) for char in text)
    return '"' + "".join(escaped) + '"'


def canon(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list):
        return "[" + ",".join(canon(item) for item in value) + "]"
    assert isinstance(value, dict)
    return "{" + ",".join(quote(key) + ":" + canon(value[key]) for key in sorted(value)) + "}"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return sha256(b"\x01" + mth(leaves[:split]) + mth(leaves[split:]))


def path(index: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) <= 1:
        return []
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    if index < split:
        return [*path(index, leaves[:split]), mth(leaves[split:])]
    return [*path(index - split, leaves[split:]), mth(leaves[:split])]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def words(seed: bytes) -> Any:
    block = 0
    while True:
        data = hmac.new(seed, b"cleack-draw-v1" + block.to_bytes(8, "big"), hashlib.sha256).digest()
        for offset in (0, 8, 16, 24):
            yield int.from_bytes(data[offset : offset + 8], "big")
        block += 1


def below(stream: Any, bound: int) -> int:
    while True:
        word = next(stream)
        if word < 2**64 - 2**64 % bound:
            return word % bound


def pick(seed: bytes, n: int, k: int) -> list[int]:
    stream, swapped, chosen = words(seed), dict[int, int](), []
    for step in range(min(n, k)):
        slot = step + below(stream, n - step)
        chosen.append(swapped.get(slot, slot))
        swapped[slot] = swapped.get(step, step)
    return chosen


LEAVES = [
    sha256(b"\x00" + canon([e["platform"], e["platform_user_id"], e["username"], e["entry_id"]]).encode())
    for e in VECTORS["entries"]
]
CERT = VECTORS["certificate"]


@pytest.mark.parametrize("case", VECTORS["canonical_json"])
def test_canonical_json_cases(case: dict[str, Any]) -> None:
    assert canon(case["value"]) == case["canonical"]


def test_entries_are_in_canonical_byte_order_and_hash_to_the_published_leaves() -> None:
    keys = [
        tuple(e[name].encode() for name in ("platform", "platform_user_id", "entry_id")) for e in VECTORS["entries"]
    ]
    assert keys == sorted(keys)
    for entry, leaf in zip(VECTORS["entries"], LEAVES, strict=True):
        encoding = canon([entry["platform"], entry["platform_user_id"], entry["username"], entry["entry_id"]])
        assert encoding == entry["encoding"]
        assert encoding.encode().hex() == entry["encoding_hex"]
        assert leaf.hex() == entry["leaf_hash"]


def test_merkle_nodes_root_and_audit_paths() -> None:
    merkle = VECTORS["merkle"]
    assert sha256(b"").hex() == merkle["empty_root"]
    assert mth(LEAVES[0:2]).hex() == merkle["node_0_2"]
    assert mth(LEAVES[2:4]).hex() == merkle["node_2_4"]
    assert mth(LEAVES[0:4]).hex() == merkle["node_0_4"]
    assert mth(LEAVES).hex() == merkle["root"] == CERT["merkle_root"]
    for proof in merkle["proofs"]:
        assert [node.hex() for node in path(proof["index"], LEAVES)] == proof["audit_path"]


def test_commitment_seed_beacon_seed_and_stream() -> None:
    secret, root = bytes.fromhex(VECTORS["secret"]), mth(LEAVES)
    draw_id = uuid.UUID(VECTORS["draw_id"]).bytes
    assert draw_id.hex() == VECTORS["draw_id_bytes_hex"]
    assert sha256(secret).hex() == VECTORS["commitment"] == CERT["commitment"]
    seed = hmac.new(secret, root + draw_id, hashlib.sha256).digest()
    assert seed.hex() == VECTORS["seed"] == CERT["seed"]
    beacon = VECTORS["beacon"]
    mixed = hmac.new(secret, root + draw_id + bytes.fromhex(beacon["value_hex"]), hashlib.sha256).digest()
    assert mixed.hex() == beacon["seed"]
    for number, block in enumerate(VECTORS["stream"]):
        assert hmac.new(seed, b"cleack-draw-v1" + number.to_bytes(8, "big"), hashlib.sha256).hexdigest() == block


def test_selection_steps_and_rejection() -> None:
    selection, seed = VECTORS["selection"], bytes.fromhex(VECTORS["seed"])
    k = selection["winners_count"] + selection["alternates_count"]
    chosen = pick(seed, selection["eligible"], k)
    assert chosen == selection["winner_indices"] + selection["alternate_indices"]
    assert [step["picked"] for step in selection["steps"]] == chosen
    stream = words(seed)
    assert [str(next(stream)) for _ in selection["steps"]] == [step["word"] for step in selection["steps"]]
    rejection = VECTORS["rejection"]
    assert str(2**64 - 2**64 % rejection["bound"]) == rejection["limit"]
    assert below(iter(int(word) for word in rejection["words"]), rejection["bound"]) == rejection["result"]
    listed = [(p["index"], p["position"]) for p in CERT["winners"]] + [
        (p["index"], p["position"]) for p in CERT["alternates"]
    ]
    assert listed == [(index, position) for position, index in enumerate(selection["winner_indices"], 1)] + [
        (index, position) for position, index in enumerate(selection["alternate_indices"], 1)
    ]


def test_certificate_hash_signature_and_key_set() -> None:
    unsigned = {name: value for name, value in CERT.items() if name not in ("certificate_hash", "signature")}
    assert canon(unsigned) == VECTORS["certificate_canonical_json"]
    digest = hashlib.sha256(canon(unsigned).encode()).hexdigest()
    assert digest == VECTORS["certificate_hash"] == CERT["certificate_hash"]

    private = Ed25519PrivateKey.from_private_bytes(unb64url(VECTORS["signing_key"]["private_key"]))
    assert b64url(private.sign(digest.encode("ascii"))) == VECTORS["signature"] == CERT["signature"]
    [published] = VECTORS["signing_key"]["key_set"]["keys"]
    raw = unb64url(published["public_key"])
    assert published["algorithm"] == "Ed25519"
    assert hashlib.sha256(raw).hexdigest()[:16] == published["key_id"] == CERT["key_id"]
    Ed25519PublicKey.from_public_bytes(raw).verify(unb64url(CERT["signature"]), digest.encode("ascii"))


def test_the_library_still_produces_these_vectors() -> None:
    from tests.fairness.make_vectors import vectors_text

    assert vectors_text() == (DOCS / "fairness-vectors.json").read_text(encoding="utf-8")


def test_the_specification_quotes_these_vectors() -> None:
    specification = (DOCS / "fairness.md").read_text(encoding="utf-8")
    quoted = [
        *(entry["leaf_hash"] for entry in VECTORS["entries"]),
        VECTORS["merkle"]["root"],
        VECTORS["commitment"],
        VECTORS["seed"],
        VECTORS["beacon"]["seed"],
        *VECTORS["stream"],
        VECTORS["certificate_canonical_json"],
        VECTORS["certificate_hash"],
        VECTORS["signature"],
        VECTORS["signing_key"]["private_key"],
    ]
    assert [value for value in quoted if value not in specification] == []
    assert "fairness-vectors.json" in specification
