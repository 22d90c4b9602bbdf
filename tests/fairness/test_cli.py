"""`cleack verify`: exit 0 for a genuine certificate, 1 for any alteration, 2 for what cannot be read."""

from __future__ import annotations

import copy
import csv
import datetime
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.fairness.draws import KEY_CREATED_AT, SampleDraw, make_draw
from tests.fairness.draws_v2 import SampleDrawV2, make_draw_v2
from web.cli import main
from web.fairness import (
    InclusionProofBuilder,
    build_record,
    certificate_hash,
    collected_leaf,
    generate_signing_key,
    inclusion_proof_document,
    key_record,
    key_set,
    leaf_v2,
    proof_document_v2,
    sign_certificate_hash,
    write_entries_csv,
)

CLEACK = Path(sys.executable).with_name("cleack")


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["verify", *map(str, args)])


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def draw() -> SampleDraw:
    return make_draw(60)


def test_a_genuine_certificate_with_its_entries_and_keys_is_valid(draw: SampleDraw, tmp_path: Path) -> None:
    certificate, entries, keys = draw.write(tmp_path)

    result = run(certificate, entries, "--keys", keys)

    assert result.exit_code == 0, result.output
    for name in ("certificate hash", "commitment", "selection", "signature", "merkle root", "winners in entries"):
        assert f"✓ {name}: " in result.output
    assert "✗" not in result.output
    assert result.output.rstrip().endswith("The certificate is valid.")


