"""`cleack verify`: checks a certificate offline, from files only."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from web.fairness.certificate_v2 import ALGORITHM_V2
from web.fairness.checks import KEY_SET_HINT, VerificationReport
from web.fairness.entries_csv import EntriesCsvError, EntryRow, entries_csv_is_salted, read_entries_csv
from web.fairness.note import VerifierKey, parse_verifier_key
from web.fairness.proofs import ProofDocument, parse_proof_document, verify_proof
from web.fairness.signing import PublishedKey, SigningKeyError, parse_key_set
from web.fairness.verify import verify_certificate, verify_chain
from web.fairness.verify_entries import UNSALTED_ENTRIES

EXIT_INVALID = 1
EXIT_UNREADABLE = 2


class UnreadableInput(Exception):
    """A file that cannot be read as what it should be."""


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number this format allows")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        repeated = sorted({key for key, _ in pairs if sum(1 for other, _ in pairs if other == key) > 1})
        raise ValueError(f"the key(s) {', '.join(repeated)} appear twice in one object")
    return document


def read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableInput(f"cannot read the {what} {path}: {exc}") from exc
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except ValueError as exc:
        raise UnreadableInput(f"the {what} {path} is not valid JSON: {exc}") from exc


def _chain(paths: Iterable[Path]) -> list[dict[str, Any]]:
    certs: list[dict[str, Any]] = []
    for path in paths:
        document = read_json(path, "chain file")
        found = document if isinstance(document, list) else [document]
        if not all(isinstance(cert, dict) for cert in found):
            raise UnreadableInput(f"the chain file {path} must hold a certificate or a list of certificates")
        certs.extend(found)
    return certs


def _log_records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Records oldest first, from files given in log order: each a list of records, {"records": [...]} or one."""
    records: list[dict[str, Any]] = []
    for path in paths:
        document = read_json(path, "log extract")
        if isinstance(document, dict) and isinstance(document.get("records"), list):
            document = document["records"]
        found = document if isinstance(document, list) else [document]
        if not all(isinstance(record, dict) for record in found):
            raise UnreadableInput(f"the log extract {path} must hold records (JSON objects), oldest first")
        records.extend(found)
    return records


def _witnesses(values: Iterable[str]) -> list[VerifierKey]:
    """Each value is a verifier key (`name+hash+key`) or a file holding such keys, one a line."""
    keys = []
    for value in values:
        path = Path(value)
        if path.is_file():
            try:
                lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            except (OSError, UnicodeDecodeError) as exc:
                raise UnreadableInput(f"cannot read the witness key file {path}: {exc}") from exc
        else:
            lines = [value]
        for line in lines:
            try:
                keys.append(parse_verifier_key(line))
            except ValueError as exc:
                raise UnreadableInput(f"the witness key {line.strip()[:60]!r} is not usable: {exc}") from exc
    return keys


def _rows(path: Path) -> Iterator[EntryRow]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            yield from read_entries_csv(file)
    except UnicodeDecodeError as exc:
        raise UnreadableInput(f"the entries CSV {path} is not UTF-8: {exc}") from exc
    except (OSError, EntriesCsvError) as exc:
        raise UnreadableInput(f"cannot read the entries CSV {path}: {exc}") from exc


