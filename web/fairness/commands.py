"""`cleack verify`: checks a certificate offline, from files only."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from web.fairness.entries import Entry, sort_canonically
from web.fairness.entries_csv import EntriesCsvError, eligible_entries
from web.fairness.signing import PublishedKey, SigningKeyError, parse_key_set
from web.fairness.verify import (
    VerificationReport,
    parse_proof_document,
    verify_certificate,
    verify_chain,
    verify_proof,
)

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


def _eligible_rows(path: Path) -> Iterator[Entry]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            yield from eligible_entries(file)
    except UnicodeDecodeError as exc:
        raise UnreadableInput(f"the entries CSV {path} is not UTF-8: {exc}") from exc
    except (OSError, EntriesCsvError) as exc:
        raise UnreadableInput(f"cannot read the entries CSV {path}: {exc}") from exc


def _in_canonical_order(entries: Iterable[Entry]) -> bool:
    previous = None
    for entry in entries:
        if previous is not None and entry.key < previous:
            return False
        previous = entry.key
    return True


def _entries(path: Path) -> Iterable[Entry]:
    """The eligible rows in canonical order: streamed when the file keeps that order, else sorted in memory."""
    if _in_canonical_order(_eligible_rows(path)):
        return _eligible_rows(path)
    click.echo(f"note: {path} is not in canonical order; its eligible rows are sorted in memory", err=True)
    return sort_canonically(_eligible_rows(path))


def _keys(path: Path) -> dict[str, PublishedKey]:
    try:
        return parse_key_set(read_json(path, "key set"))
    except SigningKeyError as exc:
        raise UnreadableInput(f"the key set {path} is not usable: {exc}") from exc


def _verify(
    certificate: Path, entries: Path | None, keys: Path | None, chain: tuple[Path, ...], proof: Path | None
) -> VerificationReport:
    cert = read_json(certificate, "certificate")
    if not isinstance(cert, dict):
        raise UnreadableInput(f"the certificate {certificate} must be a JSON object")
    key_set = _keys(keys) if keys else None
    chain_certs = _chain(chain)
    proof_document = None
    if proof:
        try:
            proof_document = parse_proof_document(read_json(proof, "inclusion proof"))
        except ValueError as exc:
            raise UnreadableInput(f"the inclusion proof {proof} is not usable: {exc}") from exc
    report = verify_certificate(cert, keys=key_set, entries=_entries(entries) if entries else None)
    if chain_certs:
        if cert.get("certificate_hash") not in [other.get("certificate_hash") for other in chain_certs]:
            chain_certs.append(cert)
        report.extend(verify_chain(chain_certs))
    if proof_document is not None and report.checks[0].ok:
        report.extend(verify_proof(proof_document, cert))
    return report


@click.command()
@click.argument("certificate", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("entries", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--keys", type=click.Path(path_type=Path, dir_okay=False), help="The published key set (JSON file).")
@click.option(
    "--chain",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Certificates oldest first: repeat the option, or give a JSON list.",
)
@click.option("--proof", type=click.Path(path_type=Path, dir_okay=False), help="An inclusion proof (JSON file).")
def verify(
    certificate: Path, entries: Path | None, keys: Path | None, chain: tuple[Path, ...], proof: Path | None
) -> None:
    """Check CERTIFICATE.json, and the eligible rows of ENTRIES.csv when given: exit 0 only when all checks pass."""
    try:
        report = _verify(certificate, entries, keys, chain, proof)
    except UnreadableInput as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_UNREADABLE)
    for check in report.checks:
        click.echo(f"{'✓' if check.ok else '✗'} {check.name}: {check.message}")
    for note in report.notes:
        click.echo(f"- {note}")
    if report.ok:
        click.echo("The certificate is valid.")
        return
    failed = sum(1 for check in report.checks if not check.ok)
    click.echo(f"The certificate is NOT valid: {failed} check(s) failed.")
    sys.exit(EXIT_INVALID)
