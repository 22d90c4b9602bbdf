"""A certificate verifies only as issued: every alteration, even re-signed by the server, shows."""

from __future__ import annotations

import copy
import datetime
import io
import uuid
from typing import Any

import pytest

from tests.fairness.draws import KEY_CREATED_AT, SampleDraw, collected_entries, make_draw
from web.fairness import (
    Entry,
    EntryRow,
    InclusionProofBuilder,
    Pick,
    build_certificate,
    certificate_hash,
    eligible_entries,
    generate_signing_key,
    inclusion_proof_document,
    key_record,
    key_set,
    load_signing_key,
    parse_key_set,
    parse_proof_document,
    read_entries_csv,
    sign_certificate_hash,
    signing_key_pem,
    signing_key_text,
    sort_canonically,
    verify_certificate,
    verify_chain,
    verify_proof,
    write_entries_csv,
)
from web.fairness.certificate import DrawFacts
from web.fairness.signing import SigningKeyError, key_id


def resigned(cert: dict[str, Any], draw: SampleDraw) -> dict[str, Any]:
    """What a server re-issuing an altered certificate under its own key would publish."""
    cert["certificate_hash"] = certificate_hash(cert)
    cert["signature"] = sign_certificate_hash(draw.key, cert["certificate_hash"])
    return cert


def failed(cert: dict[str, Any], draw: SampleDraw, **extra: Any) -> list[str]:
    report = verify_certificate(cert, keys=parse_key_set(draw.key_set), **extra)
    return [check.name for check in report.checks if not check.ok]


def test_a_genuine_certificate_passes_every_check() -> None:
    draw = make_draw(40)
    previous = make_draw(10, key=draw.key).certificate
    draw.certificate = resigned({**draw.certificate, "previous_certificate_hash": previous["certificate_hash"]}, draw)

    report = verify_certificate(
        draw.certificate, keys=parse_key_set(draw.key_set), entries=draw.entries, previous=previous
    )

    assert report.ok, report.first_failure
    assert [check.name for check in report.checks] == [
        "format",
        "certificate hash",
        "commitment",
        "counts",
        "seed",
        "selection",
        "winner leaves",
        "signature",
        "previous certificate",
        "entries order",
        "entries count",
        "merkle root",
        "winners in entries",
    ]
    assert len(draw.certificate["winners"]) == 3 and len(draw.certificate["alternates"]) == 2
    assert draw.certificate["draw"]["created_at"] == "2026-11-22T18:00:00Z"


def test_without_keys_the_signature_is_reported_as_not_checked_and_the_certificate_is_not_valid() -> None:
    report = verify_certificate(make_draw(5).certificate)
    assert not report.ok
    assert [(check.name, check.ok, check.checked) for check in report.checks if not check.ok] == [
        ("signature", False, False)
    ]
    assert any("signature not checked" in note for note in report.notes)


def test_a_hand_picked_winner_fails_even_when_the_server_re_signs() -> None:
    draw = make_draw(40)
    chosen = {pick["index"] for pick in draw.certificate["winners"] + draw.certificate["alternates"]}
    other = next(index for index in range(40) if index not in chosen)
    cert = copy.deepcopy(draw.certificate)
    entry = draw.entries[other]
    cert["winners"][0].update(
        index=other,
        leaf_hash=entry.leaf_hash.hex(),
        platform=entry.platform,
        platform_user_id=entry.platform_user_id,
        username=entry.username,
        entry_id=entry.entry_id,
    )

    assert failed(copy.deepcopy(cert), draw) == ["certificate hash", "selection"]
    assert failed(resigned(cert, draw), draw, entries=draw.entries) == ["selection"]


def test_a_renamed_winner_fails_its_leaf_and_the_entries() -> None:
    draw = make_draw(20)
    cert = copy.deepcopy(draw.certificate)
    cert["winners"][1]["username"] = "someone_else"
    assert failed(resigned(cert, draw), draw, entries=draw.entries) == ["winner leaves", "winners in entries"]


