"""How the parts of a v2 certificate must agree: records, log, witness, beacon (docs/fairness.md).

Shared by the builder, which refuses to sign parts that disagree, and by the verifier, which reports them.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from web.fairness.checks import is_hex64, is_int
from web.fairness.drand import KNOWN_CHAINS, ChainInfo, randomness_of
from web.fairness.log import fold_heads, next_head
from web.fairness.note import COSIGNATURE_V1, VerifierKey, cosignature_time, parse_checkpoint, split_note
from web.fairness.timestamps import parse_rfc3339, rfc3339

BEACON_MEMBERS = (
    "source",
    "chain_hash",
    "scheme",
    "public_key",
    "genesis_time",
    "period",
    "round",
    "signature",
    "randomness",
)
LOG_MEMBERS = ("origin", "head_before_seal", "following", "checkpoint", "cosignatures", "witnesses")


def opened_draw(draw: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the certificate's `draw` that the opened record states."""
    return {name: draw.get(name) for name in ("title", "platforms", "sources", "created_at")}


def beacon_form_problems(beacon: object) -> list[str]:
    """Whether the beacon member has its members, each of the right type."""
    if not isinstance(beacon, dict) or set(beacon) != set(BEACON_MEMBERS):
        return [f"beacon must be an object with exactly {', '.join(BEACON_MEMBERS)}"]
    texts = ("source", "chain_hash", "scheme", "public_key", "signature", "randomness")
    if not all(isinstance(beacon[name], str) for name in texts) or not all(
        is_int(beacon[name]) for name in ("genesis_time", "period", "round")
    ):
        return [f"beacon: {', '.join(texts)} must be strings; genesis_time, period and round integers"]
    if beacon["genesis_time"] < 0 or beacon["period"] < 1 or beacon["round"] < 1:
        return ["beacon: genesis_time must not be negative, period and round must be positive"]
    if not is_hex64(beacon["chain_hash"]) or not is_hex64(beacon["randomness"]):
        return ["beacon: chain_hash and randomness must be 64 lowercase hex digits"]
    if not _is_lower_hex(beacon["public_key"]) or not _is_lower_hex(beacon["signature"]):
        return ["beacon: public_key and signature must be lowercase hexadecimal"]
    return []


def beacon_problems(beacon: Mapping[str, Any]) -> list[str]:
    """The beacon's form, its randomness = SHA-256(signature), and a known chain's pinned parameters.

    The BLS signature itself is checked by the verifier, which reports it on its own.
    """
    problems = beacon_form_problems(beacon)
    if problems:
        return problems
    if randomness_of(bytes.fromhex(beacon["signature"])).hex() != beacon["randomness"]:
        return ["beacon: randomness is not SHA-256 of the signature"]
    pinned = KNOWN_CHAINS.get(beacon["chain_hash"])
    if pinned is not None:
        stated = (beacon["public_key"], beacon["genesis_time"], beacon["period"], beacon["scheme"], beacon["source"])
        expected = (pinned.public_key, pinned.genesis_time, pinned.period, pinned.scheme, pinned.source)
        if stated != expected:
            return [
                f"beacon: chain {beacon['chain_hash'][:16]}… is {pinned.source}, whose public key, genesis, period "
                "and scheme are pinned, and the certificate states others"
            ]
    return []


def beacon_chain(beacon: Mapping[str, Any]) -> ChainInfo:
    """The chain to check the round's signature with: the pinned one when known, else the one the beacon states."""
    pinned = KNOWN_CHAINS.get(beacon["chain_hash"])
    if pinned is not None:
        return pinned
    return ChainInfo(
        chain_hash=beacon["chain_hash"],
        public_key=beacon["public_key"],
        period=beacon["period"],
        genesis_time=beacon["genesis_time"],
        scheme=beacon["scheme"],
        beacon_id=beacon["source"].removeprefix("drand:"),
    )


def cosignature_times(log: Mapping[str, Any], keys: Sequence[VerifierKey]) -> list[tuple[int, str]]:
    """(time, witness name) of each cosignature over the log's checkpoint that verifies under one of `keys`."""
    text, _ = split_note(log["checkpoint"])
    return sorted(
        (timestamp, key.name)
        for line in log["cosignatures"]
        for key in keys
        if key.algorithm == COSIGNATURE_V1 and (timestamp := cosignature_time(text, line, key)) is not None
    )


def round_time(beacon: Mapping[str, Any]) -> int:
    """When the beacon's round was published, in Unix seconds: genesis_time + (round - 1) * period."""
    return int(beacon["genesis_time"]) + (int(beacon["round"]) - 1) * int(beacon["period"])


