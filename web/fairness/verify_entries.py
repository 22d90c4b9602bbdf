"""Checking a certificate against its entries: v1's eligible entries or entries.csv rows, v2's salted rows.

The rows stream: a million entries are hashed in batches, never held in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from web.fairness.checks import VerificationReport, by_reason, entry_of
from web.fairness.entries import ELIGIBLE, EXCLUSION_REASONS, VERDICTS, Entry
from web.fairness.entries_csv import EntryRow
from web.fairness.merkle import DrawTreesBuilder, MerkleBuilder

UNSALTED_ENTRIES = (
    "this entries.csv has no salt column (a cleack-draw-v1 file), and a cleack-draw-v2 certificate's leaves are "
    "salted: download the draw's entries.csv again"
)
# Rows are hashed in batches of this many.
_BATCH = 4096


def check_eligible_entries(report: VerificationReport, cert: Mapping[str, Any], entries: Iterable[Entry]) -> None:
    """v1: the eligible entries in canonical order make the Merkle root, the count and the listed picks."""
    picks = {pick["index"]: (label, pick) for label in ("winners", "alternates") for pick in cert[label]}
    found: dict[int, Entry] = {}
    builder = MerkleBuilder()
    batch: list[tuple[str, str, str, str]] = []
    disorder: str | None = None
    previous_key: tuple[str, str, str] | None = None
    for index, entry in enumerate(entries):
        key = entry.key
        if disorder is None and previous_key is not None and key <= previous_key:
            kind = "repeats" if key == previous_key else "comes before"
            disorder = f"eligible entry {index + 1} {kind} the one before it in canonical order: {key}"
        previous_key = key
        if index in picks:
            found[index] = entry
        batch.append(entry.fields)
        if len(batch) == _BATCH:
            builder.add_rows(batch)
            batch = []
    builder.add_rows(batch)
    report.add(
        "entries order",
        disorder is None,
        disorder or "eligible entries are in canonical order (platform, platform_user_id, entry_id), no repeats",
    )
    eligible = cert["counts"]["eligible"]
    report.add(
        "entries count",
        builder.count == eligible,
        f"{builder.count} eligible entries"
        + ("" if builder.count == eligible else f", the certificate says {eligible}"),
    )
    root = builder.root().hex()
    report.add(
        "merkle root",
        root == cert["merkle_root"],
        f"the entries' Merkle root is {root}" + ("" if root == cert["merkle_root"] else ", not the certificate's"),
    )
    wrong = [
        f"{label} {pick['position']} (index {index})"
        for index, (label, pick) in sorted(picks.items())
        if found.get(index) != entry_of(pick)
    ]
    report.add(
        "winners in entries",
        not wrong,
        "each winner and alternate is the entry at its leaf index"
        if not wrong
        else f"not the entry at its leaf index: {', '.join(wrong)}",
    )


class ExclusionTally:
    """Counts the excluded rows by reason while the eligible ones stream on."""

    def __init__(self) -> None:
        self.rows = 0
        self.excluded: dict[str, int] = {}
        self.unknown: list[str] = []

    def eligible_of(self, rows: Iterable[EntryRow]) -> Iterator[Entry]:
        for number, row in enumerate(rows, start=1):
            self.rows += 1
            if row.eligible:
                yield row.entry
                continue
            reason = row.exclusion_reason
            if reason not in EXCLUSION_REASONS:
                self.unknown.append(f"row {number} ({reason or 'no reason'})")
                continue
            self.excluded[reason] = self.excluded.get(reason, 0) + 1

    def check(self, report: VerificationReport, counts: Mapping[str, Any]) -> None:
        stated = {reason: count for reason, count in counts["excluded"].items() if count}
        report.add(
            "participants",
            self.rows == counts["participants"],
            f"{self.rows} collected entries"
            + ("" if self.rows == counts["participants"] else f", the certificate says {counts['participants']}"),
        )
        if self.unknown:
            report.add("exclusions", False, f"excluded without a known reason: {', '.join(self.unknown[:5])}")
        elif self.excluded != stated:
            report.add(
                "exclusions",
                False,
                f"the excluded rows are {by_reason(self.excluded)}; the certificate counts {by_reason(stated)}",
            )
        else:
            report.add("exclusions", True, f"the excluded rows are {by_reason(stated)}, as the certificate counts")


def check_rows_v1(report: VerificationReport, cert: Mapping[str, Any], rows: Iterable[EntryRow]) -> None:
    """v1 with the whole entries.csv: its eligible rows as above, and its excluded rows by reason."""
    tally = ExclusionTally()
    check_eligible_entries(report, cert, tally.eligible_of(rows))
    tally.check(report, cert["counts"])


def check_rows_v2(report: VerificationReport, cert: Mapping[str, Any], rows: Iterable[EntryRow]) -> None:
    """Every collected entry with its salt and verdict: both roots, the counts, the excluded rows by reason."""
    counts = cert["counts"]
    picks = {pick["index"]: pick for label in ("winners", "alternates") for pick in cert[label]}
    found: dict[int, tuple[Entry, bytes]] = {}
    builder = DrawTreesBuilder()
    batch: list[tuple[str, str, str, str, bytes, str]] = []
    disorder: str | None = None
    unknown: list[str] = []
    previous_key: tuple[str, str, str] | None = None
    eligible_index = 0
    for number, row in enumerate(rows, start=1):
        if row.salt is None:
            report.add("entries", False, UNSALTED_ENTRIES)
            return
        key = row.entry.key
        if disorder is None and previous_key is not None and key <= previous_key:
            kind = "repeats" if key == previous_key else "comes before"
            disorder = f"row {number} {kind} the one before it in canonical order: {key}"
        previous_key = key
        verdict = row.verdict
        if verdict is None or verdict not in VERDICTS:
            unknown.append(f"row {number} ({verdict or 'excluded, no reason'})")
            continue
        if verdict == ELIGIBLE:
            if eligible_index in picks:
                found[eligible_index] = (row.entry, row.salt)
            eligible_index += 1
        batch.append((*row.entry.fields, row.salt, verdict))
        if len(batch) == _BATCH:
            builder.add_rows(batch)
            batch = []
    builder.add_rows(batch)
    report.add(
        "entries order",
        disorder is None,
        disorder or "every collected entry is in canonical order (platform, platform_user_id, entry_id), no repeats",
    )
    _compare(report, "entries count", builder.eligible, counts["eligible"], "eligible entries")
    _compare(report, "participants", builder.participants, counts["participants"], "collected entries")
    for name, root, stated in (
        ("merkle root", builder.merkle_root().hex(), cert["merkle_root"]),
        ("collected root", builder.collected_root().hex(), cert["collected_root"]),
    ):
        what = "eligible entries' salted leaves" if name == "merkle root" else "collected entries with their verdicts"
        report.add(
            name,
            root == stated,
            f"the root of the {what} is {root}" + ("" if root == stated else ", not the certificate's"),
        )
    stated_excluded = {reason: count for reason, count in counts["excluded"].items() if count}
    if unknown:
        report.add("exclusions", False, f"rows without a known verdict: {', '.join(unknown[:5])}")
    else:
        report.add(
            "exclusions",
            builder.excluded == stated_excluded,
            f"the excluded rows are {by_reason(builder.excluded)}"
            + (
                ", as the seal counts"
                if builder.excluded == stated_excluded
                else f"; the seal counts {by_reason(stated_excluded)}"
            ),
        )
    wrong = [
        f"{'winner' if pick in cert['winners'] else 'alternate'} {pick['position']} (index {index})"
        for index, pick in sorted(picks.items())
        if found.get(index) != (entry_of(pick), bytes.fromhex(pick["salt"]))
    ]
    report.add(
        "winners in entries",
        not wrong,
        "each winner and alternate is the eligible entry, with its salt, at its leaf index"
        if not wrong
        else f"not the entry at its leaf index: {', '.join(wrong)}",
    )


def _compare(report: VerificationReport, name: str, found: int, stated: int, what: str) -> None:
    report.add(name, found == stated, f"{found} {what}" + ("" if found == stated else f", the seal says {stated}"))
