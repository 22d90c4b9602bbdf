"""Check 13 of a v2 certificate: a log extract (whole records, oldest first) against the certificate.

Every record must hold (hash, signature, place in the hash chain); the draw must be sealed exactly once and
certified by no other certificate; other draws on the same subjects (a post, a file) are listed, because a draw
run again in private, until its outcome suited someone, would show there (docs/fairness.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from web.fairness.checks import VerificationReport
from web.fairness.log import FINAL_KINDS, ZERO_HEAD, next_head, record_problems
from web.fairness.signing import PublishedKey

# How many problems a failing check quotes.
_QUOTED = 5


def check_log_extract(
    report: VerificationReport,
    cert: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    keys: Mapping[str, PublishedKey] | None,
) -> None:
    if not records:
        report.add("log records", False, "the log extract holds no record")
        return
    problems = [
        f"record {_seq(record, position)}: {problem}"
        for position, record in enumerate(records, start=1)
        for problem in record_problems(record, keys)
    ]
    if problems:
        report.add("log records", False, _quote(problems))
        return
    problems = _chain_problems(cert, records) + _kind_problems(records)
    first, last = records[0]["seq"], records[-1]["seq"]
    covers = f"records {first} to {last} of log {cert['log']['origin']}"
    heads = (
        "the heads from record 1 on lead to the certificate's"
        if first == 1
        else "the heads from the seal on lead to the certificate's checkpoint"
        if first <= cert["sealed"]["seq"] <= last
        else "(their heads cannot be checked: the extract starts after record 1 and does not hold the seal)"
    )
    signed = (
        "each one's hash and signature hold"
        if keys is not None
        else "each one's hash holds (signatures need the key set)"
    )
    report.add_problems("log records", problems, f"{covers}: {signed}; {heads}")
    _check_seal(report, cert, records, covers)
    _check_other_runs(report, cert, records, covers)


def _seq(record: object, position: int) -> str:
    seq = record.get("seq") if isinstance(record, dict) else None
    return str(seq) if isinstance(seq, int) else f"#{position} of the extract"


def _quote(problems: list[str]) -> str:
    more = len(problems) - _QUOTED
    return "; ".join(problems[:_QUOTED]) + (f"; and {more} more" if more > 0 else "")


def _chain_problems(cert: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> list[str]:
    """One log, consecutive positions, and the hash chain where the certificate states it."""
    log, opened, sealed = cert["log"], cert["opened"], cert["sealed"]
    following = log["following"]
    problems = []
    head = ZERO_HEAD if records[0]["seq"] == 1 else None
    for position, record in enumerate(records):
        seq = record["seq"]
        if record["log"] != log["origin"]:
            problems.append(f"record {seq} is of log {record['log']!r}, not {log['origin']!r}")
        if position and seq != records[position - 1]["seq"] + 1:
            problems.append(f"record {seq} follows record {records[position - 1]['seq']}: the extract has a gap")
        if seq == sealed["seq"]:
            if head is not None and head.hex() != log["head_before_seal"]:
                problems.append(
                    f"records 1 to {seq - 1} lead to head {head.hex()[:16]}…, not to the certificate's head before the "
                    f"seal {log['head_before_seal'][:16]}…"
                )
            head = bytes.fromhex(log["head_before_seal"])
        for kind, stated in (("opened", opened), ("sealed", sealed)):
            if seq == stated["seq"] and record["record_hash"] != stated["record_hash"]:
                problems.append(f"record {seq} is not the certificate's {kind} record")
        offset = seq - sealed["seq"] - 1
        if 0 <= offset < len(following) and record["record_hash"] != following[offset]:
            problems.append(f"record {seq}'s hash is not the one the certificate's checkpoint was folded with")
        if head is not None:
            head = next_head(head, bytes.fromhex(record["record_hash"]))
    return problems


def _kind_problems(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per draw: one record of each kind at most, opened first, one final record at most and nothing after it."""
    by_draw: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        by_draw.setdefault(record["draw_id"], []).append(record)
    starts_at_one = records[0]["seq"] == 1
    problems = []
    for draw_id, found in by_draw.items():
        kinds = [record["kind"] for record in found]
        for kind in sorted(set(kinds)):
            if kinds.count(kind) > 1:
                seqs = " and ".join(str(record["seq"]) for record in found if record["kind"] == kind)
                problems.append(f"draw {draw_id} has {kinds.count(kind)} {kind} records: {seqs}")
        if ("opened" in kinds and kinds[0] != "opened") or ("opened" not in kinds and starts_at_one):
            problems.append(f"draw {draw_id} has a {kinds[0]} record (record {found[0]['seq']}) before being opened")
        finals = [position for position, kind in enumerate(kinds) if kind in FINAL_KINDS]
        if len(finals) > 1 or (finals and finals[0] != len(kinds) - 1):
            problems.append(f"draw {draw_id} has records after its final one (record {found[finals[0]]['seq']})")
    return problems