def log_head_problems(cert: Mapping[str, Any]) -> list[str]:
    """The seal, then the following records, lead from head_before_seal to the checkpoint's head and size."""
    log, sealed = cert["log"], cert["sealed"]
    try:
        text, _ = split_note(log["checkpoint"])
        checkpoint = parse_checkpoint(text)
    except ValueError as exc:
        return [f"the checkpoint is not a signed checkpoint note: {exc}"]
    head = fold_heads(
        next_head(bytes.fromhex(log["head_before_seal"]), bytes.fromhex(sealed["record_hash"])),
        [bytes.fromhex(record_hash) for record_hash in log["following"]],
    )
    size = sealed["seq"] + len(log["following"])
    problems = []
    if checkpoint.origin != log["origin"]:
        problems.append(f"the checkpoint is of log {checkpoint.origin!r}, not {log['origin']!r}")
    if checkpoint.size != size:
        problems.append(f"the checkpoint's size is {checkpoint.size}; the seal and the following records make {size}")
    if checkpoint.head != head:
        problems.append(
            f"the seal (record {sealed['seq']}) and the {len(log['following'])} following record(s) lead to head "
            f"{head.hex()[:16]}…, not to the checkpoint's {checkpoint.head.hex()[:16]}…"
        )
    return problems


def log_member_problems(log: object) -> list[str]:
    if not isinstance(log, dict) or set(log) != set(LOG_MEMBERS):
        return [f"log must be an object with exactly {', '.join(LOG_MEMBERS)}"]
    problems = []
    if not isinstance(log["origin"], str) or not is_hex64(log["head_before_seal"]):
        problems.append("log: origin a string, head_before_seal 64 lowercase hex digits")
    if not isinstance(log["following"], list) or not all(is_hex64(item) for item in log["following"]):
        problems.append("log.following must be a list of record hashes (64 lowercase hex digits)")
    if not isinstance(log["checkpoint"], str):
        problems.append("log.checkpoint must be the signed checkpoint note")
    for name in ("cosignatures", "witnesses"):
        if not isinstance(log[name], list) or not all(isinstance(item, str) for item in log[name]):
            problems.append(f"log.{name} must be a list of strings")
    return problems


def opened_problems(cert: Mapping[str, Any]) -> list[str]:
    opened, draw = cert["opened"], cert["draw"]
    problems = []
    if opened["draw_id"] != draw["id"]:
        problems.append(f"the opened record is of draw {opened['draw_id']}, not {draw['id']}")
    if opened["log"] != cert["log"]["origin"]:
        problems.append(f"the opened record is in log {opened['log']!r}, not {cert['log']['origin']!r}")
    differing = [name for name, value in opened_draw(draw).items() if opened["draw"].get(name) != value]
    if differing:
        problems.append(f"the opened record states another {', '.join(differing)} than the certificate")
    if opened["config"] != cert["config"]:
        problems.append("the opened record states other rules (config) than the certificate")
    if opened["beacon"]["chain_hash"] != cert["beacon"]["chain_hash"]:
        problems.append("the opened record announced another randomness chain than the certificate's beacon")
    return problems


def sealed_problems(cert: Mapping[str, Any]) -> list[str]:
    opened, sealed, beacon = cert["opened"], cert["sealed"], cert["beacon"]
    problems = []
    if sealed["draw_id"] != cert["draw"]["id"]:
        problems.append(f"the sealed record is of draw {sealed['draw_id']}, not {cert['draw']['id']}")
    if sealed["log"] != opened["log"]:
        problems.append("the sealed record is in another log than the opened record")
    if sealed["opened"] != opened["record_hash"]:
        problems.append("the sealed record names another opened record")
    if sealed["seq"] <= opened["seq"]:
        problems.append(f"the seal (record {sealed['seq']}) does not come after the opening (record {opened['seq']})")
    if sealed["counts"] != cert["counts"]:
        problems.append("the sealed record states other counts than the certificate")
    if (sealed["merkle_root"], sealed["collected_root"]) != (cert["merkle_root"], cert["collected_root"]):
        problems.append("the sealed record states other roots than the certificate")
    if sealed["beacon"] != {"chain_hash": beacon["chain_hash"], "round": beacon["round"]}:
        problems.append(
            f"the seal fixed round {sealed['beacon']['round']} of chain {sealed['beacon']['chain_hash'][:16]}…; "
            f"the certificate's beacon is round {beacon['round']} of {beacon['chain_hash'][:16]}…"
        )
    sealed_at = parse_rfc3339(sealed["at"])
    if sealed_at.timestamp() >= round_time(beacon):
        problems.append(
            f"round {beacon['round']} was published at {unix_time(round_time(beacon))}, "
            f"not after the seal ({sealed['at']})"
        )
    return problems


def unix_time(seconds: int) -> str:
    """An RFC 3339 time for a message; a time beyond year 9999 is shown as its number of seconds."""
    try:
        return rfc3339(datetime.datetime.fromtimestamp(seconds, datetime.UTC))
    except (OverflowError, OSError, ValueError):
        return f"Unix time {seconds}"


def _is_lower_hex(value: str) -> bool:
    return len(value) % 2 == 0 and all(char in "0123456789abcdef" for char in value)
