"""A v2 certificate shows every way a server (or anyone) could cheat, each as a named failing check."""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import Any

import pytest

from tests.fairness.draws import make_draw
from tests.fairness.draws_v2 import ORIGIN, WITNESS_NAME, SampleDrawV2, make_draw_v2
from web.fairness import (
    COSIGNATURE_V1,
    QUICKNET,
    EntryRow,
    build_record,
    certificate_hash,
    checkpoint_text,
    cosign,
    fold_heads,
    generate_signing_key,
    next_head,
    parse_key_set,
    randomness_of,
    record_hash,
    sign_certificate_hash,
    sign_checkpoint,
    sign_round,
    verifier_key,
    verify_certificate,
)
from web.fairness.signing import b64url_decode, public_key_bytes


@pytest.fixture(scope="module")
def draw() -> SampleDrawV2:
    return make_draw_v2(40)


def failed(draw: SampleDrawV2, cert: dict[str, Any] | None = None, **extra: Any) -> list[str]:
    """The failing checks, with the key set and the real witness key given."""
    report = verify_certificate(
        draw.certificate if cert is None else cert, keys=draw.keys, witnesses=[draw.witness], **extra
    )
    return [check.name for check in report.checks if not check.ok]


def resigned(cert: dict[str, Any], draw: SampleDrawV2) -> dict[str, Any]:
    cert["certificate_hash"] = certificate_hash(cert)
    cert["signature"] = sign_certificate_hash(draw.key, cert["certificate_hash"])
    return cert


def resigned_record(record: dict[str, Any], draw: SampleDrawV2) -> dict[str, Any]:
    record["record_hash"] = record_hash(record)
    record["signature"] = sign_certificate_hash(draw.key, record["record_hash"])
    return record


def test_the_genuine_draw_passes_every_check(draw: SampleDrawV2) -> None:
    assert failed(draw, rows=draw.rows, log_records=draw.records) == []


def test_a_seal_re_signed_with_other_counts_breaks_the_witnessed_log(draw: SampleDrawV2) -> None:
    cert = copy.deepcopy(draw.certificate)
    counts = {"participants": 42, "excluded": {"duplicate": 1, "keyword_missing": 1}, "eligible": 40}
    cert["counts"] = counts
    cert["sealed"]["counts"] = counts
    resigned_record(cert["sealed"], draw)

    # The seal's hash changed: the log no longer leads to the cosigned checkpoint, and the seed is another.
    assert failed(draw, resigned(cert, draw)) == ["log", "witness", "seed", "selection"]


def test_a_seal_re_signed_with_other_counts_and_a_new_checkpoint_lacks_the_witness(draw: SampleDrawV2) -> None:
    """Even a server that re-folds its log and re-signs the checkpoint cannot get the old cosignature to hold."""
    cert = copy.deepcopy(draw.certificate)
    counts = {"participants": 42, "excluded": {"duplicate": 1, "keyword_missing": 1}, "eligible": 40}
    cert["counts"] = cert["sealed"]["counts"] = counts
    resigned_record(cert["sealed"], draw)
    head = bytes.fromhex(cert["log"]["head_before_seal"])
    size = cert["sealed"]["seq"] + len(cert["log"]["following"])
    new_head = fold_heads(
        next_head(head, bytes.fromhex(cert["sealed"]["record_hash"])),
        [bytes.fromhex(item) for item in cert["log"]["following"]],
    )
    cert["log"]["checkpoint"] = sign_checkpoint(ORIGIN, size, new_head, draw.key)

    assert failed(draw, resigned(cert, draw)) == ["witness", "seed", "selection"]


def test_an_opened_record_changed_after_the_fact_fails(draw: SampleDrawV2) -> None:
    cert = copy.deepcopy(draw.certificate)
    cert["opened"]["config"] = {**cert["opened"]["config"], "winners_count": 1}
    resigned_record(cert["opened"], draw)

    assert failed(draw, resigned(cert, draw)) == ["opened record", "sealed record"]


