"""The v2 certificate: built only from consistent inputs, verified check by check, proofs and entries.csv v2."""

from __future__ import annotations

import copy
import datetime
import hashlib
import io
import uuid
from typing import Any

import pytest

from tests.fairness.draws import make_draw
from tests.fairness.draws_v2 import SampleDrawV2, make_draw_v2
from web.fairness import (
    ELIGIBLE,
    DrawFacts,
    Entry,
    EntryRow,
    InclusionProofBuilder,
    LogProof,
    SaltedPick,
    bls_secret_from_seed,
    build_certificate_v2,
    collected_leaf,
    derive_seed_v2,
    entries_csv_is_salted,
    inclusion_proof_document,
    leaf_v2,
    parse_proof_document,
    proof_document_v2,
    randomness_of,
    read_entries_csv,
    sign_round,
    verify_certificate,
    verify_chain,
    verify_proof,
    write_entries_csv,
)
from web.fairness.entries_csv import EntriesCsvError
from web.fairness.timestamps import parse_rfc3339

V2_CHECKS = [
    "format",
    "certificate hash",
    "opened record",
    "sealed record",
    "log",
    "witness",
    "beacon",
    "seed",
    "selection",
    "winner leaves",
    "signature",
]
ROWS_CHECKS = [
    "entries order",
    "entries count",
    "participants",
    "merkle root",
    "collected root",
    "exclusions",
    "winners in entries",
]


@pytest.fixture(scope="module")
def draw() -> SampleDrawV2:
    return make_draw_v2(40)


# A signature of round 1 under the test beacon's key: valid BLS, but not the sealed round's.
_OTHER_SIGNATURE = sign_round(bls_secret_from_seed(hashlib.sha256(b"cleack test sandbox beacon").digest()), 1)
OTHER_ROUND = {"signature": _OTHER_SIGNATURE.hex(), "randomness": randomness_of(_OTHER_SIGNATURE).hex()}


def arguments(cert: dict[str, Any], draw: SampleDrawV2) -> dict[str, Any]:
    """build_certificate_v2's arguments, read back from a certificate."""
    facts = cert["draw"]

    def picks(name: str) -> list[SaltedPick]:
        return [
            SaltedPick(
                pick["index"],
                Entry(pick["platform"], pick["platform_user_id"], pick["username"], pick["entry_id"]),
                bytes.fromhex(pick["salt"]),
            )
            for pick in cert[name]
        ]

    log = cert["log"]
    return {
        "draw": DrawFacts(
            uuid.UUID(facts["id"]),
            facts["title"],
            facts["platforms"],
            facts["sources"],
            *(parse_rfc3339(facts[name]) for name in ("created_at", "started_at", "completed_at")),
        ),
        "config": cert["config"],
        "counts": cert["counts"],
        "merkle_root": bytes.fromhex(cert["merkle_root"]),
        "collected_root": bytes.fromhex(cert["collected_root"]),
        "opened": cert["opened"],
        "sealed": cert["sealed"],
        "log": LogProof(
            log["origin"],
            bytes.fromhex(log["head_before_seal"]),
            [bytes.fromhex(item) for item in log["following"]],
            log["checkpoint"],
            log["cosignatures"],
            log["witnesses"],
        ),
        "beacon": cert["beacon"],
        "winners": picks("winners"),
        "alternates": picks("alternates"),
        "signing_key": draw.key,
        "issued_at": parse_rfc3339(cert["issued_at"]),
        "previous_certificate_hash": cert["previous_certificate_hash"],
    }


def test_a_genuine_certificate_passes_every_numbered_check(draw: SampleDrawV2) -> None:
    report = verify_certificate(
        draw.certificate, keys=draw.keys, rows=draw.rows, witnesses=[draw.witness], log_records=draw.records
    )
    assert report.ok, report.first_failure
    assert [check.name for check in report.checks] == [
        *V2_CHECKS,
        *ROWS_CHECKS,
        "log records",
        "log seal",
        "other runs",
    ]
    assert build_certificate_v2(**arguments(draw.certificate, draw)) == draw.certificate


def test_the_seed_is_sha256_of_the_label_the_seal_and_the_randomness(draw: SampleDrawV2) -> None:
    cert = draw.certificate
    sealed, randomness = bytes.fromhex(cert["sealed"]["record_hash"]), bytes.fromhex(cert["beacon"]["randomness"])
    assert derive_seed_v2(sealed, randomness).hex() == cert["seed"]
    assert cert["seed"] == hashlib.sha256(b"cleack-draw-v2" + sealed + randomness).hexdigest()


def test_without_keys_the_signature_is_not_checked_and_the_report_is_not_ok(draw: SampleDrawV2) -> None:
    report = verify_certificate(draw.certificate, witnesses=[draw.witness])
    assert not report.ok
    [unchecked] = report.not_checked
    assert unchecked.name == "signature" and [check.name for check in report.checks if not check.ok] == ["signature"]
    assert any(note.startswith("signature not checked: give --keys") for note in report.notes)


