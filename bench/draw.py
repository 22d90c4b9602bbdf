"""A draw over 1,000,000 sandbox comments, end to end, against a locally started app and a real worker process.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/draw.py [--comments 1000000]

It creates a scratch database on DATABASE_URL's server (the embedded PostgreSQL when unset), starts a witness
(`cleack witness`, with a fresh data directory, for the log of this database), serves the app (`cleack serve`,
which carries the sandbox platform and the sandbox beacon, here with rounds every second) and, in this process,
connects a creator's sandbox account through the app's OAuth callback. It then times a fetch-only pass (the
provider client paging through the post without storing anything), the draw itself (created as the form creates
it, with its opened record in the public log), run by a `cleack worker` process whose resident memory is sampled
every 50 ms, and a second fetch-only pass.

It prints entries per second, the worker's peak RSS, the time of each stage as the engine records it (fetch,
filter, seal, randomness, select + certificate) and the ratio of the draw to the mean of the two fetch-only
passes, against the targets: a machine that speeds up or slows down during the run moves both passes alike.
The ratio is given for the whole draw, and for the draw without the randomness stage: the wait for the witness's
cosignature and for the beacon round named in the seal is a fixed wait for a public value (the beacon's period
and the margin, here 1 s and 0.5 s; 3 s and 6 s with drand's quicknet), not work that grows with the entries.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
# Run as a script, this file's folder heads the path and `import web` would find bench/web.py.
sys.path[:] = [entry for entry in sys.path if Path(entry or os.curdir).resolve() != BENCH_DIR]
sys.path.insert(0, str(PROJECT_ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from web.accounts.services import AccountService, Client  # noqa: E402
from web.certificates.keys import server_keys  # noqa: E402
from web.credits.services import CreditsService  # noqa: E402
from web.db import (  # noqa: E402
    EmbeddedPostgres,
    connect,
    create_engine,
    database_name,
    ensure_database,
    session_factory,
    upgrade,
    with_database,
)
from web.draws.models import Draw, DrawHistory  # noqa: E402
from web.draws.services import ChosenSources, DrawService  # noqa: E402
from web.fairness.log import log_verifier_key  # noqa: E402
from web.sandbox.models import SandboxAccount  # noqa: E402
from web.sandbox.services import SCOPES, SandboxService  # noqa: E402
from web.settings import Settings  # noqa: E402
from web.social.models import SocialAccount  # noqa: E402
from web.social.providers import provider_for  # noqa: E402
from web.social.services import SocialService, platform_http_client  # noqa: E402

RATIO_TARGET = 1.3
RSS_TARGET_MB = 300
SELECT_TARGET_SECONDS = 2.0
PASSWORD = "bench password 12345"
# The sandbox beacon's period and the margin after the seal: the randomness stage waits about as long as both.
BEACON_PERIOD_SECONDS = 1
BEACON_MARGIN_SECONDS = 0.5
CLEACK = str(PROJECT_ROOT / ".venv/bin/cleack")
CONFIG: dict[str, Any] = {
    "filters": {"min_followers": 20, "exclude_suspicious": True, "exclude_businesses": True},
    "rules": {
        "require_like": False,
        "require_comment": True,
        "require_follow": False,
        "comment_keywords": ["amazing", "win", "love"],
        "min_mentions": 0,
        "one_entry_per_user": True,
    },
    "winners_count": 10,
    "alternates_count": 5,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_environment(url: str, port: int, secret_key: str, witness: str) -> dict[str, str]:
    """The app's and the worker's environment: the same database, key, sandbox beacon and witness."""
    return {
        **os.environ,
        "CLEACK_ENV": "development",
        "DATABASE_URL": url,
        "PORT": str(port),
        "BASE_URL": f"http://127.0.0.1:{port}",
        "SECRET_KEY": secret_key,
        "RATE_LIMITS": "off",
        "LOG_LEVEL": "WARNING",
        "WITNESSES": witness,
        "SANDBOX_BEACON_PERIOD": str(BEACON_PERIOD_SECONDS),
        "BEACON_MARGIN_SECONDS": str(BEACON_MARGIN_SECONDS),
    }


def wait_until_serving(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited before it was ready")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} was not ready after 60 s")


def start_witness(settings: Settings, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`cleack witness` for this server's log (each of its keys), on a free port, its data and its log (which
    `witness_log` shows when the benchmark fails) in `folder`: (the process, its WITNESSES entry)."""
    data_dir = folder / "data"
    logs = [
        argument
        for server in server_keys(settings)
        for argument in ("--log", log_verifier_key(settings.log_name, server.key.public_key()).text)
    ]
    command = [CLEACK, "witness", "--data-dir", str(data_dir), "--name", "bench/witness", *logs]
    key = subprocess.run([*command, "--print-key"], cwd=PROJECT_ROOT, check=True, capture_output=True, text=True)
    port = free_port()
    with (folder / "witness.log").open("wb") as log:
        witness = subprocess.Popen(
            [*command, "--listen", f"127.0.0.1:{port}"], cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    wait_until_serving(f"http://127.0.0.1:{port}/key", witness, "the witness")
    return witness, f"http://127.0.0.1:{port} {key.stdout.strip()}"


def witness_log(folder: Path) -> str:
    path = folder / "witness.log"
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(lines[-20:])


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


async def connect_creator(url: str, settings: Settings, comments: int) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A creator with credits, connected to a new sandbox account through the app, and a post: (user, account, post)."""
    engine = create_engine(url, pool_size=2)
    maker = session_factory(engine)
    email = f"bench-{secrets.token_hex(4)}@example.com"
    async with maker() as db:
        user = await AccountService(db, settings).create_verified(email, PASSWORD)
        await CreditsService(db).grant(user.id, 100, transaction_type="bonus", idempotency_key=f"bench:{user.id}")
    async with httpx.AsyncClient(base_url=settings.base_url, timeout=30) as browser:
        await browser.get("/login")
        token = browser.cookies["csrftoken"]
        login = await browser.post("/login", data={"email": email, "password": PASSWORD, "_csrf_token": token})
        assert login.status_code == 303, login.text
        started = await browser.post("/accounts/sandbox/connect", data={"_csrf_token": token})
        assert started.status_code == 303, started.text
        params = dict(parse_qsl(urlsplit(started.headers["location"]).query))
        username = f"bench_{secrets.token_hex(4)}"
        async with maker() as db:
            sandbox = SandboxService(db, settings)
            sandbox_account = await sandbox.ensure_account(username)
            code = await sandbox.issue_code(
                sandbox_account, params["redirect_uri"], params["code_challenge"], " ".join(SCOPES)
            )
        landed = await browser.get(
            urlsplit(params["redirect_uri"]).path + "?" + urlencode({"code": code, "state": params["state"]})
        )
        assert landed.status_code == 303 and "connected" in landed.headers["location"], landed.text
    async with maker() as db:
        account = await db.scalar(sa.select(SocialAccount).where(SocialAccount.user_id == user.id))
        bench_account = await db.scalar(sa.select(SandboxAccount).where(SandboxAccount.username == username))
        assert account is not None and bench_account is not None
        post = await SandboxService(db, settings).create_post(bench_account, comments)
        await db.commit()
        post_id = post.post_id
    await engine.dispose()
    return user.id, account.id, post_id


async def fetch_only(url: str, settings: Settings, user_id: uuid.UUID, account_id: uuid.UUID, post_id: str) -> float:
    """The provider client paging through the whole post, storing nothing: the floor of any draw's time."""
    engine = create_engine(url, pool_size=1)
    async with platform_http_client() as http, session_factory(engine)() as db:
        social = SocialService(db, settings, http)
        account = await social.account_of(user_id, account_id)
        assert account is not None
        token = await social.fresh_token(account)
        provider = provider_for(settings, "sandbox", http)
        started = time.perf_counter()
        cursor = None
        seen = 0
        while True:
            page = await provider.comments(token, post_id, cursor)
            seen += len(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        elapsed = time.perf_counter() - started
    await engine.dispose()
    print(f"fetch-only pass: {seen:,} comments in {elapsed:.1f} s", flush=True)
    return elapsed


async def create_draw(
    url: str, settings: Settings, user_id: uuid.UUID, account_id: uuid.UUID, post_id: str, comments: int
) -> uuid.UUID:
    """A pending draw as the creation form makes it: its blacklist frozen, its opened record in the public log."""
    engine = create_engine(url, pool_size=1)
    post = {
        "kind": "post",
        "platform": "sandbox",
        "account_id": str(account_id),
        "post_id": post_id,
        "post_url": None,
        "expected_entries": comments,
    }
    async with session_factory(engine)() as db:
        draw = await DrawService(db).create(
            user_id,
            title="Benchmark giveaway",
            sources=ChosenSources(posts=[post]),
            config=CONFIG,
            scheduled_at=None,
            client=Client(ip="127.0.0.1", user_agent="bench/draw.py"),
            settings=settings,
        )
    await engine.dispose()
    return draw.id


async def draw_state(url: str, draw_id: uuid.UUID) -> tuple[str, Any, Any, Any]:
    engine = create_engine(url, pool_size=1)
    async with session_factory(engine)() as db:
        draw = await db.get(Draw, draw_id)
        assert draw is not None
        details = await db.scalar(
            sa.select(DrawHistory.details).where(DrawHistory.draw_id == draw_id, DrawHistory.action == "completed")
        )
        result = (draw.status, draw, details, draw.error)
    await engine.dispose()
    return result


def run_worker(env: dict[str, str], url: str, draw_id: uuid.UUID) -> tuple[float, int]:
    """Start `cleack worker`, sample its RSS until the draw ends; (seconds from start to completion, peak RSS)."""
    worker = subprocess.Popen([CLEACK, "worker"], cwd=PROJECT_ROOT, env=env)
    started = time.perf_counter()
    peak = 0
    watched = psutil.Process(worker.pid)
    last_check = 0.0
    try:
        while True:
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.NoSuchProcess:
                raise SystemExit("the worker exited during the draw") from None
            if time.perf_counter() - last_check > 1.0:
                last_check = time.perf_counter()
                status = asyncio.run(draw_state(url, draw_id))[0]
                if status not in ("pending", "processing"):
                    return time.perf_counter() - started, peak
            time.sleep(0.05)
    finally:
        stop(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comments", type=int, default=1_000_000)
    args = parser.parse_args()

    embedded = None
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        embedded = EmbeddedPostgres()
        server_url = embedded.start()
    url = with_database(server_url, f"cleack_bench_draw_{secrets.token_hex(4)}")
    asyncio.run(ensure_database(url))
    upgrade(url)
    port = free_port()
    secret_key = secrets.token_urlsafe(48)
    settings = Settings(
        environment="development",
        secret_key=secret_key,
        database_url=url,
        port=port,
        base_url=f"http://127.0.0.1:{port}",
        sandbox_beacon_period=BEACON_PERIOD_SECONDS,
        beacon_margin_seconds=BEACON_MARGIN_SECONDS,
    )
    processes: list[subprocess.Popen[bytes]] = []
    # A witness refuses a log that restarted: each run's new database gets a witness with no memory.
    with tempfile.TemporaryDirectory(prefix="cleack-bench-witness-") as witness_dir:
        try:
            witness, witness_entry = start_witness(settings, Path(witness_dir))
            processes.append(witness)
            env = app_environment(url, port, secret_key, witness_entry)
            processes.append(subprocess.Popen([CLEACK, "serve"], cwd=PROJECT_ROOT, env=env))
            wait_until_serving(f"{settings.base_url}/login", processes[-1], "the app")
            run(args.comments, url, settings, env)
        except BaseException:
            print(f"the witness's last log lines:\n{witness_log(Path(witness_dir))}", file=sys.stderr)
            raise
        finally:
            for process in reversed(processes):
                stop(process)
            asyncio.run(drop_database(server_url, url))
            if embedded is not None:
                embedded.stop()


def run(comments: int, url: str, settings: Settings, env: dict[str, str]) -> None:
    user_id, account_id, post_id = asyncio.run(connect_creator(url, settings, comments))
    before = asyncio.run(fetch_only(url, settings, user_id, account_id, post_id))
    draw_id = asyncio.run(create_draw(url, settings, user_id, account_id, post_id, comments))
    wall, peak = run_worker(env, url, draw_id)
    after = asyncio.run(fetch_only(url, settings, user_id, account_id, post_id))
    fetch_seconds = (before + after) / 2
    status, draw, details, error = asyncio.run(draw_state(url, draw_id))
    if status != "completed":
        raise SystemExit(f"the draw ended {status}: {error}")
    stages = details["seconds"]
    draw_seconds = (draw.completed_at - draw.executed_at).total_seconds()
    waited = stages["randomness"]
    peak_mb = peak / 1_000_000

    def ratio(seconds: float) -> str:
        value = seconds / fetch_seconds
        return f"{value:.2f} (target <= {RATIO_TARGET}: {'meets' if value <= RATIO_TARGET else 'MISSES'})"

    def line(label: str, value: str) -> None:
        print(f"  {label + ':':<34}{value}")

    print(f"draw of {draw.participants_count:,} entries ({draw.eligible_count:,} eligible)")
    line("from start to certificate", f"{draw_seconds:.1f} s ({wall:.1f} s with the worker's start-up)")
    line("entries per second", f"{draw.participants_count / draw_seconds:,.0f}")
    print("  stages (the engine's `completed` history row):")
    line("  fetch", f"{stages['fetch']:.2f} s")
    line("  filter", f"{stages['filter']:.2f} s")
    line("  seal (two roots + record)", f"{stages['seal']:.2f} s")
    line(
        "  randomness",
        f"{waited:.2f} s (a witness's cosignature, then beacon round {details['beacon_round']};"
        f" period {BEACON_PERIOD_SECONDS} s, margin {BEACON_MARGIN_SECONDS} s)",
    )
    line("  select + certificate", f"{stages['select']:.2f} s (target <= {SELECT_TARGET_SECONDS:.0f} s)")
    line("worker peak RSS", f"{peak_mb:.0f} MB (target <= {RSS_TARGET_MB} MB)")
    line("fetch-only passes", f"{before:.1f} and {after:.1f} s (mean {fetch_seconds:.1f} s)")
    print("  ratio to the mean fetch-only pass:")
    line("  whole draw", ratio(draw_seconds))
    line("  without the randomness wait", ratio(draw_seconds - waited))


async def drop_database(server_url: str, url: str) -> None:
    async with connect(with_database(server_url, "postgres")) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')


if __name__ == "__main__":
    main()