def rewritten(rows: list[EntryRow], change: Any) -> list[EntryRow]:
    return change(list(rows))


def test_an_excluded_rows_reason_changed_in_the_entries_fails(draw: SampleDrawV2) -> None:
    def new_reason(rows: list[EntryRow]) -> list[EntryRow]:
        position = next(number for number, row in enumerate(rows) if row.exclusion_reason == "suspicious")
        rows[position] = dataclasses.replace(rows[position], exclusion_reason="business_account")
        return rows

    assert failed(draw, rows=rewritten(draw.rows, new_reason)) == ["collected root", "exclusions"]


def test_an_excluded_row_dropped_or_added_fails(draw: SampleDrawV2) -> None:
    def drop(rows: list[EntryRow]) -> list[EntryRow]:
        return [row for row in rows if row.exclusion_reason != "duplicate"]

    def add(rows: list[EntryRow]) -> list[EntryRow]:
        extra = dataclasses.replace(rows[0], eligible=False, exclusion_reason="not_liked")
        extra = dataclasses.replace(extra, entry=dataclasses.replace(extra.entry, entry_id=extra.entry.entry_id + "0"))
        return sorted([*rows, extra], key=lambda row: row.entry.key)

    assert failed(draw, rows=rewritten(draw.rows, drop)) == ["participants", "collected root", "exclusions"]
    assert failed(draw, rows=rewritten(draw.rows, add)) == ["participants", "collected root", "exclusions"]


def test_an_excluded_row_turned_eligible_changes_both_roots(draw: SampleDrawV2) -> None:
    def admit(rows: list[EntryRow]) -> list[EntryRow]:
        position = next(number for number, row in enumerate(rows) if not row.eligible)
        rows[position] = dataclasses.replace(rows[position], eligible=True, exclusion_reason=None)
        return rows

    names = failed(draw, rows=rewritten(draw.rows, admit))
    # The picks after the admitted entry move by one ("winners in entries"): whether any does depends on the seed.
    assert names[:4] == ["entries count", "merkle root", "collected root", "exclusions"]
    assert names[4:] in ([], ["winners in entries"])


def test_a_second_seal_of_the_same_draw_in_the_log_fails(draw: SampleDrawV2) -> None:
    records = copy.deepcopy(draw.records)
    sealed = draw.certificate["sealed"]
    members = {name: sealed[name] for name in ("opened", "counts", "merkle_root", "collected_root", "beacon")}
    second = build_record(
        "sealed",
        origin=ORIGIN,
        seq=len(records) + 1,
        draw_id=sealed["draw_id"],
        at=datetime.datetime(2026, 11, 22, 18, 5, tzinfo=datetime.UTC),
        signing_key=draw.key,
        **members,
    )
    records.append(second)

    report = verify_certificate(draw.certificate, keys=draw.keys, witnesses=[draw.witness], log_records=records)
    failures = {check.name: check.message for check in report.checks if not check.ok}
    assert list(failures) == ["log records", "log seal"]
    assert "sealed 2 times" in failures["log seal"] and "run again" in failures["log seal"]


def test_a_record_of_the_extract_whose_hash_or_heads_do_not_hold_fails(draw: SampleDrawV2) -> None:
    altered = copy.deepcopy(draw.records)
    altered[0]["at"] = "2026-11-22T16:00:00Z"
    assert failed(draw, log_records=altered) == ["log records"]

    resigned_first = copy.deepcopy(draw.records)
    resigned_record(resigned_first[0], draw)
    resigned_first[0]["at"] = "2026-11-22T16:00:00Z"
    resigned_record(resigned_first[0], draw)
    # Properly signed, but the heads from record 1 no longer lead to the certificate's head before the seal.
    report = verify_certificate(draw.certificate, keys=draw.keys, witnesses=[draw.witness], log_records=resigned_first)
    assert [check.name for check in report.checks if not check.ok] == ["log records"]
    assert "head before the seal" in (report.first_failure.message if report.first_failure else "")

    forged = copy.deepcopy(draw.records)
    forged[1]["signature"] = sign_certificate_hash(generate_signing_key(), forged[1]["record_hash"])
    assert failed(draw, log_records=forged) == ["log records"]


