"""Public randomness: the drand client against drand's wire format, and the sandbox beacon the app serves."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fairness.draws import collected_entries
from tests.fakes import drand
from tests.fakes.server import serve
from web.app import create_app
from web.certificates.beacon import (
    QUICKNET,
    QUICKNET_CHAIN_HASH,
    BeaconError,
    DrandClient,
    SandboxBeacon,
    beacon_client,
    commit_round,
    wait_for_round,
)
from web.fairness import (
    Beacon,
    DrawFacts,
    MerkleBuilder,
    Pick,
    build_certificate,
    generate_signing_key,
    new_secret,
    select_winners,
    sort_canonically,
    verify_certificate,
)
from web.settings import Settings

UTC = datetime.UTC
SPECIFICATION = Path(__file__).resolve().parents[2] / "docs" / "fairness.md"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def fake_drand() -> Iterator[drand.FakeDrand]:
    relay = drand.FakeDrand()
    with serve(relay):
        yield relay


def sandbox_client(live_server: LiveServer, http: httpx.AsyncClient) -> DrandClient:
    """A client that learns the chain from the app over HTTP, as it would for any drand relay."""
    chain_hash = SandboxBeacon(live_server.settings).chain_info.chain_hash
    return DrandClient(f"{live_server.url}/sandbox/beacon", chain_hash, http)


class ServedApp:
    """The app, wrapped so that `serve` can note where it listens."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.base_url = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


# drand itself (a fake relay speaking its exact format)


async def test_the_drand_client_reads_quicknet_rounds(fake_drand: drand.FakeDrand, http: httpx.AsyncClient) -> None:
    client = DrandClient(fake_drand.base_url, QUICKNET_CHAIN_HASH, http)

    info = await client.info()
    beacon = await client.fetch(1000)

    assert (info.period, info.genesis_time, info.beacon_id) == (3, 1692803367, "quicknet")
    assert beacon == Beacon("drand:quicknet", 1000, drand.ROUND_1000["randomness"])
    assert client.round_at(datetime.datetime.fromtimestamp(1692803367 + 2997, UTC)) == 1000
    assert info.time_of(1000) == datetime.datetime.fromtimestamp(1692803367 + 2997, UTC)
    assert await client.fetch(drand.current_round() + 100) is None


async def test_a_round_whose_randomness_is_not_its_signatures_hash_is_refused(
    fake_drand: drand.FakeDrand, http: httpx.AsyncClient
) -> None:
    client = DrandClient(fake_drand.base_url, QUICKNET_CHAIN_HASH, http)
    fake_drand.fail("tampered", path="/public/")
    with pytest.raises(BeaconError, match="not SHA-256 of the signature"):
        await client.fetch(1234)
    fake_drand.fail("wrong_round", path="/public/")
    with pytest.raises(BeaconError, match="answered round 1233 when asked for 1234"):
        await client.fetch(1234)
    fake_drand.fail("server_error", path="/public/")
    with pytest.raises(BeaconError, match="HTTP 500"):
        await client.fetch(1234)
    assert await client.fetch(1234) == Beacon("drand:quicknet", 1234, drand.round_document(1234)["randomness"])


async def test_a_relay_serving_another_chain_is_refused(fake_drand: drand.FakeDrand, http: httpx.AsyncClient) -> None:
    other = hashlib.sha256(b"another chain").hexdigest()
    with pytest.raises(BeaconError, match="HTTP 404"):
        await DrandClient(fake_drand.base_url, other, http).info()
    with pytest.raises(BeaconError, match="could not be reached"):
        await DrandClient("http://127.0.0.1:9", QUICKNET_CHAIN_HASH, http).info()


async def test_waiting_for_a_quicknet_round_returns_it_once_out(
    fake_drand: drand.FakeDrand, http: httpx.AsyncClient
) -> None:
    client = DrandClient(fake_drand.base_url, QUICKNET_CHAIN_HASH, http)
    await client.info()
    round_ = commit_round(client, now(), margin=datetime.timedelta(0))

    beacon = await wait_for_round(client, round_, now() + datetime.timedelta(seconds=15))

    assert beacon.round == round_
    assert beacon.value_hex == drand.round_document(round_)["randomness"]
    with pytest.raises(BeaconError, match="not available by"):
        await wait_for_round(client, round_ + 100, now() + datetime.timedelta(seconds=1))


# The sandbox beacon, served by the app