def _salted(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            return entries_csv_is_salted(file)
    except UnicodeDecodeError as exc:
        raise UnreadableInput(f"the entries CSV {path} is not UTF-8: {exc}") from exc
    except (OSError, EntriesCsvError) as exc:
        raise UnreadableInput(f"cannot read the entries CSV {path}: {exc}") from exc


def _in_canonical_order(rows: Iterable[EntryRow], *, eligible_only: bool) -> bool:
    previous = None
    for row in rows:
        if eligible_only and not row.eligible:
            continue
        if previous is not None and row.entry.key < previous:
            return False
        previous = row.entry.key
    return True


def _entries(path: Path, *, v2: bool) -> Iterable[EntryRow]:
    """The rows in canonical order: streamed when the file keeps that order, else sorted in memory.

    v1 orders only the eligible rows (its tree holds nothing else); v2 orders every collected row.
    """
    if _in_canonical_order(_rows(path), eligible_only=not v2):
        return _rows(path)
    click.echo(f"note: {path} is not in canonical order; its rows are sorted in memory", err=True)
    return sorted(_rows(path), key=lambda row: row.entry.key)


def _keys(path: Path) -> dict[str, PublishedKey]:
    try:
        return parse_key_set(read_json(path, "key set"))
    except SigningKeyError as exc:
        raise UnreadableInput(f"the key set {path} is not usable: {exc}") from exc


def _proof(path: Path) -> ProofDocument:
    try:
        return parse_proof_document(read_json(path, "inclusion proof"))
    except ValueError as exc:
        raise UnreadableInput(f"the inclusion proof {path} is not usable: {exc}") from exc


def _verify(
    certificate: Path,
    entries: Path | None,
    keys: Path | None,
    witness: tuple[str, ...],
    log: tuple[Path, ...],
    chain: tuple[Path, ...],
    proof: Path | None,
) -> VerificationReport:
    cert = read_json(certificate, "certificate")
    if not isinstance(cert, dict):
        raise UnreadableInput(f"the certificate {certificate} must be a JSON object")
    v2 = cert.get("algorithm") == ALGORITHM_V2
    key_set = _keys(keys) if keys else None
    witnesses = _witnesses(witness) or None
    records = _log_records(log) if log else None
    chain_certs = _chain(chain)
    proof_document = _proof(proof) if proof else None
    unsalted = entries is not None and v2 and not _salted(entries)
    rows = None if entries is None or unsalted else _entries(entries, v2=v2)
    report = verify_certificate(cert, keys=key_set, rows=rows, witnesses=witnesses, log_records=records)
    if unsalted:
        report.add("entries", False, UNSALTED_ENTRIES)
    if chain_certs:
        if cert.get("certificate_hash") not in [other.get("certificate_hash") for other in chain_certs]:
            chain_certs.append(cert)
        report.extend(verify_chain(chain_certs))
    if proof_document is not None and report.checks[0].ok:
        report.extend(verify_proof(proof_document, cert))
    return report


def _print(report: VerificationReport) -> None:
    for check in report.checks:
        click.echo(f"{'✓' if check.ok else '✗'} {check.name}: {check.message}")
    for note in report.notes:
        click.echo(f"- {note}")
    for warning in report.warnings:
        click.echo(f"⚠ WARNING: {warning}")
    failed = [check for check in report.checks if not check.ok]
    if not failed:
        if report.warnings:
            click.echo(f"The certificate is valid, with {len(report.warnings)} warning(s) above: read them.")
        else:
            click.echo("The certificate is valid.")
        return
    unchecked = [check for check in failed if not check.checked]
    if len(unchecked) == len(failed):
        click.echo(f"The certificate is NOT verified: signature not checked: {KEY_SET_HINT}.")
        return
    click.echo(f"The certificate is NOT valid: {len(failed) - len(unchecked)} check(s) failed.")
    if unchecked:
        click.echo(f"Also, signature not checked: {KEY_SET_HINT}.")


@click.command()
@click.argument("certificate", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("entries", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--keys", type=click.Path(path_type=Path, dir_okay=False), help="The published key set (JSON file).")
@click.option(
    "--witness",
    multiple=True,
    metavar="VKEY_OR_FILE",
    help="A witness's verifier key (name+hash+key), or a file of them: the witnesses you trust (v2).",
)
@click.option(
    "--log",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Log records, oldest first (JSON): repeat the option in log order (v2).",
)
@click.option(
    "--chain",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Certificates oldest first: repeat the option, or give a JSON list.",
)
@click.option("--proof", type=click.Path(path_type=Path, dir_okay=False), help="An inclusion proof (JSON file).")
def verify(
    certificate: Path,
    entries: Path | None,
    keys: Path | None,
    witness: tuple[str, ...],
    log: tuple[Path, ...],
    chain: tuple[Path, ...],
    proof: Path | None,
) -> None:
    """Check CERTIFICATE.json, and every row of ENTRIES.csv when given: exit 0 only when every check passes.

    Exit 1 when a check fails or the signature could not be checked (no --keys), 2 when a file cannot be read.
    """
    try:
        report = _verify(certificate, entries, keys, witness, log, chain, proof)
    except UnreadableInput as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_UNREADABLE)
    _print(report)
    if not report.ok:
        sys.exit(EXIT_INVALID)