def test_a_beacon_round_from_another_round_fails(draw: SampleDrawV2) -> None:
    beacon = draw.certificate["beacon"]
    later = beacon["round"] + 1
    signature = sign_round(draw.bls_secret, later)

    whole_round = copy.deepcopy(draw.certificate)
    whole_round["beacon"].update(round=later, signature=signature.hex(), randomness=randomness_of(signature).hex())
    assert failed(draw, resigned(whole_round, draw)) == ["sealed record", "seed", "selection"]

    signature_only = copy.deepcopy(draw.certificate)
    signature_only["beacon"].update(signature=signature.hex(), randomness=randomness_of(signature).hex())
    assert failed(draw, resigned(signature_only, draw)) == ["beacon", "seed", "selection"]

    randomness_only = copy.deepcopy(draw.certificate)
    randomness_only["beacon"]["randomness"] = randomness_of(signature).hex()
    assert failed(draw, resigned(randomness_only, draw)) == ["beacon", "seed", "selection"]


def test_a_beacon_under_another_key_than_quicknets_pinned_one_fails(draw: SampleDrawV2) -> None:
    cert = copy.deepcopy(draw.certificate)
    cert["beacon"].update(chain_hash=QUICKNET.chain_hash, source=QUICKNET.source)
    report = verify_certificate(resigned(cert, draw), keys=draw.keys, witnesses=[draw.witness])
    beacon = next(check for check in report.checks if check.name == "beacon")
    assert not beacon.ok and "pinned" in beacon.message


def late_cosignature(draw: SampleDrawV2, seconds_after_the_round: int) -> dict[str, Any]:
    """The certificate with its witness's cosignature made when the round was already out (re-signed)."""
    cert = copy.deepcopy(draw.certificate)
    beacon, log = cert["beacon"], cert["log"]
    published = beacon["genesis_time"] + (beacon["round"] - 1) * beacon["period"]
    text = log["checkpoint"][: log["checkpoint"].rfind("\n\n") + 1]
    log["cosignatures"] = [cosign(text, WITNESS_NAME, draw.witness_key, published + seconds_after_the_round)]
    return resigned(cert, draw)


@pytest.mark.parametrize("seconds_after_the_round", [0, 30])
def test_a_cosignature_dated_after_the_round_fails(draw: SampleDrawV2, seconds_after_the_round: int) -> None:
    report = verify_certificate(
        late_cosignature(draw, seconds_after_the_round), keys=draw.keys, witnesses=[draw.witness]
    )
    assert [check.name for check in report.checks if not check.ok] == ["witness"]
    assert report.first_failure is not None
    assert "not before round" in report.first_failure.message


def test_a_cosignature_over_a_head_without_the_seal_fails(draw: SampleDrawV2) -> None:
    sealed = draw.certificate["sealed"]
    before = checkpoint_text(ORIGIN, sealed["seq"] - 1, bytes.fromhex(draw.certificate["log"]["head_before_seal"]))
    moment = int(datetime.datetime(2026, 11, 22, 18, 0, 3, tzinfo=datetime.UTC).timestamp())

    other_checkpoint = copy.deepcopy(draw.certificate)
    other_checkpoint["log"]["cosignatures"] = [cosign(before, WITNESS_NAME, draw.witness_key, moment)]
    assert failed(draw, resigned(other_checkpoint, draw)) == ["witness"]

    # The server shows the checkpoint the witness did cosign: it does not hold the seal.
    shown = copy.deepcopy(other_checkpoint)
    shown["log"]["checkpoint"] = sign_checkpoint(
        ORIGIN, sealed["seq"] - 1, bytes.fromhex(draw.certificate["log"]["head_before_seal"]), draw.key
    )
    assert failed(draw, resigned(shown, draw)) == ["log", "witness"]