async def test_the_sandbox_beacon_speaks_drand_over_http(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    client = sandbox_client(live_server, http)

    info = await client.info()
    current = client.round_at(now())
    first = await client.fetch(current)
    again = await client.fetch(current)
    latest = (await http.get(f"{live_server.url}/sandbox/beacon/{info.chain_hash}/public/latest")).json()

    assert (info.period, info.beacon_id, info.scheme) == (3, "cleack-sandbox", "cleack-sandbox-ed25519")
    assert first is not None and first == again
    assert first.source == "drand:cleack-sandbox"
    assert set(latest) == {"round", "randomness", "signature"} and latest["round"] >= current
    assert latest["randomness"] == hashlib.sha256(bytes.fromhex(latest["signature"])).hexdigest()
    future = await http.get(f"{live_server.url}/sandbox/beacon/{info.chain_hash}/public/{current + 50}")
    assert future.status_code == 404
    assert await client.fetch(current + 50) is None
    unknown = await http.get(f"{live_server.url}/sandbox/beacon/{'0' * 64}/info")
    assert unknown.status_code == 404


async def test_a_draw_committed_to_a_sandbox_round_gets_it_when_it_comes(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    client = beacon_client(live_server.settings, http)
    assert client is not None
    created = now()

    round_ = commit_round(client, created)
    info = await client.info()
    beacon = await wait_for_round(client, round_, created + datetime.timedelta(seconds=30))

    assert info.time_of(round_) > created + datetime.timedelta(seconds=6)
    assert info.time_of(round_ - 1) <= created + datetime.timedelta(seconds=6)
    assert beacon.round == round_
    assert now() >= info.time_of(round_)


async def test_a_selection_mixed_with_a_beacon_round_verifies(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    client = sandbox_client(live_server, http)
    await client.info()
    beacon = await client.fetch(client.round_at(now()))
    assert beacon is not None
    entries = sort_canonically(collected_entries(25))
    builder = MerkleBuilder()
    builder.add_rows([entry.fields for entry in entries])
    draw_id, secret, root = uuid.uuid4(), new_secret(), builder.root()
    selection = select_winners(
        secret=secret,
        merkle_root=root,
        draw_id=draw_id,
        eligible=25,
        winners_count=2,
        alternates_count=1,
        beacon=beacon,
    )
    plain = select_winners(
        secret=secret, merkle_root=root, draw_id=draw_id, eligible=25, winners_count=2, alternates_count=1
    )
    moment = now()
    certificate = build_certificate(
        draw=DrawFacts(draw_id, "Beacon draw", ["x"], [{"platform": "x", "post_id": "1"}], moment, moment, moment),
        config={"winners_count": 2, "alternates_count": 1},
        participants=25,
        excluded={},
        eligible=25,
        merkle_root=root,
        secret=secret,
        winners=[Pick(index, entries[index]) for index in selection.winner_indices],
        alternates=[Pick(index, entries[index]) for index in selection.alternate_indices],
        signing_key=generate_signing_key(),
        issued_at=moment,
        beacon=beacon,
    )

    assert certificate["beacon"] == {
        "source": "drand:cleack-sandbox",
        "round": beacon.round,
        "value_hex": beacon.value_hex,
    }
    assert selection.seed != plain.seed
    assert verify_certificate(certificate, entries=entries).ok
    forged = {**certificate, "beacon": {**certificate["beacon"], "value_hex": "0" * 64}}
    assert not verify_certificate(forged, entries=entries).ok


async def test_the_beacon_follows_the_configuration(http: httpx.AsyncClient) -> None:
    development = Settings(environment="development", secret_key="d" * 40, base_url="http://127.0.0.1:8000")
    sandbox = beacon_client(development, http)
    production = Settings(environment="production", secret_key="p" * 40, sandbox=False)
    quicknet = beacon_client(production.with_overrides(beacon_url="https://api.drand.sh"), http)

    assert sandbox is not None and sandbox.base_url == "http://127.0.0.1:8000/sandbox/beacon"
    assert beacon_client(production, http) is None
    assert quicknet is not None and (quicknet.base_url, quicknet.chain_hash) == (
        "https://api.drand.sh",
        QUICKNET_CHAIN_HASH,
    )
    # The chain's timing is known in advance: a draw can fix its round without asking the relay.
    assert quicknet.round_at(datetime.datetime.fromtimestamp(1692803367, UTC)) == 1


async def test_the_sandbox_beacon_does_not_exist_when_the_sandbox_is_off(live_server: LiveServer) -> None:
    settings = live_server.settings.with_overrides(sandbox=False)
    chain_hash = SandboxBeacon(settings).chain_info.chain_hash
    with serve(ServedApp(create_app(settings))) as url:  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=url) as client:
            info = await client.get(f"/sandbox/beacon/{chain_hash}/info")
            latest = await client.get(f"/sandbox/beacon/{chain_hash}/public/latest")
    assert (info.status_code, latest.status_code) == (404, 404)


async def test_the_documented_beacon_vectors_hold(http: httpx.AsyncClient) -> None:
    document = await asyncio.to_thread(SPECIFICATION.read_text, encoding="utf-8")
    sandbox = SandboxBeacon(Settings(environment="test", secret_key="cleack sandbox beacon test vector"))
    round_1000 = sandbox.round_document(1000)
    quicknet = DrandClient("https://api.drand.sh", QUICKNET_CHAIN_HASH, http, QUICKNET)

    assert round_1000 is not None
    for value in (sandbox.chain_info.public_key, sandbox.chain_info.chain_hash, *round_1000.values()):
        assert str(value) in document
    assert drand.ROUND_1000["signature"] in document and drand.ROUND_1000["randomness"] in document
    created = datetime.datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
    assert commit_round(quicknet, created) == 34189015
    assert "commits to round 34189015" in document