def test_a_sandbox_beacon_passes_with_a_warning_and_unpinned_witnesses_are_said_so(draw: SampleDrawV2) -> None:
    report = verify_certificate(draw.certificate, keys=draw.keys)
    assert report.ok
    beacon = next(check for check in report.checks if check.name == "beacon")
    assert "not a public beacon: a development sandbox" in beacon.message
    witness = next(check for check in report.checks if check.name == "witness")
    assert "the server's own naming" in witness.message
    assert [warning.split(":")[0] for warning in report.warnings] == [
        "the witness key witness.test was taken from the certificate itself (log.witnesses), i.e. named by the server",
        "not a public beacon",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.update(counts={**a["counts"], "eligible": 39, "participants": 42}), "other counts"),
        (lambda a: a.update(merkle_root=bytes(32)), "other roots"),
        (lambda a: a.update(winners=a["alternates"]), "not the entries the seed selects"),
        (lambda a: a.update(config={**a["config"], "winners_count": 2}), "other rules"),
        (lambda a: a["sealed"].update(opened="0" * 64), "record_hash"),
        (lambda a: a.update(beacon={**a["beacon"], "randomness": "0" * 64}), "randomness is not SHA-256"),
        (lambda a: a.update(beacon={**a["beacon"], "round": a["beacon"]["round"] + 1}), "the seal fixed round"),
        (lambda a: a.update(log=LogProof(**{**a["log"].__dict__, "following": []})), "the checkpoint's size"),
        (lambda a: a.update(opened=a["sealed"]), "opened record is of kind 'sealed'"),
        (lambda a: a.update(beacon={**a["beacon"], **OTHER_ROUND}), "the beacon's signature is not round"),
        (lambda a: a.update(log=LogProof(**{**a["log"].__dict__, "cosignatures": []})), "no cosignature by the"),
    ],
)
def test_inconsistent_inputs_are_refused(draw: SampleDrawV2, change: Any, message: str) -> None:
    given = arguments(copy.deepcopy(draw.certificate), draw)
    change(given)
    with pytest.raises(ValueError, match=message):
        build_certificate_v2(**given)


def test_more_winners_and_alternates_than_eligible_entries_are_clamped() -> None:
    small = make_draw_v2(3, winners_count=5, alternates_count=2)
    assert [len(small.certificate[name]) for name in ("winners", "alternates")] == [3, 0]
    assert verify_certificate(small.certificate, keys=small.keys, rows=small.rows).ok

    four = make_draw_v2(4, winners_count=3, alternates_count=2)
    assert [len(four.certificate[name]) for name in ("winners", "alternates")] == [3, 1]
    assert verify_certificate(four.certificate, keys=four.keys, rows=four.rows).ok


def test_a_draw_nobody_is_eligible_for_certifies_no_winner() -> None:
    empty = make_draw_v2(0)
    cert = empty.certificate
    assert cert["counts"] == {
        "participants": 3,
        "excluded": {"duplicate": 1, "keyword_missing": 1, "suspicious": 1},
        "eligible": 0,
    }
    assert cert["merkle_root"] == hashlib.sha256(b"").hexdigest()
    assert cert["winners"] == cert["alternates"] == []
    assert verify_certificate(cert, keys=empty.keys, rows=empty.rows, log_records=empty.records).ok


def test_v1_and_v2_certificates_chain_and_name_their_previous(draw: SampleDrawV2) -> None:
    first = make_draw(5, key=draw.key).certificate
    second = make_draw_v2(6, key=draw.key, previous_certificate_hash=first["certificate_hash"])
    third = make_draw_v2(
        7, key=draw.key, log=second.log, previous_certificate_hash=second.certificate["certificate_hash"]
    )
    assert verify_chain([first, second.certificate, third.certificate]).ok
    assert verify_certificate(second.certificate, keys=second.keys, previous=first).ok
    report = verify_certificate(third.certificate, keys=third.keys, previous=first, log_records=third.records)
    assert [check.name for check in report.checks if not check.ok] == ["previous certificate"]
    other_runs = next(check for check in report.checks if check.name == "other runs")
    assert f"draw {second.certificate['draw']['id']}" in other_runs.message
    assert f"certified, certificate {second.certificate['certificate_hash']}" in other_runs.message
    assert any("other draw(s) were run on the same subjects" in warning for warning in report.warnings)


def proof_of(draw: SampleDrawV2, row_index: int, tree: str) -> dict[str, Any]:
    rows = draw.rows if tree == "collected" else [row for row in draw.rows if row.eligible]
    row = rows[row_index]
    assert row.salt is not None and row.verdict is not None
    builder = InclusionProofBuilder(row_index)
    for item in rows:
        assert item.salt is not None and item.verdict is not None
        leaf = leaf_v2(item.entry, item.salt)
        builder.add_leaf_hashes([leaf if tree == "eligible" else collected_leaf(leaf, item.verdict)])
    return proof_document_v2(
        draw.certificate["certificate_hash"],
        row.entry,
        row.salt,
        row.verdict,
        tree=tree,
        index=row_index,
        tree_size=builder.tree_size,
        audit_path=builder.proof(),
    )


