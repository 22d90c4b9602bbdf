"""Requests/s and p50/p99 latency of Cleack's pages, next to the ceiling of the stack they are built on.

    .venv/bin/python bench/web.py [--duration 10] [--warmup 2] [--connections 32]

Three targets, one after the other, each at the same number of keep-alive connections on loopback:

- dashboard: GET /draws, logged in (session cookie and CSRF cookie, as a browser sends them), 5 draws listed;
- login:     GET /login, a visitor without cookies;
- ceiling:   GET / of bench/ceiling_app.py, a bare Litestar + asyncpg + Jinja page reading a 5-row table.

It prints figures, and whether the dashboard meets its targets (at least half the ceiling's requests/s, p99 at
most 50 ms); it passes or fails nothing. The database is DATABASE_URL's server when that is set, else the
embedded PostgreSQL; either way the `cleack_bench` database is dropped and created anew. Each app runs in a
uvicorn process of its own (one worker, uvloop + httptools, no access log); the load comes from this process,
a closed loop of raw asyncio connections that times every request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
# Run as a script, this file's folder heads the path and `import web` would find this very file.
sys.path[:] = [entry for entry in sys.path if Path(entry or os.curdir).resolve() != BENCH_DIR]

if TYPE_CHECKING:
    from web.settings import Settings

HOST = "127.0.0.1"
DATABASE = "cleack_bench"
ROWS = 5
EMAIL = "bench@cleack.local"
PASSWORD = "cleack-bench-password"
USER_AGENT = "cleack-bench"
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
READY_TIMEOUT = 60.0
BUSY_MACHINE_PERCENT = 15.0  # idle load above which the report warns that the figures are not clean


# The load generator


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0


@dataclass(frozen=True)
class CpuSnapshot:
    """Seconds of CPU used so far: by the server process, by this process, by the whole machine."""

    server: float | None
    client: float
    machine: tuple[float, float] | None  # busy, total


@dataclass(frozen=True)
class Result:
    name: str
    request_line: str
    duration: float
    tally: Tally
    cpu_before: CpuSnapshot
    cpu_after: CpuSnapshot

    @property
    def completed(self) -> int:
        return len(self.tally.latencies)

    @property
    def rps(self) -> float:
        return self.completed / self.duration

    def percentile_ms(self, fraction: float) -> float:
        """Nearest-rank percentile."""
        ordered = sorted(self.tally.latencies)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] * 1000

    @property
    def non_200(self) -> int:
        return sum(count for status, count in self.tally.statuses.items() if status != 200)

    def cpu_percent(self, which: str) -> float | None:
        """Share of one core used during the measured window, in percent."""
        before, after = getattr(self.cpu_before, which), getattr(self.cpu_after, which)
        if before is None or after is None:
            return None
        return (after - before) / self.duration * 100

    def server_ms_per_request(self) -> float | None:
        """Server CPU per response: the cost of a page, less sensitive than req/s to what else the machine runs."""
        share = self.cpu_percent("server")
        return None if share is None or not self.completed else share / 100 * self.duration / self.completed * 1000

    def machine_percent(self) -> float | None:
        """All cores' use during the window, in percent of one core (so up to cores x 100)."""
        return busy_percent(self.cpu_before.machine, self.cpu_after.machine)


