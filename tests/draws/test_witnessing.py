"""A witness that does not answer: the draw waits, unsealed, and is sealed and drawn once a witness is back."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import LiveServer, log_keys
from tests.draws.sandbox_draws import (
    RULES_OFF,
    Engines,
    create_draw,
    create_post,
    load_draw,
    sandbox_creator,
    wait_for,
)
from tests.fakes.server import free_port, serve_in_thread
from web.db import session_factory
from web.draws import sealing
from web.draws.engine import DrawEngine
from web.social.services import platform_http_client
from web.witness.app import create_witness_app
from web.witness.state import WitnessConfig

__all__ = ["sandbox_creator"]  # fixtures used below


async def test_a_draw_waits_unsealed_while_no_witness_answers_then_completes_when_one_is_back(
    sandbox_creator: Any,
    engine: AsyncEngine,
    live_server: LiveServer,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sealing, "WITNESS_POLL_SECONDS", 0.2)
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 30)
    draw_id = await create_draw(engine, creator, [post], RULES_OFF)
    # A witness of its own, down for now: its state is a copy of the session witness's, so it knows the log.
    port = free_port()
    witness_dir = tmp_path / "witness"
    shutil.copytree(live_server.witness.data_dir, witness_dir, ignore=shutil.ignore_patterns("forks"))
    config = WitnessConfig(data_dir=witness_dir, name="witness.test/session", log_keys=log_keys(live_server.settings))
    settings = dataclasses.replace(
        live_server.settings, witnesses=(f"http://127.0.0.1:{port} {live_server.witness.key.text}",)
    )
    maker = session_factory(engine)
    async with platform_http_client() as http:
        engines = Engines(maker, DrawEngine(maker, settings, http, database_url))
        run = asyncio.create_task(engines.runner().run_next(asyncio.Event()))

        async def waiting() -> bool:
            return (await load_draw(engine, draw_id)).progress.get("stage") == "witness"

        await wait_for(waiting, within=60)
        draw = await load_draw(engine, draw_id)
        assert draw.status == "processing" and "witness" in draw.progress["message"]
        assert [entry["kind"] for entry in draw.progress["log"]] == ["opened"], "nothing is sealed meanwhile"

        with serve_in_thread(create_witness_app(config), port, "witness"):
            assert await asyncio.wait_for(run, timeout=60)

    draw = await load_draw(engine, draw_id)
    assert draw.status == "completed", draw.error
    assert [entry["kind"] for entry in draw.progress["log"]] == ["opened", "sealed", "certified"]