def test_a_participant_proves_inclusion_and_an_excluded_one_proves_the_verdict(draw: SampleDrawV2) -> None:
    eligible = proof_of(draw, 7, "eligible")
    report = verify_proof(parse_proof_document(eligible), draw.certificate)
    assert report.ok and "of the 40 eligible entries" in report.checks[-1].message

    excluded_at = next(number for number, row in enumerate(draw.rows) if not row.eligible)
    excluded = proof_of(draw, excluded_at, "collected")
    report = verify_proof(parse_proof_document(excluded), draw.certificate)
    assert report.ok and f"excluded as {draw.rows[excluded_at].exclusion_reason}" in report.checks[-1].message

    for forged in (
        {**excluded, "verdict": "eligible"},
        {**excluded, "verdict": "blacklisted"},
        {**eligible, "tree": "collected"},
        {**eligible, "leaf": {**eligible["leaf"], "salt": "00" * 16}},
    ):
        assert not verify_proof(parse_proof_document(forged), draw.certificate).ok


def test_proofs_of_one_version_do_not_check_certificates_of_the_other(draw: SampleDrawV2) -> None:
    v1 = make_draw(10)
    builder = InclusionProofBuilder(3)
    builder.add_rows(entry.fields for entry in v1.entries)
    document = inclusion_proof_document(
        v1.certificate["certificate_hash"], v1.entries[3], 3, builder.tree_size, builder.proof()
    )
    assert verify_proof(parse_proof_document(document), v1.certificate).ok
    mixed = verify_proof(
        parse_proof_document({**document, "certificate_hash": draw.certificate["certificate_hash"]}), draw.certificate
    )
    assert not mixed.ok and "needs a v2 proof" in mixed.checks[-1].message
    v2 = proof_of(draw, 0, "eligible")
    assert not verify_proof(
        parse_proof_document({**v2, "certificate_hash": document["certificate_hash"]}), v1.certificate
    ).ok
    with pytest.raises(ValueError, match="salt"):
        parse_proof_document({**v2, "leaf": {**v2["leaf"], "salt": "AB" * 16}})


def test_entries_csv_v2_round_trips_with_salts_and_v1_files_still_read(draw: SampleDrawV2) -> None:
    buffer = io.StringIO(newline="")
    assert write_entries_csv(buffer, draw.rows, salted=True) == len(draw.rows)
    text = buffer.getvalue()
    assert text.startswith(
        "platform,platform_user_id,username,entry_id,salt,eligible,exclusion_reason,comment,commented_at\r\n"
    )
    assert entries_csv_is_salted(io.StringIO(text, newline=""))
    read = list(read_entries_csv(io.StringIO(text, newline="")))
    assert [(row.entry, row.salt, row.verdict) for row in read] == [
        (row.entry, row.salt, row.verdict) for row in draw.rows
    ]

    v1 = io.StringIO(newline="")
    write_entries_csv(v1, draw.rows)
    assert not entries_csv_is_salted(io.StringIO(v1.getvalue(), newline=""))
    unsalted = list(read_entries_csv(io.StringIO(v1.getvalue(), newline="")))
    assert {row.salt for row in unsalted} == {None}
    report = verify_certificate(draw.certificate, keys=draw.keys, rows=unsalted)
    assert [check.name for check in report.checks if not check.ok] == ["entries"]
    assert "no salt column" in (report.first_failure.message if report.first_failure else "")

    with pytest.raises(ValueError, match="16-byte salt"):
        write_entries_csv(io.StringIO(), [EntryRow(Entry("x", "1", "a", "c"), True)], salted=True)
    first_salt = draw.rows[0].salt
    assert first_salt is not None
    bad = text.replace(first_salt.hex(), "XYZ", 1)
    with pytest.raises(EntriesCsvError, match="line 2: salt must be 32 lowercase hex digits"):
        list(read_entries_csv(io.StringIO(bad, newline="")))


def test_eligible_entries_without_salts_cannot_check_a_v2_certificate(draw: SampleDrawV2) -> None:
    report = verify_certificate(draw.certificate, keys=draw.keys, entries=draw.eligible)
    assert [check.name for check in report.checks if not check.ok] == ["entries"]


def test_the_round_is_published_after_the_seal() -> None:
    draw = make_draw_v2(5)
    cert = draw.certificate
    published = cert["beacon"]["genesis_time"] + (cert["beacon"]["round"] - 1) * cert["beacon"]["period"]
    sealed_at = parse_rfc3339(cert["sealed"]["at"])
    assert sealed_at + datetime.timedelta(seconds=6) < datetime.datetime.fromtimestamp(published, datetime.UTC)
    assert ELIGIBLE == "eligible"
