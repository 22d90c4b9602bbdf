"""The `cleack` command, run as a user runs it: in its own process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.conftest import free_port
from web.db import connect, upgrade

CLEACK = [sys.executable, "-m", "web.cli"]


def cleack(*args: str, env: dict[str, str], input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLEACK, *args], env=env, capture_output=True, text=True, timeout=120, input=input_text, check=False
    )


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update({"CLEACK_ENV": "development", "CLEACK_VAR_DIR": str(tmp_path / "var"), **extra})
    return env


def _fetch(url: str, query: str) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        async with connect(url) as conn:
            return [tuple(row) for row in await conn.fetch(query)]

    return asyncio.run(run())


def test_create_admin_makes_a_verified_administrator(scratch_url: str, tmp_path: Path) -> None:
    upgrade(scratch_url)
    env = environment(tmp_path, DATABASE_URL=scratch_url)

    done = cleack("create-admin", "Boss@Example.com", env=env)

    assert done.returncode == 0, done.stderr
    assert "Administrator Boss@Example.com is ready." in done.stdout
    assert "Password: " in done.stdout
    assert _fetch(scratch_url, "SELECT role, email_verified FROM users") == [("admin", True)]
    assert _fetch(scratch_url, "SELECT action, admin_id, details->>'via' FROM audit_logs") == [
        ("admin_created", None, "command line")
    ]
    again = cleack("create-admin", "boss@example.com", "--password", "another admin phrase", env=env)
    assert again.returncode == 0, again.stderr
    assert len(_fetch(scratch_url, "SELECT id FROM users")) == 1
    assert _fetch(scratch_url, "SELECT action FROM audit_logs ORDER BY created_at") == [
        ("admin_created",),
        ("admin_promoted",),
    ]
    refused = cleack("create-admin", "not-an-email", env=env)
    assert refused.returncode != 0
    assert "Enter a valid email address" in refused.stderr


def test_backup_then_restore_gives_back_the_same_rows(scratch_url: str, tmp_path: Path) -> None:
    upgrade(scratch_url)
    env = environment(tmp_path, DATABASE_URL=scratch_url)
    assert cleack("create-admin", "first@example.com", "--password", "a long admin phrase", env=env).returncode == 0
    before_users = _fetch(scratch_url, "SELECT id, email, password_hash, credit_balance FROM users ORDER BY id")
    before_ledger = _fetch(scratch_url, "SELECT id, amount, balance, idempotency_key FROM credits ORDER BY id")
    backup_file = tmp_path / "cleack.backup"

    taken = cleack("backup", str(backup_file), env=env)
    assert taken.returncode == 0, taken.stderr
    assert backup_file.stat().st_size > 0

    assert cleack("create-admin", "second@example.com", "--password", "a long admin phrase", env=env).returncode == 0
    _fetch(scratch_url, "DELETE FROM credits")
    assert len(_fetch(scratch_url, "SELECT id FROM users")) == 2

    restored = cleack("restore", str(backup_file), "--yes", env=env)
    assert restored.returncode == 0, restored.stderr
    assert _fetch(scratch_url, "SELECT id, email, password_hash, credit_balance FROM users ORDER BY id") == before_users
    assert _fetch(scratch_url, "SELECT id, amount, balance, idempotency_key FROM credits ORDER BY id") == before_ledger


def test_restore_refuses_a_file_that_is_not_a_backup(scratch_url: str, tmp_path: Path) -> None:
    upgrade(scratch_url)
    bogus = tmp_path / "bogus.backup"
    bogus.write_text("hello")
    refused = cleack("restore", str(bogus), "--yes", env=environment(tmp_path, DATABASE_URL=scratch_url))
    assert refused.returncode != 0
    assert "is not a Cleack backup" in refused.stderr


def _wait_healthy(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("cleack run did not become healthy")


def test_run_on_a_given_database_migrates_loads_the_demo_and_stops_on_sigterm(scratch_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = environment(tmp_path, DATABASE_URL=scratch_url, PORT=str(port))
    process = subprocess.Popen([*CLEACK, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", process)
        assert _fetch(scratch_url, "SELECT email, email_verified FROM users") == [("demo@cleack.local", True)]
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "Demo creator: demo@cleack.local" in stderr


def test_run_without_a_database_url_uses_the_embedded_server_and_stops_it(tmp_path: Path) -> None:
    port = free_port()
    env = environment(tmp_path, PORT=str(port))
    process = subprocess.Popen([*CLEACK, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    data_dir = str(tmp_path / "var" / "pgdata")
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", process, timeout=90)
        page = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
        assert page.status_code == 200
        assert _postgres_running(data_dir)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "Embedded PostgreSQL stopped." in stderr
    assert not _postgres_running(data_dir)


def _postgres_running(data_dir: str) -> bool:
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        if proc.info["name"] == "postgres" and data_dir in " ".join(proc.info["cmdline"] or []):
            return True
    return False