def test_a_forged_witness_key_fails_against_the_pinned_one_and_is_flagged_otherwise(draw: SampleDrawV2) -> None:
    forger = generate_signing_key()
    forged_key = verifier_key(WITNESS_NAME, COSIGNATURE_V1, public_key_bytes(forger))
    cert = copy.deepcopy(draw.certificate)
    log = cert["log"]
    text = log["checkpoint"][: log["checkpoint"].rfind("\n\n") + 1]
    moment = int(datetime.datetime(2026, 11, 22, 18, 0, 3, tzinfo=datetime.UTC).timestamp())
    log["cosignatures"] = [cosign(text, WITNESS_NAME, forger, moment)]
    log["witnesses"] = [forged_key.text]
    resigned(cert, draw)

    assert failed(draw, cert) == ["witness"]
    unpinned = verify_certificate(cert, keys=draw.keys)
    assert unpinned.ok
    assert any("named by the server" in warning for warning in unpinned.warnings)


@pytest.mark.parametrize("spelling", ["padded", "standard alphabet", "padding bits"])
def test_a_signature_in_a_non_canonical_base64url_spelling_fails(spelling: str) -> None:
    draw = make_draw_v2(6)
    while not any(char in draw.certificate["signature"] for char in "-_"):
        draw = make_draw_v2(6)
    signature = draw.certificate["signature"]
    respelled = {
        "padded": signature + "==",
        "standard alphabet": signature.replace("-", "+").replace("_", "/"),
        "padding bits": signature[:-1] + _same_bytes_other_bits(signature[-1]),
    }[spelling]
    assert respelled != signature

    cert = {**draw.certificate, "signature": respelled}
    report = verify_certificate(cert, keys=draw.keys, witnesses=[draw.witness])
    assert [check.name for check in report.checks if not check.ok] == ["signature"]
    assert report.first_failure is not None
    assert report.first_failure.message.startswith("certificate: the signature is not canonical base64url")
    record = {**draw.certificate["sealed"], "signature": respelled}
    assert failed(draw, resigned({**draw.certificate, "sealed": record}, draw)) == ["signature"]


def _same_bytes_other_bits(last: str) -> str:
    """Another base64url character whose top two bits (the ones a 64-byte value uses) are the same."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    value = alphabet.index(last)
    return alphabet[value ^ 0b0001]


def test_the_strict_decoder_refuses_every_other_spelling_of_the_same_bytes() -> None:
    assert b64url_decode("AAE") == b"\x00\x01"
    for text in ("AAE=", "AAF", "AA E", "AA+E", "A", " AAE"):
        with pytest.raises(ValueError):
            b64url_decode(text)


def test_a_v1_certificate_still_verifies_and_its_excluded_rows_are_now_checked() -> None:
    v1 = make_draw(30)
    keys = parse_key_set(v1.key_set)
    assert verify_certificate(v1.certificate, keys=keys, rows=v1.rows).ok
    assert verify_certificate(v1.certificate, keys=keys, entries=v1.entries).ok

    renamed = [
        dataclasses.replace(row, exclusion_reason="duplicate") if row.exclusion_reason == "suspicious" else row
        for row in v1.rows
    ]
    report = verify_certificate(v1.certificate, keys=keys, rows=renamed)
    assert [check.name for check in report.checks if not check.ok] == ["exclusions"]
    dropped = [row for row in v1.rows if row.exclusion_reason != "suspicious"]
    report = verify_certificate(v1.certificate, keys=keys, rows=dropped)
    assert [check.name for check in report.checks if not check.ok] == ["participants", "exclusions"]
