"""Verifying a cleack-draw-v2 certificate: each numbered check of docs/fairness.md, by name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from web.fairness.canonical import CanonicalJSONError
from web.fairness.certificate_v2 import ALGORITHM_V2, select_winners_v2
from web.fairness.checks import (
    VerificationReport,
    certificate_signature_problem,
    check_certificate_hash,
    check_previous,
    check_seed_and_picks,
    check_winner_leaves,
    draw_problems,
    entry_of,
    is_hex64,
    is_int,
    pick_problems,
    signature_not_checked,
    time_problem,
)
from web.fairness.consistency_v2 import (
    beacon_chain,
    beacon_form_problems,
    beacon_problems,
    cosignature_times,
    log_head_problems,
    log_member_problems,
    opened_problems,
    round_time,
    sealed_problems,
    unix_time,
)
from web.fairness.drand import KNOWN_CHAINS, verify_round_signature
from web.fairness.entries import Entry, leaf_v2
from web.fairness.entries_csv import EntryRow
from web.fairness.log import (
    counts_problems,
    log_verifier_key,
    record_form_problems,
    record_hash,
    record_signature_problems,
)
from web.fairness.note import (
    VerifierKey,
    note_signature_valid,
    parse_verifier_key,
    split_note,
)
from web.fairness.signing import PublishedKey
from web.fairness.verify_entries import check_rows_v2
from web.fairness.verify_log import check_log_extract

SANDBOX_SOURCE = "drand:cleack-sandbox"
PIN_HINT = "pin the witness's key with --witness (its operator publishes it at GET /key)"


def verify_certificate_v2(
    cert: Mapping[str, Any],
    *,
    keys: Mapping[str, PublishedKey] | None = None,
    entries: Iterable[Entry] | None = None,
    rows: Iterable[EntryRow] | None = None,
    previous: Mapping[str, Any] | None = None,
    witnesses: Sequence[VerifierKey] | None = None,
    log_records: Sequence[Mapping[str, Any]] | None = None,
) -> VerificationReport:
    report = VerificationReport()
    problems = structure_problems_v2(cert)
    if problems:
        report.add("format", False, "; ".join(problems))
        return report
    report.add("format", True, f"a {ALGORITHM_V2} certificate with every field")
    check_certificate_hash(report, cert)
    _check_record(report, cert, "opened", opened_problems(cert))
    _check_record(report, cert, "sealed", sealed_problems(cert))
    _check_log(report, cert, keys)
    _check_witness(report, cert, witnesses)
    _check_beacon(report, cert)
    _check_seed_and_selection(report, cert)
    check_winner_leaves(
        report, cert, lambda pick: leaf_v2(entry_of(pick), bytes.fromhex(pick["salt"])), "the salted leaf"
    )
    _check_signatures(report, cert, keys)
    if previous is not None:
        check_previous(report, cert, previous)
    if rows is not None:
        check_rows_v2(report, cert, rows)
    elif entries is not None:
        report.add(
            "entries",
            False,
            "a cleack-draw-v2 certificate's leaves are salted: give every row of its entries.csv, with the salts",
        )
    if log_records is not None:
        check_log_extract(report, cert, log_records, keys)
    return report


def structure_problems_v2(cert: Mapping[str, Any]) -> list[str]:
    """What keeps the document from being read as a v2 certificate at all."""
    problems = draw_problems(cert.get("draw"))
    config = cert.get("config")
    if not isinstance(config, dict) or not all(
        is_int(config.get(name)) and config[name] >= 0 for name in ("winners_count", "alternates_count")
    ):
        problems.append("config must give winners_count and alternates_count as non-negative integers")
    problems += counts_problems(cert.get("counts"))
    for name in ("merkle_root", "collected_root", "seed", "certificate_hash"):
        if not is_hex64(cert.get(name)):
            problems.append(f"{name} must be 64 lowercase hex digits")
    if cert.get("previous_certificate_hash") is not None and not is_hex64(cert.get("previous_certificate_hash")):
        problems.append("previous_certificate_hash must be null or 64 lowercase hex digits")
    for kind in ("opened", "sealed"):
        problems += [f"{kind}: {problem}" for problem in record_form_problems(cert.get(kind))]
        if isinstance(cert.get(kind), dict) and cert[kind].get("kind") != kind:
            problems.append(f"{kind} is a {cert[kind].get('kind')!r} record")
    problems += log_member_problems(cert.get("log"))
    problems += beacon_form_problems(cert.get("beacon"))
    problems += pick_problems(cert.get("winners"), "winners", salted=True)
    problems += pick_problems(cert.get("alternates"), "alternates", salted=True)
    problems += time_problem(cert.get("issued_at"), "issued_at")
    if not isinstance(cert.get("key_id"), str) or not isinstance(cert.get("signature"), str):
        problems.append("key_id and signature must be strings")
    return problems


def _check_record(report: VerificationReport, cert: Mapping[str, Any], kind: str, problems: list[str]) -> None:
    record = cert[kind]
    try:
        digest = record_hash(record)
    except CanonicalJSONError as exc:
        problems = [f"it has no canonical form: {exc}", *problems]
    else:
        if digest != record["record_hash"]:
            problems = [f"its content hashes to {digest[:16]}…, not to its record_hash", *problems]
    if kind == "opened":
        message = (
            f"record {record['seq']} of log {record['log']} opened draw {record['draw_id']} at {record['at']} "
            "with this title, these sources and these rules"
        )
    else:
        beacon = cert["beacon"]
        message = (
            f"record {record['seq']} sealed {cert['counts']['participants']} collected entries "
            f"({cert['counts']['eligible']} eligible) and both roots at {record['at']}, and fixed round "
            f"{beacon['round']}, published later at {unix_time(round_time(beacon))}"
        )
    report.add_problems(f"{kind} record", problems, message)


def _check_log(report: VerificationReport, cert: Mapping[str, Any], keys: Mapping[str, PublishedKey] | None) -> None:
    problems = log_head_problems(cert)
    log, sealed = cert["log"], cert["sealed"]
    size = sealed["seq"] + len(log["following"])
    message = (
        f"the seal (record {sealed['seq']}) and the {len(log['following'])} record(s) after it lead from the head "
        f"before the seal to the head of the checkpoint of size {size}"
    )
    if not problems:
        if keys is None:
            message += " (its signature needs the key set)"
        else:
            signer = _checkpoint_signer(log, keys)
            if signer is None:
                problems.append(f"the checkpoint is not signed, as {log['origin']}, by any key of the key set")
            else:
                message += f", signed by the log with key {signer}"
    report.add_problems("log", problems, message)


def _checkpoint_signer(log: Mapping[str, Any], keys: Mapping[str, PublishedKey]) -> str | None:
    text, lines = split_note(log["checkpoint"])
    for key in keys.values():
        verifier = log_verifier_key(log["origin"], key.public_key)
        if any(note_signature_valid(text, line, verifier) for line in lines):
            return key.key_id
    return None


def _check_witness(report: VerificationReport, cert: Mapping[str, Any], trusted: Sequence[VerifierKey] | None) -> None:
    """At least one cosignature, under a witness key, over the checkpoint holding the seal, made before the round."""
    log, beacon = cert["log"], cert["beacon"]
    keys, unreadable = (list(trusted), []) if trusted else _named_witnesses(log["witnesses"])
    published = round_time(beacon)
    round_ = f"round {beacon['round']} was published at {unix_time(published)}"
    if log_head_problems(cert):
        report.add("witness", False, "the cosigned checkpoint does not contain the seal (see the log check)")
        return
    if not keys:
        named = f" ({'; '.join(unreadable)})" if unreadable else ""
        report.add("witness", False, f"no witness key to check the cosignatures with{named}: {PIN_HINT}")
        return
    times = cosignature_times(log, keys)
    names = ", ".join(sorted({key.name for key in keys}))
    if not times:
        report.add(
            "witness",
            False,
            f"no cosignature over the checkpoint holding the seal verifies under the witness key(s) of {names}",
        )
        return
    timestamp, name = times[0]
    if timestamp >= published:
        report.add(
            "witness",
            False,
            f"the witness {name} cosigned the log head containing the seal at {unix_time(timestamp)}, not before "
            f"{round_}: nothing shows the seal was fixed before the randomness was known",
        )
        return
    message = f"the witness {name} cosigned the log head containing the seal at {unix_time(timestamp)}, before {round_}"
    if trusted:
        report.add("witness", True, message + " (a witness key you gave)")
        return
    report.add(
        "witness",
        True,
        message + f" (under the key the certificate names in log.witnesses: the server's own naming; {PIN_HINT})",
    )
    report.warnings.append(
        f"the witness key {name} was taken from the certificate itself (log.witnesses), i.e. named by the server: "
        f"{PIN_HINT}"
    )


def _named_witnesses(texts: Sequence[str]) -> tuple[list[VerifierKey], list[str]]:
    keys, unreadable = [], []
    for text in texts:
        try:
            keys.append(parse_verifier_key(text))
        except ValueError as exc:
            unreadable.append(f"log.witnesses {text[:40]!r}: {exc}")
    return keys, unreadable


def _check_beacon(report: VerificationReport, cert: Mapping[str, Any]) -> None:
    beacon = cert["beacon"]
    problems = beacon_problems(beacon)
    if not problems and not verify_round_signature(
        beacon_chain(beacon), beacon["round"], bytes.fromhex(beacon["signature"])
    ):
        problems.append(
            f"the signature of round {beacon['round']} is not a valid BLS signature under the beacon's public key"
        )
    pinned = KNOWN_CHAINS.get(beacon["chain_hash"])
    where = f"round {beacon['round']} of {beacon['source']} (chain {beacon['chain_hash'][:16]}…)"
    if pinned is not None:
        report.add_problems(
            "beacon",
            problems,
            f"{where}: its BLS signature verifies under {pinned.source}'s pinned public key, "
            "and its randomness is SHA-256 of the signature",
        )
        return
    public = (
        "not a public beacon: a development sandbox, whose key is the server's own"
        if beacon["source"] == SANDBOX_SOURCE
        else "not a public beacon this verifier knows: its key is the one the certificate states"
    )
    report.add_problems(
        "beacon",
        problems,
        f"{where}: its BLS signature verifies under the stated public key; {public}",
    )
    if not problems:
        report.warnings.append(
            f"{public} ({beacon['source']}, chain {beacon['chain_hash'][:16]}…): the randomness did not come from "
            "a public drand network"
        )


def _check_seed_and_selection(report: VerificationReport, cert: Mapping[str, Any]) -> None:
    sealed, beacon = cert["sealed"], cert["beacon"]
    selection = select_winners_v2(
        sealed_record_hash=bytes.fromhex(sealed["record_hash"]),
        randomness=bytes.fromhex(beacon["randomness"]),
        eligible=cert["counts"]["eligible"],
        winners_count=cert["config"]["winners_count"],
        alternates_count=cert["config"]["alternates_count"],
    )
    formula = f"SHA-256(\"{ALGORITHM_V2}\" ‖ the sealed record's hash ‖ round {beacon['round']}'s randomness)"
    check_seed_and_picks(report, cert, selection, formula)


def _check_signatures(
    report: VerificationReport, cert: Mapping[str, Any], keys: Mapping[str, PublishedKey] | None
) -> None:
    if keys is None:
        signature_not_checked(report, "the certificate's, the opened and sealed records' and the checkpoint's")
        return
    problems = []
    problem = certificate_signature_problem(cert, keys)
    if problem is not None:
        problems.append(f"certificate: {problem}")
    for kind in ("opened", "sealed"):
        problems += [f"{kind} record: {problem}" for problem in record_signature_problems(cert[kind], keys)]
    signers = sorted({cert["key_id"], cert["opened"]["key_id"], cert["sealed"]["key_id"]})
    report.add_problems(
        "signature",
        problems,
        f"Ed25519 signatures by key {', '.join(signers)} over the certificate hash and both records' hashes",
    )
