"""Server signing keys: from SIGNING_KEYS in production, made once in var/ elsewhere, published for verifiers."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.conftest import LiveServer
from tests.fairness.draws import make_draw
from web.certificates import keys as server_keys
from web.certificates.keys import current_signing_key, parse_signing_keys, published_key_set
from web.cli import main
from web.fairness import key_id, load_signing_key, parse_key_set, signing_key_text, verify_certificate
from web.fairness.log import sign_checkpoint
from web.fairness.note import note_signature_valid, parse_verifier_key, split_note
from web.security import new_token_key
from web.settings import ConfigurationError, Settings, load_settings

PRODUCTION = {
    "CLEACK_ENV": "production",
    "SECRET_KEY": "s" * 40,
    "DATABASE_URL": "postgresql://cleack@db/cleack",
    "SMTP_URL": "smtp://mail:25",
    "BASE_URL": "https://cleack.example",
    "WITNESSES": "https://witness.example witness.example+7e81f231+BAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4",
}
NOVEMBER = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)


def fresh_key_text() -> str:
    return signing_key_text(server_keys.generate_signing_key())


def production_settings(*entries: str) -> Settings:
    return Settings(environment="production", secret_key="s" * 40, sandbox=False, signing_keys=entries)


def test_production_refuses_to_start_without_signing_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TOKEN_KEYS", new_token_key())
    monkeypatch.delenv("SANDBOX", raising=False)
    monkeypatch.delenv("SIGNING_KEYS", raising=False)
    with pytest.raises(ConfigurationError, match="SIGNING_KEYS"):
        load_settings()
    monkeypatch.setenv("SIGNING_KEYS", "not-a-key")
    with pytest.raises(ConfigurationError, match="SIGNING_KEYS: key 1"):
        load_settings()
    newer, older = fresh_key_text(), fresh_key_text()
    monkeypatch.setenv("SIGNING_KEYS", f"{newer}@2026-11-01, {older}")
    settings = load_settings()
    assert settings.signing_keys == (f"{newer}@2026-11-01", older)
    assert key_id(current_signing_key(settings)) == key_id(load_signing_key(newer))


def test_production_refuses_to_start_without_a_witness(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TOKEN_KEYS", new_token_key())
    monkeypatch.setenv("SIGNING_KEYS", fresh_key_text())
    monkeypatch.delenv("SANDBOX", raising=False)
    monkeypatch.delenv("WITNESSES")
    with pytest.raises(ConfigurationError, match="WITNESSES"):
        load_settings()
    monkeypatch.setenv("WITNESSES", "witness.example+5b2f9a1c+key-without-an-address")
    with pytest.raises(ConfigurationError, match="URL VERIFIER-KEY"):
        load_settings()


def test_production_without_keys_signs_nothing() -> None:
    with pytest.raises(ConfigurationError, match="SIGNING_KEYS"):
        current_signing_key(production_settings())


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (("{new}", "{old}"), "key 1 replaced an older key: give its start"),
        (("{new}@2026-10-01", "{old}@2026-11-01"), "newest first"),
        (("{new}@2026-11-01", "{new}"), "listed twice"),
        (("{new}@yesterday",), "not a start time"),
        (("{new}@2026-11-01T10:00:00",), "in UTC"),
    ],
)
def test_unusable_key_lists_are_refused_with_the_reason(entries: tuple[str, ...], message: str) -> None:
    new, old = fresh_key_text(), fresh_key_text()
    with pytest.raises(server_keys.SigningKeysError, match=message):
        parse_signing_keys([entry.format(new=new, old=old) for entry in entries])


def test_the_newest_started_key_signs_and_every_key_is_published() -> None:
    newer, older = fresh_key_text(), fresh_key_text()
    settings = production_settings(f"{newer}@2026-11-01", older)

    document = published_key_set(settings)

    assert [record["key_id"] for record in document["keys"]] == [
        key_id(load_signing_key(newer)),
        key_id(load_signing_key(older)),
    ]
    assert document["keys"][0]["created_at"] == "2026-11-01T00:00:00Z"
    assert document["keys"][0]["retired_at"] is None
    assert document["keys"][1]["created_at"] == "1970-01-01T00:00:00Z"
    assert document["keys"][1]["retired_at"] == "2026-11-01T00:00:00Z"
    published = parse_key_set(document)
    before = NOVEMBER - datetime.timedelta(days=1)
    after = NOVEMBER + datetime.timedelta(days=1)
    old_certificate = make_draw(key=current_signing_key(settings, before), issued_at=before).certificate
    new_certificate = make_draw(key=current_signing_key(settings, after), issued_at=after).certificate
    assert old_certificate["key_id"] == key_id(load_signing_key(older))
    assert new_certificate["key_id"] == key_id(load_signing_key(newer))
    assert verify_certificate(old_certificate, keys=published).ok
    assert verify_certificate(new_certificate, keys=published).ok
    # The retired key no longer vouches for what is issued after its retirement.
    late = make_draw(key=load_signing_key(older), issued_at=after).certificate
    assert not verify_certificate(late, keys=published).ok


def test_a_key_configured_ahead_of_its_start_waits_for_it() -> None:
    upcoming, current = fresh_key_text(), fresh_key_text()
    now = datetime.datetime.now(datetime.UTC)
    start = (now + datetime.timedelta(days=2)).strftime("%Y-%m-%d")
    settings = production_settings(f"{upcoming}@{start}", f"{current}@2026-01-01")

    assert key_id(current_signing_key(settings)) == key_id(load_signing_key(current))
    assert key_id(current_signing_key(settings, now + datetime.timedelta(days=3))) == key_id(load_signing_key(upcoming))
    assert len(published_key_set(settings)["keys"]) == 2


def test_development_makes_one_key_and_keeps_it_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_keys, "VAR_DIR", tmp_path)
    settings = Settings(environment="development", secret_key="d" * 40)

    first = current_signing_key(settings)
    again = current_signing_key(settings)

    stored = tmp_path / "signing_key"
    assert key_id(first) == key_id(again)
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    text, _, start = stored.read_text().strip().partition("@")
    assert key_id(load_signing_key(text)) == key_id(first)
    assert published_key_set(settings)["keys"][0]["created_at"] == start


async def test_the_key_set_is_served_for_anyone_to_fetch(live_server: LiveServer, client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/cleack-signing-key", headers={"Origin": "https://elsewhere.example"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["access-control-allow-origin"] == "*"
    assert "set-cookie" not in response.headers
    published = parse_key_set(response.json())
    signing = current_signing_key(live_server.settings)
    assert key_id(signing) in published
    certificate = make_draw(key=signing, issued_at=datetime.datetime.now(datetime.UTC)).certificate
    assert verify_certificate(certificate, keys=published).ok


def test_the_command_prints_a_fresh_key_and_the_key_set() -> None:
    runner = CliRunner()

    plain = runner.invoke(main, ["signing-key", "--new"])
    dated = runner.invoke(main, ["signing-key", "--new", "--start", "2026-12-01"])

    assert plain.exit_code == 0, plain.output
    assert dated.exit_code == 0, dated.output
    assert load_signing_key(plain.output.strip())
    assert dated.output.strip().endswith("@2026-12-01T00:00:00Z")
    parsed = parse_signing_keys([dated.output.strip(), plain.output.strip()])
    assert parsed[0].created_at == datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    assert plain.output.strip() != runner.invoke(main, ["signing-key", "--new"]).output.strip()


def test_the_command_prints_the_logs_verifier_keys_that_a_witness_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    newer, older = fresh_key_text(), fresh_key_text()
    monkeypatch.setenv("SIGNING_KEYS", f"{newer}@2026-11-01, {older}")
    monkeypatch.setenv("LOG_ORIGIN", "cleack.example/log")

    printed = CliRunner().invoke(main, ["signing-key", "--log-keys"])

    assert printed.exit_code == 0, printed.output
    keys = [parse_verifier_key(line) for line in printed.output.split()]
    assert [key.name for key in keys] == ["cleack.example/log", "cleack.example/log"]
    note = sign_checkpoint("cleack.example/log", 1, bytes(32), load_signing_key(older))
    text, [line] = split_note(note)
    assert note_signature_valid(text, line, keys[1]) and not note_signature_valid(text, line, keys[0])