def build_request(path: str, port: int, cookie: str | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", f"User-Agent: {USER_AGENT}", "Accept: text/html"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes, bool]:
    """One HTTP/1.1 response: status, head, body, and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked = False
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            keep_alive = b"close" not in value.lower()
    if chunked:
        chunks = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16):
            chunks.append((await reader.readexactly(size + 2))[:-2])
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
        body = b"".join(chunks)
    elif length is not None:
        body = await reader.readexactly(length)
    else:
        body = await reader.read()
        keep_alive = False
    return status, head, body, keep_alive


async def fetch(port: int, request: bytes) -> tuple[int, bytes, bytes]:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        status, head, body, _ = await read_response(reader)
        return status, head, body
    finally:
        writer.close()


async def drive(port: int, request: bytes, tally: Tally, start: float, end: float) -> None:
    """One connection in a closed loop: send, read the whole response, record it if it ended in the window."""
    writer: asyncio.StreamWriter | None = None
    try:
        while time.perf_counter() < end:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                sent = time.perf_counter()
                writer.write(request)
                status, _, _, keep_alive = await read_response(reader)
            except (OSError, EOFError, ValueError, IndexError, asyncio.LimitOverrunError):
                # a refused or reset connection, or a response cut short or not HTTP
                if writer is not None:
                    writer.close()
                    writer = None
                if start <= time.perf_counter() < end:
                    tally.errors += 1
                await asyncio.sleep(0.01)
                continue
            done = time.perf_counter()
            if start <= done < end:
                tally.latencies.append(done - sent)
                tally.statuses[status] += 1
            if not keep_alive:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


def machine_cpu() -> tuple[float, float] | None:
    """Seconds of CPU the whole machine has been busy, and seconds of CPU it has had, from /proc/stat (Linux)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None
    return (sum(cpu) - cpu[3] - cpu[4]) / ticks, sum(cpu) / ticks  # busy is all but idle and iowait


def cpu_snapshot(server_pid: int) -> CpuSnapshot:
    server = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        # utime and stime are the 14th and 15th fields; the command name before them may hold spaces
        fields = Path(f"/proc/{server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return CpuSnapshot(server, time.process_time(), machine_cpu())


def busy_percent(before: tuple[float, float] | None, after: tuple[float, float] | None) -> float | None:
    """The machine's use between two machine_cpu() readings, in percent of one core (so up to cores x 100)."""
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1) * 100


async def machine_load(seconds: float) -> float | None:
    before = machine_cpu()
    await asyncio.sleep(seconds)
    return busy_percent(before, machine_cpu())


async def measure(
    name: str, server: Server, path: str, cookie: str | None, connections: int, warmup: float, duration: float
) -> Result:
    request = build_request(path, server.port, cookie)
    tally = Tally()
    start = time.perf_counter() + warmup
    end = start + duration
    tasks = [asyncio.create_task(drive(server.port, request, tally, start, end)) for _ in range(connections)]
    try:
        await asyncio.sleep(start - time.perf_counter())
        before = cpu_snapshot(server.pid)
        await asyncio.sleep(end - time.perf_counter())
        after = cpu_snapshot(server.pid)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return Result(name, f"GET {path}", duration, tally, before, after)


# The servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class Server:
    """`uvicorn bench.MODULE:app` in a process of its own, one worker, on a free loopback port."""

    def __init__(self, module: str, env: dict[str, str]) -> None:
        self.module = module
        self.env = env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Server:
        loop = "uvloop" if _has("uvloop") else "auto"
        command = [
            sys.executable, "-m", "uvicorn", f"bench.{self.module}:app",
            "--app-dir", str(PROJECT_ROOT),
            "--host", HOST, "--port", str(self.port),
            "--loop", loop, "--http", "httptools",
            "--no-access-log", "--log-level", "warning",
            "--no-server-header", "--no-proxy-headers", "--lifespan", "on",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=self.env)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    async def ready(self, path: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process is None or self.process.poll() is not None:
                raise SystemExit(f"the {self.module} server exited before it was ready")
            with contextlib.suppress(OSError, EOFError):
                await fetch(self.port, build_request(path, self.port))
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"the {self.module} server was not ready after {READY_TIMEOUT:.0f} s")
            await asyncio.sleep(0.1)


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# The database


async def recreate_database(server_url: str) -> None:
    from web.db import connect, with_database

    async with connect(with_database(server_url, "postgres")) as connection:
        await connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{DATABASE}"')


async def seed(url: str, settings: Settings) -> str:
    """The bench user with a few draws, the ceiling's table; returns the user's session token."""
    from web.accounts.services import AccountService, Client
    from web.db import connect, create_engine, session_factory
    from web.draws.models import Draw

    engine = create_engine(url, pool_size=1)
    try:
        async with session_factory(engine)() as db:
            accounts = AccountService(db, settings)
            user = await accounts.create_verified(EMAIL, PASSWORD, full_name="Bench Creator")
            db.add_all(
                Draw(
                    user_id=user.id,
                    title=f"Bench draw {number}",
                    platform="sandbox",
                    status="completed",
                    participants_count=number * 1234,
                    eligible_count=number * 1000,
                )
                for number in range(1, ROWS + 1)
            )
            await db.commit()
            token = await accounts.start_session(user, Client(ip=HOST, user_agent=USER_AGENT))
    finally:
        await engine.dispose()

    async with connect(url) as connection:
        await connection.execute(
            "CREATE TABLE bench_items (id integer PRIMARY KEY, title text NOT NULL, status text NOT NULL,"
            " entries integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        await connection.executemany(
            "INSERT INTO bench_items (id, title, status, entries) VALUES ($1, $2, $3, $4)",
            [(number, f"Bench item {number}", "completed", number * 1234) for number in range(1, ROWS + 1)],
        )
        await connection.execute("ANALYZE")
    return token


# The run


@dataclass(frozen=True)
class Plan:
    connections: int
    warmup: float
    duration: float


async def run_all(
    plan: Plan, cleack: Server, ceiling: Server, session_cookie: str
) -> tuple[float | None, list[Result]]:
    await asyncio.gather(cleack.ready("/healthz"), ceiling.ready("/"))

    # A logged-in browser also holds the CSRF cookie that its first page set.
    status, head, _ = await fetch(cleack.port, build_request("/login", cleack.port))
    if status != 200:
        raise SystemExit(f"GET /login answered {status}")
    set_cookies = [
        line.split(b":", 1)[1].split(b";", 1)[0].strip().decode()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"set-cookie:")
    ]
    dashboard_cookie = "; ".join([session_cookie, *set_cookies])

    targets = [
        ("ceiling", ceiling, "/", None, b"Bench item 1"),
        ("dashboard", cleack, "/draws", dashboard_cookie, b"Bench draw 1"),
        ("login", cleack, "/login", None, b"<h1>Log in</h1>"),
    ]
    for name, server, path, cookie, marker in targets:
        status, _, body = await fetch(server.port, build_request(path, server.port, cookie))
        if status != 200 or marker not in body:
            raise SystemExit(f"{name}: GET {path} answered {status} without {marker.decode()!r}; not measuring it")

    baseline = await machine_load(1.0)
    results = []
    for name, server, path, cookie, _ in targets:
        print(f"measuring {name} (GET {path})…", file=sys.stderr, flush=True)
        results.append(await measure(name, server, path, cookie, plan.connections, plan.warmup, plan.duration))
    return baseline, results


