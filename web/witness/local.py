"""A witness beside `cleack run`, for development: the public log needs one, and this machine has no other.

It keeps its state per database (a new database starts a new log, which its old head would refuse), and it
is never started in production, where WITNESSES must name witnesses that are not this server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from web.certificates.keys import server_keys
from web.db import connect
from web.fairness.log import log_verifier_key
from web.settings import VAR_DIR, Settings
from web.witness.app import create_witness_app
from web.witness.state import WitnessConfig

DATABASE_IDENTITY = """
    SELECT (SELECT system_identifier FROM pg_control_system())::text || ':' ||
           (SELECT oid FROM pg_database WHERE datname = current_database())::text
"""


async def database_identity(url: str) -> str:
    async with connect(url) as connection:
        identity = await connection.fetchval(DATABASE_IDENTITY)
    return hashlib.sha256(str(identity).encode()).hexdigest()[:16]


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def local_witness(settings: Settings, url: str) -> AsyncIterator[Settings]:
    """Serve a witness on a free local port for as long as the block runs; the settings that name it."""
    import uvicorn

    data_dir = Path(VAR_DIR) / "witness" / await database_identity(url)
    keys = [log_verifier_key(settings.log_name, key.key.public_key()) for key in server_keys(settings)]
    app = create_witness_app(WitnessConfig(data_dir=data_dir, name="localhost/cleack-witness", log_keys=keys))
    port = _free_port("127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the local witness did not start")
        await asyncio.sleep(0.02)
    try:
        key = app.state.witness.verifier_key.text
        yield replace(settings, witnesses=(f"http://127.0.0.1:{port} {key}",))
    finally:
        server.should_exit = True
        await task