def _check_seal(
    report: VerificationReport, cert: Mapping[str, Any], records: Sequence[Mapping[str, Any]], covers: str
) -> None:
    """This draw is sealed once in the log, and no other certificate, failure or cancellation is recorded for it."""
    draw_id, sealed = cert["draw"]["id"], cert["sealed"]
    mine = [record for record in records if record["draw_id"] == draw_id]
    seals = [record for record in mine if record["kind"] == "sealed"]
    problems = []
    if len(seals) > 1:
        problems.append(
            f"draw {draw_id} was sealed {len(seals)} times (records {', '.join(str(r['seq']) for r in seals)}): "
            "it was run again after a first seal"
        )
    elif not seals:
        problems.append(f"{covers} do not hold this draw's seal (record {sealed['seq']})")
    for record in mine:
        if record["kind"] == "certified" and (
            record["certificate_hash"] != cert["certificate_hash"] or record["sealed"] != sealed["record_hash"]
        ):
            problems.append(
                f"record {record['seq']} certifies another certificate ({record['certificate_hash'][:16]}…)"
            )
        elif record["kind"] in ("failed", "cancelled"):
            problems.append(f"record {record['seq']} says this draw {record['kind']} at stage {record['stage']}")
    certified = [record["seq"] for record in mine if record["kind"] == "certified"]
    report.add_problems(
        "log seal",
        problems,
        f"draw {draw_id} is sealed once, in record {sealed['seq']}"
        + (
            f", and certified by this certificate in record {certified[0]}"
            if certified
            else ", and certified by no other certificate"
        ),
    )


def _check_other_runs(
    report: VerificationReport, cert: Mapping[str, Any], records: Sequence[Mapping[str, Any]], covers: str
) -> None:
    """Lists the other draws whose opened record names one of this draw's subjects, with how each ended."""
    draw_id, subjects = cert["draw"]["id"], set(cert["opened"]["subjects"])
    others = [
        record
        for record in records
        if record["kind"] == "opened" and record["draw_id"] != draw_id and subjects.intersection(record["subjects"])
    ]
    if not others:
        report.add("other runs", True, f"in {covers}, no other draw was opened on {', '.join(sorted(subjects))}")
        return
    runs = [
        f"draw {record['draw_id']} opened at {record['at']}: {_outcome(record['draw_id'], records)}"
        for record in others
    ]
    report.add("other runs", True, f"in {covers}, {len(others)} other draw(s) on the same subjects: {'; '.join(runs)}")
    report.warnings.append(
        f"{len(others)} other draw(s) were run on the same subjects ({', '.join(sorted(subjects))}): {'; '.join(runs)}"
    )


def _outcome(draw_id: str, records: Sequence[Mapping[str, Any]]) -> str:
    kinds = {record["kind"]: record for record in records if record["draw_id"] == draw_id}
    if "certified" in kinds:
        return f"certified, certificate {kinds['certified']['certificate_hash']}"
    if "failed" in kinds:
        return f"failed at stage {kinds['failed']['stage']} ({kinds['failed']['reason']})"
    if "cancelled" in kinds:
        return f"cancelled at stage {kinds['cancelled']['stage']}"
    if "sealed" in kinds:
        return f"sealed in record {kinds['sealed']['seq']}, not finished within the extract"
    return "not sealed within the extract"
