"""A witness that does not answer: the draw waits, unsealed, and is sealed and drawn once a witness is back."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import httpx
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
from web.certificates import witnessing
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


async def test_a_new_witness_catches_up_on_the_whole_log_a_few_records_at_a_time(
    sandbox_creator: Any,
    engine: AsyncEngine,
    live_server: LiveServer,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    creator = await sandbox_creator()
    post = await create_post(engine, live_server, creator, 10)
    for _ in range(3):
        await create_draw(engine, creator, [post], RULES_OFF)
    monkeypatch.setattr(witnessing, "CATCH_UP_RECORDS", 2)
    app = create_witness_app(
        WitnessConfig(data_dir=tmp_path / "new", name="witness.test/new", log_keys=log_keys(live_server.settings))
    )
    port = free_port()
    settings = dataclasses.replace(
        live_server.settings, witnesses=(f"http://127.0.0.1:{port} {app.state.witness.verifier_key.text}",)
    )

    with serve_in_thread(app, port, "witness"):
        async with httpx.AsyncClient(timeout=10) as http:
            cosigned = await witnessing.cosign_log(session_factory(engine), settings, http)

    history = (tmp_path / "new" / "history.jsonl").read_text().splitlines()
    assert cosigned.size >= 3 and len(cosigned.cosignatures) == 1
    assert len(history) == -(-cosigned.size // 2), "one cosigned head every two records, then the last"
    assert app.state.witness.latest(settings.log_name).note.startswith(f"{settings.log_name}\n{cosigned.size}\n")
