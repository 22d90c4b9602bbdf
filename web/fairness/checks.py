"""What a verification reports, and the checks v1 and v2 certificates share."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from web.fairness.canonical import CanonicalJSONError
from web.fairness.certificate import certificate_hash
from web.fairness.entries import Entry
from web.fairness.signing import PublishedKey, signature_is_valid, signature_spelling_problem
from web.fairness.timestamps import parse_rfc3339

HEX64 = re.compile(r"[0-9a-f]{64}")
ENTRY_FIELDS = ("platform", "platform_user_id", "username", "entry_id")
KEY_SET_HINT = "give --keys KEYSET.json, the key set published at /.well-known/cleack-signing-key"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str
    # False when the check could not be made (a missing input): it counts as failed.
    checked: bool = True


@dataclass
class VerificationReport:
    checks: list[Check] = field(default_factory=list)
    # What was not checked, and how to check it.
    notes: list[str] = field(default_factory=list)
    # What holds but a reader must know: a sandbox beacon, witness keys named by the server, other runs.
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def first_failure(self) -> Check | None:
        return next((check for check in self.checks if not check.ok), None)

    @property
    def not_checked(self) -> list[Check]:
        return [check for check in self.checks if not check.checked]

    def add(self, name: str, ok: bool, message: str) -> None:
        self.checks.append(Check(name, ok, message))

    def add_problems(self, name: str, problems: list[str], message: str) -> None:
        """One check: passing with `message` when there are no problems, else failing with them."""
        self.add(name, not problems, message if not problems else "; ".join(problems))

    def add_not_checked(self, name: str, message: str) -> None:
        self.checks.append(Check(name, False, message, checked=False))

    def extend(self, other: VerificationReport) -> None:
        self.checks.extend(other.checks)
        self.notes.extend(other.notes)
        self.warnings.extend(other.warnings)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_hex64(value: object) -> bool:
    return isinstance(value, str) and HEX64.fullmatch(value) is not None


def time_problem(value: object, name: str) -> list[str]:
    if isinstance(value, str):
        try:
            parse_rfc3339(value)
        except ValueError:
            pass
        else:
            return []
    return [f"{name} is not an RFC 3339 time"]


def pick_problems(picks: object, name: str, *, salted: bool = False) -> list[str]:
    if not isinstance(picks, list):
        return [f"{name} is not a list"]
    problems = []
    for number, pick in enumerate(picks, start=1):
        where = f"{name}[{number}]"
        if not isinstance(pick, dict):
            problems.append(f"{where} is not an object")
            continue
        if not is_int(pick.get("position")) or not is_int(pick.get("index")):
            problems.append(f"{where}: position and index must be integers")
        if not is_hex64(pick.get("leaf_hash")):
            problems.append(f"{where}: leaf_hash must be 64 lowercase hex digits")
        if not all(isinstance(pick.get(name), str) for name in ENTRY_FIELDS):
            problems.append(f"{where}: {', '.join(ENTRY_FIELDS)} must be strings")
        if salted and not (isinstance(pick.get("salt"), str) and re.fullmatch(r"[0-9a-f]{32}", pick["salt"])):
            problems.append(f"{where}: salt must be 32 lowercase hex digits")
    return problems


def draw_problems(draw: object) -> list[str]:
    if not isinstance(draw, dict):
        return ["draw is not an object"]
    problems = []
    try:
        if str(uuid.UUID(str(draw.get("id")))) != draw.get("id"):
            problems.append("draw.id must be a lowercase hyphenated UUID")
    except ValueError:
        problems.append("draw.id is not a UUID")
    for name in ("created_at", "started_at", "completed_at"):
        problems += time_problem(draw.get(name), f"draw.{name}")
    return problems


def check_certificate_hash(report: VerificationReport, cert: Mapping[str, Any]) -> None:
    try:
        digest = certificate_hash(cert)
    except CanonicalJSONError as exc:
        report.add("certificate hash", False, f"the certificate has no canonical form: {exc}")
        return
    if digest == cert["certificate_hash"]:
        report.add("certificate hash", True, f"SHA-256 of the canonical JSON is {digest}")
    else:
        report.add("certificate hash", False, f"SHA-256 of the canonical JSON is {digest}, not the stated one")


def certificate_signature_problem(cert: Mapping[str, Any], keys: Mapping[str, PublishedKey]) -> str | None:
    """Why the certificate's signature does not hold under the key set, or None when it does."""
    key = keys.get(cert["key_id"])
    if key is None:
        return f"key {cert['key_id']} is not in the key set"
    issued_at = parse_rfc3339(cert["issued_at"])
    if issued_at < key.created_at or (key.retired_at is not None and issued_at > key.retired_at):
        return f"key {key.key_id} was not in service at {cert['issued_at']}"
    spelling = signature_spelling_problem(cert["signature"])
    if spelling is not None:
        return spelling
    if not signature_is_valid(key.public_key, cert["certificate_hash"], cert["signature"]):
        return f"the signature is not key {key.key_id}'s over the certificate hash"
    return None