def test_the_installed_command_verifies_in_its_own_process(draw: SampleDraw, tmp_path: Path) -> None:
    certificate, entries, keys = draw.write(tmp_path)

    done = subprocess.run(
        [str(CLEACK), "verify", str(certificate), str(entries), "--keys", str(keys)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ merkle root" in done.stdout and "The certificate is valid." in done.stdout


def alter_winner(cert: dict[str, Any]) -> None:
    cert["winners"][0]["username"] = "my_cousin"


def alter_secret(cert: dict[str, Any]) -> None:
    cert["secret"] = "ab" * 32


def alter_count(cert: dict[str, Any]) -> None:
    cert["counts"]["eligible"] += 1


def alter_hash(cert: dict[str, Any]) -> None:
    cert["certificate_hash"] = "0" * 64


def alter_signature(cert: dict[str, Any]) -> None:
    cert["signature"] = sign_certificate_hash(generate_signing_key(), cert["certificate_hash"])


@pytest.mark.parametrize("alteration", [alter_winner, alter_secret, alter_count, alter_hash, alter_signature])
def test_an_altered_certificate_is_invalid(draw: SampleDraw, tmp_path: Path, alteration: Any) -> None:
    certificate, entries, keys = draw.write(tmp_path)
    altered = copy.deepcopy(draw.certificate)
    alteration(altered)
    write_json(certificate, altered)

    result = run(certificate, entries, "--keys", keys)

    assert result.exit_code == 1, result.output
    assert "✗ " in result.output
    assert "The certificate is NOT valid" in result.output


def rewrite_csv(path: Path, change: Any) -> None:
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    rows = change(rows)
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(rows)


def test_an_altered_entries_file_is_invalid(draw: SampleDraw, tmp_path: Path) -> None:
    certificate, entries, keys = draw.write(tmp_path)

    def rename_an_eligible_entry(rows: list[list[str]]) -> list[list[str]]:
        rows[-1][2] = "renamed"
        return rows

    rewrite_csv(entries, rename_an_eligible_entry)
    result = run(certificate, entries, "--keys", keys)

    assert result.exit_code == 1, result.output
    assert "✗ merkle root" in result.output


def test_an_eligible_row_marked_excluded_is_missing_from_the_count(draw: SampleDraw, tmp_path: Path) -> None:
    certificate, entries, _ = draw.write(tmp_path)

    def exclude_the_last(rows: list[list[str]]) -> list[list[str]]:
        rows[-1][4] = "false"
        return rows

    rewrite_csv(entries, exclude_the_last)
    result = run(certificate, entries)

    assert result.exit_code == 1
    assert "✗ entries count: 59 eligible entries, the certificate says 60" in result.output


def test_an_entries_file_in_another_order_is_sorted_and_still_valid(draw: SampleDraw, tmp_path: Path) -> None:
    certificate, entries, keys = draw.write(tmp_path)

    def shuffle(rows: list[list[str]]) -> list[list[str]]:
        body = rows[1:]
        random.Random(5).shuffle(body)
        return [rows[0], *body]

    rewrite_csv(entries, shuffle)
    result = run(certificate, entries, "--keys", keys)

    assert result.exit_code == 0, result.output
    assert "not in canonical order" in result.output


def test_a_chain_in_issue_order_is_valid_and_reordered_is_not(tmp_path: Path) -> None:
    key = generate_signing_key()
    first = make_draw(5, key=key).certificate
    second = make_draw(6, key=key, previous_certificate_hash=first["certificate_hash"]).certificate
    third = make_draw(7, key=key, previous_certificate_hash=second["certificate_hash"]).certificate
    certificate = write_json(tmp_path / "third.json", third)
    chain_list = write_json(tmp_path / "chain.json", [first, second])
    keys = write_json(tmp_path / "keys.json", key_set([key_record(key, KEY_CREATED_AT)]))

    valid = run(certificate, "--keys", keys, "--chain", chain_list)
    assert valid.exit_code == 0, valid.output
    assert "✓ chain: 3 certificates" in valid.output

    separate = run(
        certificate,
        "--keys",
        keys,
        "--chain",
        write_json(tmp_path / "1.json", first),
        "--chain",
        write_json(tmp_path / "2.json", second),
    )
    assert separate.exit_code == 0, separate.output

    reordered = run(certificate, "--keys", keys, "--chain", write_json(tmp_path / "reordered.json", [second, first]))
    assert reordered.exit_code == 1
    assert "✗ chain: certificate 2" in reordered.output


def test_an_inclusion_proof_is_checked_against_the_certificate(draw: SampleDraw, tmp_path: Path) -> None:
    certificate, _, keys = draw.write(tmp_path)
    builder = InclusionProofBuilder(33)
    builder.add_rows(entry.fields for entry in draw.entries)
    document = inclusion_proof_document(
        draw.certificate["certificate_hash"], draw.entries[33], 33, builder.tree_size, builder.proof()
    )

    valid = run(certificate, "--keys", keys, "--proof", write_json(tmp_path / "proof.json", document))
    assert valid.exit_code == 0, valid.output
    assert f"✓ inclusion: {draw.entries[33].username}" in valid.output

    forged = {**document, "index": 34}
    invalid = run(certificate, "--proof", write_json(tmp_path / "forged.json", forged))
    assert invalid.exit_code == 1
    assert "✗ inclusion" in invalid.output


def test_a_certificate_resigned_after_tampering_is_still_invalid(draw: SampleDraw, tmp_path: Path) -> None:
    certificate, entries, keys = draw.write(tmp_path)
    cert = copy.deepcopy(draw.certificate)
    cert["winners"][0], cert["alternates"][0] = cert["alternates"][0], cert["winners"][0]
    cert["winners"][0]["position"], cert["alternates"][0]["position"] = 1, 1
    cert["certificate_hash"] = certificate_hash(cert)
    cert["signature"] = sign_certificate_hash(draw.key, cert["certificate_hash"])
    write_json(certificate, cert)

    result = run(certificate, entries, "--keys", keys)

    assert result.exit_code == 1
    assert "✓ signature" in result.output and "✗ selection" in result.output


@pytest.mark.parametrize(
    ("target", "content", "message"),
    [
        ("certificate", None, "cannot read the certificate"),
        ("certificate", "{not json", "is not valid JSON"),
        ("certificate", '{"a": 1, "a": 2}', "appear twice"),
        ("certificate", "[1, 2]", "must be a JSON object"),
        ("entries", "name,eligible\nann,true\n", "lacks the column(s) platform, platform_user_id"),
        ("entries", "platform,platform_user_id,username,entry_id,eligible\nx,1,a,c1,maybe\n", "eligible must be"),
        ("entries", "platform,platform_user_id,username,entry_id,eligible\nx,1\n", "line 2"),
        ("entries", b"\xff\xfe not utf-8", "not UTF-8"),
        ("keys", '{"keys": [{"algorithm": "RSA"}]}', "algorithm must be Ed25519"),
    ],
)
def test_unreadable_input_exits_2_with_a_clear_message(
    draw: SampleDraw, tmp_path: Path, target: str, content: str | bytes | None, message: str
) -> None:
    paths = dict(zip(("certificate", "entries", "keys"), draw.write(tmp_path), strict=True))
    if content is None:
        paths[target].unlink()
    elif isinstance(content, bytes):
        paths[target].write_bytes(content)
    else:
        paths[target].write_text(content, encoding="utf-8")

    result = run(paths["certificate"], paths["entries"], "--keys", paths["keys"])

    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_without_keys_the_verdict_says_the_signature_was_not_checked(draw: SampleDraw, tmp_path: Path) -> None:
    certificate, entries, _ = draw.write(tmp_path)

    result = run(certificate, entries)

    assert result.exit_code == 1, result.output
    assert "✗ signature: not checked" in result.output
    assert result.output.rstrip().endswith(
        "The certificate is NOT verified: signature not checked: give --keys KEYSET.json, "
        "the key set published at /.well-known/cleack-signing-key."
    )
    assert "is valid" not in result.output


def test_a_v1_entries_file_with_an_excluded_rows_reason_changed_is_invalid(draw: SampleDraw, tmp_path: Path) -> None:
    certificate, entries, keys = draw.write(tmp_path)

    def new_reason(rows: list[list[str]]) -> list[list[str]]:
        for row in rows:
            if row[5] == "suspicious":
                row[5] = "duplicate"
        return rows

    rewrite_csv(entries, new_reason)
    result = run(certificate, entries, "--keys", keys)

    assert result.exit_code == 1, result.output
    assert (
        "✗ exclusions: the excluded rows are 1 duplicate, 1 keyword_missing; "
        "the certificate counts 1 keyword_missing, 1 suspicious"
    ) in result.output


@pytest.fixture(scope="module")
def draw_v2() -> SampleDrawV2:
    return make_draw_v2(30)


def test_a_genuine_v2_certificate_with_every_input_is_valid_and_the_sandbox_is_flagged(
    draw_v2: SampleDrawV2, tmp_path: Path
) -> None:
    certificate, entries, keys = draw_v2.write(tmp_path)
    witness = tmp_path / "witness.vkey"
    witness.write_text(draw_v2.witness.text + "\n", encoding="utf-8")
    log = write_json(tmp_path / "log.json", draw_v2.records)

    result = run(certificate, entries, "--keys", keys, "--witness", witness, "--log", log)

    assert result.exit_code == 0, result.output
    for name in ("opened record", "sealed record", "log", "witness", "beacon", "collected root", "log seal"):
        assert f"✓ {name}: " in result.output
    assert "✓ witness: the witness witness.test cosigned the log head containing the seal at " in result.output
    assert "(a witness key you gave)" in result.output
    assert "⚠ WARNING: not a public beacon: a development sandbox" in result.output
    assert result.output.rstrip().endswith("The certificate is valid, with 1 warning(s) above: read them.")


def test_a_v2_certificate_without_pinned_witness_keys_warns_that_the_server_named_them(
    draw_v2: SampleDrawV2, tmp_path: Path
) -> None:
    certificate, _, keys = draw_v2.write(tmp_path)

    result = run(certificate, "--keys", keys)

    assert result.exit_code == 0, result.output
    assert "⚠ WARNING: the witness key witness.test was taken from the certificate itself" in result.output
    assert "with 2 warning(s) above" in result.output


def test_a_v2_certificate_with_a_v1_entries_file_fails_clearly(draw_v2: SampleDrawV2, tmp_path: Path) -> None:
    certificate, entries, keys = draw_v2.write(tmp_path)
    with entries.open("w", encoding="utf-8", newline="") as file:
        write_entries_csv(file, draw_v2.rows)

    result = run(certificate, entries, "--keys", keys, "--witness", draw_v2.witness.text)

    assert result.exit_code == 1, result.output
    assert "✗ entries: this entries.csv has no salt column (a cleack-draw-v1 file)" in result.output


def test_a_v2_log_extract_with_a_second_seal_is_invalid(draw_v2: SampleDrawV2, tmp_path: Path) -> None:
    certificate, _, keys = draw_v2.write(tmp_path)
    sealed = draw_v2.certificate["sealed"]
    records = copy.deepcopy(draw_v2.records)
    records.append(
        build_record(
            "sealed",
            origin=sealed["log"],
            seq=len(records) + 1,
            draw_id=sealed["draw_id"],
            at=datetime.datetime(2026, 11, 22, 18, 10, tzinfo=datetime.UTC),
            signing_key=draw_v2.key,
            **{name: sealed[name] for name in ("opened", "counts", "merkle_root", "collected_root", "beacon")},
        )
    )

    result = run(certificate, "--keys", keys, "--log", write_json(tmp_path / "log.json", {"records": records}))

    assert result.exit_code == 1, result.output
    assert f"✗ log seal: draw {sealed['draw_id']} was sealed 2 times" in result.output


def test_a_v2_proof_of_an_excluded_entry_checks_its_verdict(draw_v2: SampleDrawV2, tmp_path: Path) -> None:
    certificate, _, keys = draw_v2.write(tmp_path)
    position = next(number for number, row in enumerate(draw_v2.rows) if not row.eligible)
    builder = InclusionProofBuilder(position)
    for row in draw_v2.rows:
        assert row.salt is not None and row.verdict is not None
        builder.add_leaf_hashes([collected_leaf(leaf_v2(row.entry, row.salt), row.verdict)])
    row = draw_v2.rows[position]
    assert row.salt is not None and row.verdict is not None
    document = proof_document_v2(
        draw_v2.certificate["certificate_hash"],
        row.entry,
        row.salt,
        row.verdict,
        tree="collected",
        index=position,
        tree_size=builder.tree_size,
        audit_path=builder.proof(),
    )

    valid = run(certificate, "--keys", keys, "--proof", write_json(tmp_path / "proof.json", document))
    assert valid.exit_code == 0, valid.output
    assert f"excluded as {row.verdict}" in valid.output

    forged = run(
        certificate,
        "--keys",
        keys,
        "--proof",
        write_json(tmp_path / "forged.json", {**document, "verdict": "eligible"}),
    )
    assert forged.exit_code == 1
    assert "✗ inclusion" in forged.output


@pytest.mark.parametrize(
    ("option", "content", "message"),
    [
        ("--witness", "not a key", "the witness key 'not a key' is not usable"),
        ("--log", "{not json", "the log extract"),
        ("--log", "[1, 2]", "must hold records"),
    ],
)
def test_unreadable_v2_inputs_exit_2(
    draw_v2: SampleDrawV2, tmp_path: Path, option: str, content: str, message: str
) -> None:
    certificate, _, keys = draw_v2.write(tmp_path)
    value: str | Path = content
    if option == "--log":
        value = tmp_path / "log.json"
        value.write_text(content, encoding="utf-8")

    result = run(certificate, "--keys", keys, option, value)

    assert result.exit_code == 2, result.output
    assert message in result.output
