"""A witness served by uvicorn on a real local socket, over a data directory of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, serve_in_thread
from tests.witness.fake_log import Clock, FakeLog
from web.fairness.note import VerifierKey
from web.witness.app import create_witness_app
from web.witness.state import WitnessConfig

WITNESS_NAME = "witness.test/w1"


@dataclass(frozen=True)
class RunningWitness:
    url: str
    key: VerifierKey
    data_dir: Path


StartWitness = Callable[[WitnessConfig], AbstractContextManager[RunningWitness]]


@contextmanager
def serve_witness(config: WitnessConfig) -> Iterator[RunningWitness]:
    app = create_witness_app(config)
    port = free_port()
    with serve_in_thread(app, port, "witness"):
        yield RunningWitness(f"http://127.0.0.1:{port}", app.state.witness.verifier_key, config.data_dir)


@pytest.fixture
def start_witness() -> StartWitness:
    return serve_witness


@pytest.fixture
def log() -> FakeLog:
    return FakeLog()


@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000)


@pytest.fixture
def witness_config(tmp_path: Path, log: FakeLog, clock: Clock) -> WitnessConfig:
    return WitnessConfig(data_dir=tmp_path / "witness", name=WITNESS_NAME, log_keys=[log.verifier_key], clock=clock)


@pytest.fixture
def witness(witness_config: WitnessConfig) -> Iterator[RunningWitness]:
    with serve_witness(witness_config) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client
