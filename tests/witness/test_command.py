"""`cleack witness` on the command line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from web.cli import main
from web.fairness.note import COSIGNATURE_V1, parse_verifier_key


def test_print_key_prints_the_same_verifier_key_every_time(tmp_path: Path) -> None:
    arguments = ["witness", "--print-key", "--data-dir", str(tmp_path / "w"), "--name", "witness.test/w1"]

    first = CliRunner().invoke(main, arguments)
    second = CliRunner().invoke(main, arguments)

    assert first.exit_code == 0, first.output
    key = parse_verifier_key(first.output)
    assert (key.name, key.algorithm) == ("witness.test/w1", COSIGNATURE_V1)
    assert second.output == first.output
    assert (tmp_path / "w" / "witness-key.pem").stat().st_mode & 0o777 == 0o600


def test_a_malformed_log_key_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["witness", "--data-dir", str(tmp_path), "--log", "cleack.test/log+00+AA=="])

    assert result.exit_code == 2
    assert "--log" in result.output and "8 lowercase hexadecimal digits" in result.output


def test_a_witness_of_no_log_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["witness", "--data-dir", str(tmp_path)])

    assert result.exit_code == 2
    assert "--log" in result.output


def test_a_name_with_a_space_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["witness", "--print-key", "--data-dir", str(tmp_path), "--name", "my witness"])

    assert result.exit_code == 2
    assert "'my witness'" in result.output