def test_a_changed_secret_breaks_the_commitment_and_the_seed() -> None:
    draw = make_draw(20)
    cert = resigned({**draw.certificate, "secret": "11" * 32}, draw)
    assert failed(cert, draw) == ["commitment", "seed", "selection"]


def test_a_changed_eligible_count_changes_the_draw() -> None:
    draw = make_draw(20)
    cert = copy.deepcopy(draw.certificate)
    cert["counts"].update(eligible=21, participants=23)
    assert failed(cert, draw) == ["certificate hash", "selection"]
    assert failed(resigned(cert, draw), draw, entries=draw.entries) == ["selection", "entries count"]


def test_counts_that_do_not_add_up_fail() -> None:
    draw = make_draw(20)
    cert = copy.deepcopy(draw.certificate)
    cert["counts"]["participants"] = 99
    assert failed(resigned(cert, draw), draw) == ["counts"]


def test_a_signature_by_another_key_or_a_retired_key_fails() -> None:
    draw = make_draw(8)
    stranger = generate_signing_key()
    forged = {**draw.certificate, "signature": sign_certificate_hash(stranger, draw.certificate["certificate_hash"])}
    assert failed(forged, draw) == ["signature"]

    retired = key_set([key_record(draw.key, KEY_CREATED_AT, KEY_CREATED_AT + datetime.timedelta(days=1))])
    report = verify_certificate(draw.certificate, keys=parse_key_set(retired))
    assert report.first_failure is not None and "not in service" in report.first_failure.message

    unknown = verify_certificate(draw.certificate, keys=parse_key_set(key_set([key_record(stranger, KEY_CREATED_AT)])))
    assert unknown.first_failure is not None and "not in the key set" in unknown.first_failure.message


def test_entries_that_differ_from_the_certified_ones_fail() -> None:
    draw = make_draw(30)
    cert = draw.certificate
    winner = cert["winners"][0]["index"]

    # One entry more, last in canonical order: the picks keep their indices, the count and the root do not hold.
    extra = Entry("zz", "9", "latecomer", "late")
    assert failed(cert, draw, entries=[*draw.entries, extra]) == ["entries count", "merkle root"]
    changed = list(draw.entries)
    changed[winner] = Entry(changed[winner].platform, changed[winner].platform_user_id, "x", changed[winner].entry_id)
    assert failed(cert, draw, entries=changed) == ["merkle root", "winners in entries"]
    assert failed(cert, draw, entries=list(reversed(draw.entries))) == [
        "entries order",
        "merkle root",
        "winners in entries",
    ]
    doubled = [*draw.entries[:5], draw.entries[4], *draw.entries[5:]]
    assert "entries order" in failed(cert, draw, entries=doubled)


def test_a_float_or_missing_field_is_reported_not_raised() -> None:
    draw = make_draw(5)
    cert = copy.deepcopy(draw.certificate)
    cert["config"]["filters"]["min_followers"] = 100.5
    report = verify_certificate(cert)
    assert report.first_failure is not None
    assert report.first_failure.name == "certificate hash" and "integers" in report.first_failure.message

    missing = {name: value for name, value in draw.certificate.items() if name != "seed"}
    assert [(check.name, check.ok) for check in verify_certificate(missing).checks] == [("format", False)]
    assert not verify_certificate(["not", "a", "certificate"]).ok


def test_the_certificate_refuses_picks_the_seed_did_not_make() -> None:
    draw = make_draw(10)
    cert = draw.certificate
    facts = DrawFacts(
        id=uuid.UUID(cert["draw"]["id"]),
        title="t",
        platforms=["x"],
        sources=[],
        created_at=datetime.datetime.now(datetime.UTC),
        started_at=datetime.datetime.now(datetime.UTC),
        completed_at=datetime.datetime.now(datetime.UTC),
    )
    arguments: dict[str, Any] = {
        "draw": facts,
        "config": cert["config"],
        "participants": 10,
        "excluded": {},
        "eligible": 10,
        "merkle_root": bytes.fromhex(cert["merkle_root"]),
        "secret": bytes.fromhex(cert["secret"]),
        "signing_key": draw.key,
        "issued_at": datetime.datetime.now(datetime.UTC),
        "alternates": [Pick(pick["index"], draw.entries[pick["index"]]) for pick in cert["alternates"]],
    }
    # The seed's own winners in another order: never what the seed selects, whatever the seed.
    hand_picked = [Pick(pick["index"], draw.entries[pick["index"]]) for pick in reversed(cert["winners"])]
    with pytest.raises(ValueError, match="not the entries the seed selects"):
        build_certificate(winners=hand_picked, **arguments)
    with pytest.raises(ValueError, match="participants"):
        build_certificate(winners=hand_picked, **{**arguments, "participants": 12})


