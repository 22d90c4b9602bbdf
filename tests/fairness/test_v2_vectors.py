"""docs/fairness-vectors-v2.json, recomputed by a minimal verifier written from docs/fairness.md alone.

Only the standard library and cryptography (Ed25519) are used, and tests/fairness/test_vectors.py's canonical
JSON and Merkle helpers (themselves written from docs/fairness.md); BLS pairings come from web.fairness.drand,
checked against drand's own published round. The last test checks that the library still produces the file.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tests.fairness.test_vectors import b64url, canon, mth, path, sha256, unb64url

DOCS = Path(__file__).resolve().parents[2] / "docs"
VECTORS = json.loads((DOCS / "fairness-vectors-v2.json").read_text(encoding="utf-8"))
CERT = VECTORS["certificate"]
LOG = VECTORS["log"]
ENTRIES = VECTORS["entries"]
LABEL = b"cleack-draw-v2"


def encode(entry: dict[str, Any]) -> bytes:
    return canon([entry["platform"], entry["platform_user_id"], entry["username"], entry["entry_id"]]).encode()


def key_hash(name: str, algorithm: int, public_key: bytes) -> bytes:
    return sha256(name.encode() + b"\n" + bytes([algorithm]) + public_key)[:4]


def verifier_key_text(name: str, algorithm: int, public_key: bytes) -> str:
    encoded = base64.b64encode(bytes([algorithm]) + public_key).decode()
    return f"{name}+{key_hash(name, algorithm, public_key).hex()}+{encoded}"


def raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


SIGNING_KEY = Ed25519PrivateKey.from_private_bytes(unb64url(VECTORS["keys"]["signing_key"]))
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(unb64url(VECTORS["keys"]["witness_private_key"]))


def test_salted_leaves_verdict_leaves_and_salts() -> None:
    salt_key = bytes.fromhex(VECTORS["salt_key"])
    keys = [(e["platform"].encode(), e["platform_user_id"].encode(), e["entry_id"].encode()) for e in ENTRIES]
    assert keys == sorted(keys)
    for entry in ENTRIES:
        salt = bytes.fromhex(entry["salt"])
        assert salt == sha256(salt_key + encode(entry))[:16]
        leaf = sha256(b"\x00" + salt + encode(entry))
        assert leaf.hex() == entry["leaf_v2"]
        assert sha256(b"\x02" + leaf + entry["verdict"].encode()).hex() == entry["collected_leaf"]


def test_the_two_roots_their_proofs_and_the_counts() -> None:
    trees = VECTORS["trees"]
    eligible = [bytes.fromhex(e["leaf_v2"]) for e in ENTRIES if e["verdict"] == "eligible"]
    collected = [bytes.fromhex(e["collected_leaf"]) for e in ENTRIES]
    assert mth(eligible).hex() == trees["merkle_root"] == CERT["merkle_root"]
    assert mth(collected).hex() == trees["collected_root"] == CERT["collected_root"]
    for proof, leaves in ((trees["eligible_proof"], eligible), (trees["collected_proof"], collected)):
        assert [node.hex() for node in path(proof["index"], leaves)] == proof["audit_path"]
    excluded: dict[str, int] = {}
    for entry in ENTRIES:
        if entry["verdict"] != "eligible":
            excluded[entry["verdict"]] = excluded.get(entry["verdict"], 0) + 1
    counts = {"participants": len(ENTRIES), "excluded": excluded, "eligible": len(eligible)}
    assert counts == trees["counts"] == CERT["counts"]


def test_the_entries_csv_parses_into_the_rows() -> None:
    table = list(csv.DictReader(io.StringIO(VECTORS["entries_csv"]["text"], newline="")))
    assert list(table[0]) == [
        "platform",
        "platform_user_id",
        "username",
        "entry_id",
        "salt",
        "eligible",
        "exclusion_reason",
        "comment",
        "commented_at",
    ]
    parsed = [
        {
            **{name: row[name] for name in ("platform", "platform_user_id", "username", "entry_id", "salt")},
            "verdict": "eligible" if row["eligible"] == "true" else row["exclusion_reason"],
        }
        for row in table
    ]
    assert parsed == VECTORS["entries_csv"]["rows"]
    assert [{**row, "index": number} for number, row in enumerate(parsed)] == [
        {name: entry[name] for name in (*parsed[0], "index")} for entry in ENTRIES
    ]


def test_records_their_hashes_signatures_and_heads() -> None:
    public = SIGNING_KEY.public_key()
    head = bytes(32)
    assert LOG["heads"][0] == head.hex()
    for number, item in enumerate(LOG["records"], start=1):
        record = item["record"]
        unsigned = {name: value for name, value in record.items() if name not in ("record_hash", "signature")}
        assert canon(unsigned) == item["canonical_json"]
        digest = hashlib.sha256(item["canonical_json"].encode()).hexdigest()
        assert digest == record["record_hash"] and record["seq"] == number and record["log"] == LOG["origin"]
        assert b64url(SIGNING_KEY.sign(digest.encode())) == record["signature"]
        public.verify(unb64url(record["signature"]), digest.encode())
        head = sha256(b"\x03" + head + bytes.fromhex(digest))
        assert head.hex() == LOG["heads"][number]
    opened, sealed = CERT["opened"], CERT["sealed"]
    assert LOG["records"][opened["seq"] - 1]["record"] == opened
    assert LOG["records"][sealed["seq"] - 1]["record"] == sealed
    assert CERT["log"]["head_before_seal"] == LOG["heads"][sealed["seq"] - 1]


def test_the_frozen_blacklist_digest() -> None:
    blacklist = LOG["blacklist"]
    assert hashlib.sha256(canon(sorted(blacklist["pairs"])).encode()).hexdigest() == blacklist["sha256"]
    assert CERT["opened"]["blacklist"] == {"sha256": blacklist["sha256"], "count": len(blacklist["pairs"])}


def test_the_signed_checkpoint_note() -> None:
    checkpoint = LOG["checkpoint"]
    size, origin = checkpoint["size"], LOG["origin"]
    text = f"{origin}\n{size}\n{base64.b64encode(bytes.fromhex(LOG['heads'][size])).decode()}\n"
    assert text == checkpoint["text"]
    public = raw_public(SIGNING_KEY)
    assert VECTORS["keys"]["log_verifier_key"] == verifier_key_text(origin, 0x01, public)
    line = f"— {origin} {base64.b64encode(key_hash(origin, 0x01, public) + SIGNING_KEY.sign(text.encode())).decode()}\n"
    assert checkpoint["note"] == text + "\n" + line == CERT["log"]["checkpoint"]
    following = [item["record"]["record_hash"] for item in LOG["records"][CERT["sealed"]["seq"] : size]]
    assert CERT["log"]["following"] == following


def test_the_witness_cosignature_at_a_fixed_time() -> None:
    cosignature = LOG["cosignature"]
    text, moment = LOG["checkpoint"]["text"], cosignature["time"]
    message = f"cosignature/v1\ntime {moment}\n{text}"
    assert message == cosignature["message"]
    public = raw_public(WITNESS_KEY)
    name = VECTORS["keys"]["witness_verifier_key"].split("+")[0]
    assert (
        VECTORS["keys"]["witness_verifier_key"] == verifier_key_text(name, 0x04, public) == CERT["log"]["witnesses"][0]
    )
    body = key_hash(name, 0x04, public) + moment.to_bytes(8, "big") + WITNESS_KEY.sign(message.encode())
    assert cosignature["line"] == f"— {name} {base64.b64encode(body).decode()}\n" == CERT["log"]["cosignatures"][0]
    beacon = CERT["beacon"]
    assert moment < beacon["genesis_time"] + (beacon["round"] - 1) * beacon["period"]


def test_bls_beacon_rounds_verify_quicknets_published_one_included() -> None:
    from web.fairness.drand import ChainInfo, bls_public_key, verify_round_signature

    quicknet = VECTORS["beacon"]["quicknet"]
    assert sha256(bytes.fromhex(quicknet["signature"])).hex() == quicknet["randomness"]
    assert sha256((1000).to_bytes(8, "big")).hex() == quicknet["message"]
    info = ChainInfo(
        quicknet["chain_hash"], quicknet["public_key"], 3, quicknet["genesis_time"], quicknet["scheme"], "quicknet"
    )
    assert verify_round_signature(info, 1000, bytes.fromhex(quicknet["signature"]))
    assert not verify_round_signature(info, 1001, bytes.fromhex(quicknet["signature"]))

    sandbox = VECTORS["beacon"]["sandbox"]
    assert sandbox == CERT["beacon"]
    secret = int(VECTORS["keys"]["bls_secret"], 16)
    assert bls_public_key(secret).hex() == sandbox["public_key"]
    info = ChainInfo(sandbox["chain_hash"], sandbox["public_key"], 3, sandbox["genesis_time"], sandbox["scheme"], "x")
    assert verify_round_signature(info, sandbox["round"], bytes.fromhex(sandbox["signature"]))
    assert sha256(bytes.fromhex(sandbox["signature"])).hex() == sandbox["randomness"]
    chain = sha256(
        bytes.fromhex(sandbox["public_key"]) + sandbox["genesis_time"].to_bytes(8, "big") + (3).to_bytes(8, "big")
    )
    assert chain.hex() == sandbox["chain_hash"]


def words(seed: bytes) -> Any:
    block = 0
    while True:
        data = hmac.new(seed, LABEL + block.to_bytes(8, "big"), hashlib.sha256).digest()
        for offset in (0, 8, 16, 24):
            yield int.from_bytes(data[offset : offset + 8], "big")
        block += 1


def draw(seed: bytes, n: int, winners: int, alternates: int) -> tuple[list[int], list[int]]:
    count = min(winners, n)
    extra = min(alternates, n - count)
    stream, swapped, chosen = words(seed), dict[int, int](), []
    for step in range(count + extra):
        bound = n - step
        while (word := next(stream)) >= 2**64 - 2**64 % bound:
            pass
        slot = step + word % bound
        chosen.append(swapped.get(slot, slot))
        swapped[slot] = swapped.get(step, step)
    return chosen[:count], chosen[count:]


def test_the_seed_its_stream_and_the_selection() -> None:
    seeded = VECTORS["seed"]
    assert seeded["sealed_record_hash"] == CERT["sealed"]["record_hash"]
    assert seeded["randomness"] == CERT["beacon"]["randomness"]
    seed = sha256(LABEL + bytes.fromhex(seeded["sealed_record_hash"]) + bytes.fromhex(seeded["randomness"]))
    assert seed.hex() == seeded["seed"] == CERT["seed"]
    for number, block in enumerate(seeded["stream"]):
        assert hmac.new(seed, LABEL + number.to_bytes(8, "big"), hashlib.sha256).hexdigest() == block


@pytest.mark.parametrize(
    "case", [VECTORS["selection"], *VECTORS["clamping"], VECTORS["empty_draw"]["selection"]], ids=str
)
def test_selections_clamped_to_the_eligible_entries(case: dict[str, Any]) -> None:
    seed = bytes.fromhex(VECTORS["seed"]["seed"])
    picks = draw(seed, case["eligible"], case["winners_count"], case["alternates_count"])
    assert picks == (case["winner_indices"], case["alternate_indices"])


def test_an_empty_draw_has_the_empty_merkle_root() -> None:
    empty = VECTORS["empty_draw"]
    assert empty["merkle_root"] == sha256(b"").hex() and empty["counts"]["eligible"] == 0
    excluded = [entry for entry in ENTRIES if entry["verdict"] != "eligible"]
    assert mth([bytes.fromhex(entry["collected_leaf"]) for entry in excluded]).hex() == empty["collected_root"]


def test_the_certificate_its_picks_hash_signature_and_chain() -> None:
    selection = VECTORS["selection"]
    eligible = [entry for entry in ENTRIES if entry["verdict"] == "eligible"]
    for name, indices in (("winners", selection["winner_indices"]), ("alternates", selection["alternate_indices"])):
        assert [pick["index"] for pick in CERT[name]] == indices
        for position, pick in enumerate(CERT[name], start=1):
            entry = eligible[pick["index"]]
            assert (
                pick["position"] == position and pick["salt"] == entry["salt"] and pick["leaf_hash"] == entry["leaf_v2"]
            )
    unsigned = {name: value for name, value in CERT.items() if name not in ("certificate_hash", "signature")}
    assert canon(unsigned) == VECTORS["certificate_canonical_json"]
    digest = hashlib.sha256(canon(unsigned).encode()).hexdigest()
    assert digest == CERT["certificate_hash"]
    [published] = VECTORS["keys"]["key_set"]["keys"]
    Ed25519PublicKey.from_public_bytes(unb64url(published["public_key"])).verify(
        unb64url(CERT["signature"]), digest.encode()
    )
    first, second = VECTORS["chain"]
    assert second == CERT
    first_unsigned = {name: value for name, value in first.items() if name not in ("certificate_hash", "signature")}
    assert hashlib.sha256(canon(first_unsigned).encode()).hexdigest() == first["certificate_hash"]
    assert CERT["previous_certificate_hash"] == first["certificate_hash"]
    certified = LOG["records"][-1]["record"]
    assert certified["kind"] == "certified" and certified["certificate_hash"] == CERT["certificate_hash"]


def test_the_library_verifies_and_still_produces_these_vectors() -> None:
    from tests.fairness.make_vectors_v2 import vectors_v2_text
    from web.fairness import parse_key_set, parse_verifier_key, read_entries_csv, verify_certificate

    assert vectors_v2_text() == (DOCS / "fairness-vectors-v2.json").read_text(encoding="utf-8")
    rows = list(read_entries_csv(io.StringIO(VECTORS["entries_csv"]["text"], newline="")))
    report = verify_certificate(
        CERT,
        keys=parse_key_set(VECTORS["keys"]["key_set"]),
        rows=rows,
        witnesses=[parse_verifier_key(VECTORS["keys"]["witness_verifier_key"])],
        log_records=[item["record"] for item in LOG["records"]],
        previous=VECTORS["chain"][0],
    )
    assert report.ok, report.first_failure