def report(plan: Plan, baseline: float | None, results: list[Result], database: str) -> None:
    by_name = {result.name: result for result in results}
    ceiling = by_name["ceiling"]

    def ratio(result: Result) -> float:
        return result.rps / ceiling.rps if ceiling.rps else math.nan

    def percent(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}%"

    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    print()
    print(f"command:     {shlex.join(sys.orig_argv)}")
    print(f"machine:     {cores} CPU cores ({usable} usable), Python {sys.version.split()[0]}, {sys.platform}")
    print(f"database:    {database}")
    print(f"idle load:   {percent(baseline)} CPU used by other processes in the second before the first target")
    print("servers:     uvicorn, one worker process each, uvloop + httptools, access log off, log level warning")
    print(
        f"load:        {plan.connections} keep-alive connections on loopback, closed loop, "
        f"{plan.warmup:g} s warm-up then {plan.duration:g} s measured per target"
    )
    print()
    header = (
        f"{'target':<10} {'request':<11} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6} {'non-200':>7} "
        f"{'errors':>6} {'server CPU':>10} {'CPU ms/req':>10} {'loadgen CPU':>11} {'machine CPU':>11}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        shown_ratio = "-" if result is ceiling else f"{ratio(result):.0%}"
        per_request = result.server_ms_per_request()
        print(
            f"{result.name:<10} {result.request_line:<11} {result.rps:>7.0f} {result.percentile_ms(0.5):>7.1f} "
            f"{result.percentile_ms(0.99):>7.1f} {shown_ratio:>6} {result.non_200:>7} {result.tally.errors:>6} "
            f"{percent(result.cpu_percent('server')):>10} {'-' if per_request is None else f'{per_request:.2f}':>10} "
            f"{percent(result.cpu_percent('client')):>11} {percent(result.machine_percent()):>11}"
        )
    print()
    print(
        "CPU: percent of one core over the measured window; machine CPU counts every process on all cores "
        f"(at most {(cores or 1) * 100}%), PostgreSQL included. CPU ms/req: the server process's CPU per response."
    )
    for result in results:
        if result.non_200:
            statuses = ", ".join(f"{status}: {count}" for status, count in sorted(result.tally.statuses.items()))
            print(f"{result.name}: statuses {statuses}")
    print()
    dashboard, login = by_name["dashboard"], by_name["login"]
    checks = [
        (
            f"dashboard >= {TARGET_RATIO:.0%} of the ceiling",
            f"{ratio(dashboard):.0%}",
            ratio(dashboard) >= TARGET_RATIO,
        ),
        (
            f"dashboard p99 <= {TARGET_P99_MS:g} ms",
            f"{dashboard.percentile_ms(0.99):.1f} ms",
            dashboard.percentile_ms(0.99) <= TARGET_P99_MS,
        ),
        (
            f"login p99 <= {TARGET_P99_MS:g} ms",
            f"{login.percentile_ms(0.99):.1f} ms",
            login.percentile_ms(0.99) <= TARGET_P99_MS,
        ),
    ]
    print(f"dashboard / ceiling: {ratio(dashboard):.0%}")
    print(f"login / ceiling:     {ratio(login):.0%}")
    print()
    for label, value, met in checks:
        print(f"{label:<32} {value:>9}   {'met' if met else 'NOT met'}")
    if baseline is not None and baseline > BUSY_MACHINE_PERCENT:
        print(
            f"\nwarning: other processes used {baseline:.0f}% CPU before the run; the servers shared the machine with "
            "them, so req/s and latencies are understated and noisy (CPU ms/req much less so)."
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per target (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    return parser.parse_args(argv)


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM does what Ctrl-C does: inside asyncio.run, the runner cancels its task rather than break a transport."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def _run(coroutine: Any) -> Any:
    if _has("uvloop"):
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def run_bench(plan: Plan) -> tuple[str, float | None, list[Result]]:
    """Database, servers, load; whatever happens, the servers and the embedded PostgreSQL are stopped after."""
    from web.db import EmbeddedPostgres, to_asyncpg_dsn, upgrade, with_database
    from web.security import session_cookie_name
    from web.settings import load_settings

    settings = load_settings()
    with contextlib.ExitStack() as stack:
        server_url = os.environ.get("DATABASE_URL")
        where = "DATABASE_URL's server"
        if not server_url:
            embedded = EmbeddedPostgres()
            print("starting the embedded PostgreSQL…", file=sys.stderr, flush=True)
            stack.callback(embedded.stop)
            server_url = embedded.start()
            where = "the embedded PostgreSQL (var/pgdata)"
        url = with_database(server_url, DATABASE)
        print(f"creating the {DATABASE} database…", file=sys.stderr, flush=True)
        asyncio.run(recreate_database(server_url))
        upgrade(url)
        token = asyncio.run(seed(url, settings))

        dsn, options = to_asyncpg_dsn(url)
        env = {
            **os.environ,
            "CLEACK_ENV": "development",
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": url,
            "BENCH_DATABASE_URL": url,
            "BENCH_ASYNCPG_DSN": dsn,
            "BENCH_ASYNCPG_HOST": str(options.get("host", "")),
        }
        cleack = stack.enter_context(Server("cleack_app", env))
        ceiling = stack.enter_context(Server("ceiling_app", env))
        cookie_name = session_cookie_name(settings.with_overrides(environment="production"))
        baseline, results = _run(run_all(plan, cleack, ceiling, f"{cookie_name}={token}"))
    return f"{where}, database {DATABASE} (dropped and created by this run)", baseline, results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(connections=args.connections, warmup=args.warmup, duration=args.duration)
    signal.signal(signal.SIGTERM, _terminate)
    os.environ["CLEACK_ENV"] = "development"
    try:
        database, baseline, results = run_bench(plan)
    except KeyboardInterrupt:
        print("\ninterrupted; the servers are stopped", file=sys.stderr)
        return 130
    report(plan, baseline, results, database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