def test_chain_holds_oldest_first_and_reports_the_first_break() -> None:
    key = generate_signing_key()
    first = make_draw(5, key=key).certificate
    second = make_draw(6, key=key, previous_certificate_hash=first["certificate_hash"]).certificate
    third = make_draw(7, key=key, previous_certificate_hash=second["certificate_hash"]).certificate

    assert verify_chain([first, second, third]).ok
    reordered = verify_chain([first, third, second])
    assert not reordered.ok and "certificate 2" in reordered.checks[0].message
    assert not verify_chain([first, third]).ok
    tampered = {**second, "title": "changed"}
    assert "certificate 2's content" in verify_chain([first, tampered, third]).checks[0].message
    keys = parse_key_set(key_set([key_record(key, KEY_CREATED_AT)]))
    assert not verify_certificate(third, keys=keys, previous=first).ok
    assert verify_certificate(third, keys=keys, previous=second).ok


def test_inclusion_proof_document_proves_a_participant_was_counted() -> None:
    draw = make_draw(50)
    builder = InclusionProofBuilder(17)
    builder.add_rows(entry.fields for entry in draw.entries)
    document = inclusion_proof_document(
        draw.certificate["certificate_hash"], draw.entries[17], 17, builder.tree_size, builder.proof()
    )

    assert verify_proof(parse_proof_document(document), draw.certificate).ok
    someone_else = {**document, "leaf": {**document["leaf"], "username": "intruder"}}
    assert not verify_proof(parse_proof_document(someone_else), draw.certificate).ok
    with pytest.raises(ValueError, match="audit_path"):
        parse_proof_document({**document, "audit_path": ["zz"]})


def test_entries_csv_round_trips_awkward_text_and_keeps_only_eligible_rows() -> None:
    rows = [
        EntryRow(Entry("x", "1", 'jo "jj", jr', "c1"), True, comment='line one\nline two, "quoted"'),
        EntryRow(
            Entry("x", "2", "bot", "c2"),
            False,
            "suspicious",
            commented_at=datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC),
        ),
        EntryRow(Entry("instagram", "3", "zoë 🎉", "c3"), True),
    ]
    buffer = io.StringIO(newline="")
    assert write_entries_csv(buffer, rows) == 3
    text = buffer.getvalue()
    assert text.startswith(
        "platform,platform_user_id,username,entry_id,eligible,exclusion_reason,comment,commented_at\r\n"
    )

    read = list(read_entries_csv(io.StringIO(text, newline="")))
    assert [row.entry for row in read] == [row.entry for row in rows]
    assert read[0].comment == rows[0].comment and read[1].commented_at == "2026-01-02T00:00:00Z"
    assert [row.exclusion_reason for row in read] == [None, "suspicious", None]
    assert list(eligible_entries(io.StringIO(text, newline=""))) == [rows[0].entry, rows[2].entry]


def test_signing_keys_load_from_their_text_and_pem_forms() -> None:
    key = generate_signing_key()
    assert key_id(load_signing_key(signing_key_text(key))) == key_id(key)
    assert key_id(load_signing_key(signing_key_pem(key))) == key_id(key)
    with pytest.raises(SigningKeyError):
        load_signing_key("not a key")
    with pytest.raises(SigningKeyError, match="key_id"):
        parse_key_set({"keys": [{**key_record(key, KEY_CREATED_AT), "key_id": "0" * 16}]})


def test_collected_order_is_not_canonical_order() -> None:
    collected = collected_entries(30)
    assert sort_canonically(collected) != collected