def signature_not_checked(report: VerificationReport, what: str) -> None:
    report.add_not_checked("signature", f"not checked ({what}): {KEY_SET_HINT}")
    report.notes.append(f"signature not checked: {KEY_SET_HINT}")


def check_previous(report: VerificationReport, cert: Mapping[str, Any], previous: Mapping[str, Any]) -> None:
    try:
        digest = certificate_hash(previous)
    except CanonicalJSONError as exc:
        report.add("previous certificate", False, f"the previous certificate has no canonical form: {exc}")
        return
    linked = cert["previous_certificate_hash"] == digest
    report.add(
        "previous certificate",
        linked,
        f"previous_certificate_hash is the hash of the given previous certificate ({digest})"
        if linked
        else f"previous_certificate_hash is {cert['previous_certificate_hash']}, the given previous one is {digest}",
    )


def check_seed_and_picks(report: VerificationReport, cert: Mapping[str, Any], selection: Any, formula: str) -> None:
    """The stated seed is `selection`'s (derived by `formula`, as the message says), and so are the picks."""
    matches = selection.seed.hex() == cert["seed"]
    report.add(
        "seed",
        matches,
        f"{formula} " + ("is the stated seed" if matches else f"is {selection.seed.hex()}, not the stated seed"),
    )
    check_picks(report, cert, selection.winner_indices, selection.alternate_indices)


def check_winner_leaves(
    report: VerificationReport, cert: Mapping[str, Any], leaf_of: Callable[[Mapping[str, Any]], bytes], what: str
) -> None:
    """Each listed leaf_hash is `leaf_of` its pick (`what` names that leaf in the messages)."""
    wrong = [
        f"{name} {pick['position']}"
        for name in ("winners", "alternates")
        for pick in cert[name]
        if leaf_of(pick).hex() != pick["leaf_hash"]
    ]
    report.add(
        "winner leaves",
        not wrong,
        f"each listed leaf_hash is {what} of its entry's fields"
        if not wrong
        else f"leaf_hash is not {what} of the entry's fields for {', '.join(wrong)}",
    )


def check_picks(report: VerificationReport, cert: Mapping[str, Any], winners: list[int], alternates: list[int]) -> None:
    """The listed leaf indices are the ones the seed draws, with positions 1, 2, 3… (both algorithms)."""
    stated = ([pick["index"] for pick in cert["winners"]], [pick["index"] for pick in cert["alternates"]])
    positions_ok = all(
        [pick["position"] for pick in cert[name]] == list(range(1, len(cert[name]) + 1))
        for name in ("winners", "alternates")
    )
    eligible = cert["counts"]["eligible"]
    if stated == (winners, alternates) and positions_ok:
        report.add(
            "selection",
            True,
            f"winners at leaf indices {winners} and alternates at {alternates}, "
            f"re-drawn from the seed among {eligible} eligible entries",
        )
    elif stated == (winners, alternates):
        report.add("selection", False, "positions must run 1, 2, 3… in draw order")
    else:
        report.add(
            "selection",
            False,
            f"the seed draws winners {winners} and alternates {alternates} among {eligible} eligible entries; "
            f"the certificate lists {stated[0]} and {stated[1]}",
        )


def entry_of(pick: Mapping[str, Any]) -> Entry:
    return Entry(*(pick[name] for name in ENTRY_FIELDS))


def by_reason(excluded: Mapping[str, int]) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in sorted(excluded.items())) or "none"
