"""Public randomness: the drand client against drand's wire format, and the sandbox beacon the app serves."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
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
    SANDBOX_GENESIS,
    BeaconError,
    DrandClient,
    SandboxBeacon,
    beacon_client,
    configured_chain,
    seal_round,
    wait_for_round,
)
from web.fairness import (
    Beacon,
    DrawFacts,
    MerkleBuilder,
    Pick,
    build_certificate,
    generate_signing_key,
    key_record,
    key_set,
    new_secret,
    parse_key_set,
    select_winners,
    sort_canonically,
    verify_certificate,
)
from web.fairness.drand import (
    QUICKNET,
    BeaconRound,
    ChainInfo,
    bls_public_key,
    bls_secret_from_seed,
    randomness_of,
    verify_round_signature,
)
from web.settings import ConfigurationError, Settings, load_settings

UTC = datetime.UTC
SPECIFICATION = Path(__file__).resolve().parents[2] / "docs" / "fairness.md"
BEACON_VARIABLES = ("BEACON_URL", "BEACON_CHAIN_HASH", "SANDBOX_BEACON_PERIOD", "BEACON_MARGIN_SECONDS")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def fake_drand() -> Iterator[drand.FakeDrand]:
    relay = drand.FakeDrand()
    with serve(relay):
        yield relay


class ServedApp:
    """The app, wrapped so that `serve` can note where it listens."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.base_url = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Served:
    url: str
    settings: Settings


@pytest.fixture(scope="module")
def fast_sandbox(live_server: LiveServer) -> Iterator[Served]:
    """The app on a socket of its own, its sandbox beacon publishing a round every second, a 0.5 s margin."""
    settings = live_server.settings.with_overrides(sandbox_beacon_period=1, beacon_margin_seconds=0.5)
    with serve(ServedApp(create_app(settings))) as url:  # type: ignore[arg-type]
        yield Served(url, settings.with_overrides(base_url=url))


def sandbox_client(server: LiveServer, http: httpx.AsyncClient) -> DrandClient:
    """A client that learns the chain from the app over HTTP, as it would for any drand relay."""
    chain_hash = SandboxBeacon(server.settings).chain_info.chain_hash
    return DrandClient(f"{server.url}/sandbox/beacon", chain_hash, http)


def now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


# drand itself (a fake relay speaking its exact format)


async def test_the_drand_client_verifies_quicknet_round_1000_under_the_pinned_key(
    fake_drand: drand.FakeDrand, http: httpx.AsyncClient
) -> None:
    fake_drand.reset()
    client = DrandClient(fake_drand.base_url, QUICKNET.chain_hash, http)

    info = await client.info()
    found = await client.fetch(1000)

    assert info == QUICKNET
    assert fake_drand.requests_to("/info") == []
    assert found == BeaconRound(1000, drand.ROUND_1000["signature"], drand.ROUND_1000["randomness"])
    assert await client.fetch(drand.current_round() + 100) is None


async def test_rounds_that_do_not_check_out_are_refused(fake_drand: drand.FakeDrand, http: httpx.AsyncClient) -> None:
    client = DrandClient(fake_drand.base_url, drand.TEST_CHAIN.chain_hash, http)
    await client.info()
    for kind, message in (
        ("tampered", "not SHA-256 of the signature"),
        ("wrong_round", "answered round 1233 when asked for 1234"),
        ("server_error", "HTTP 500"),
        ("flipped_bit", "BLS signature does not verify under drand:fake-drand's public key"),
        ("other_round", "BLS signature does not verify"),
    ):
        fake_drand.fail(kind, path="/public/")
        with pytest.raises(BeaconError, match=message):
            await client.fetch(1234)

    found = await client.fetch(1234)

    assert found == drand.signed_round(drand.TEST_CHAIN, 1234)
    assert verify_round_signature(drand.TEST_CHAIN, 1234, bytes.fromhex(found.signature))


async def test_a_relay_claiming_another_public_key_for_quicknet_is_refused(
    fake_drand: drand.FakeDrand, http: httpx.AsyncClient
) -> None:
    fake_drand.fail("impostor", path="/info")
    claimed = (await http.get(f"{fake_drand.base_url}/{QUICKNET.chain_hash}/info")).json()
    client = DrandClient(fake_drand.base_url, QUICKNET.chain_hash, http)
    impostor = dataclasses.replace(QUICKNET, public_key=claimed["public_key"])

    assert claimed["public_key"] == drand.IMPOSTOR_PUBLIC_KEY != QUICKNET.public_key
    # The relay's rounds are good signatures, under its own key: the pinned key is what refuses them.
    assert verify_round_signature(impostor, 1234, bytes.fromhex(drand.round_document(1234)["signature"]))
    assert await client.info() == QUICKNET
    with pytest.raises(BeaconError, match="does not verify under drand:quicknet's public key"):
        await client.fetch(1234)
    with pytest.raises(BeaconError, match="pinned"):
        DrandClient(fake_drand.base_url, QUICKNET.chain_hash, http, impostor)


async def test_a_chain_whose_scheme_cleack_cannot_verify_is_refused(
    fake_drand: drand.FakeDrand, http: httpx.AsyncClient
) -> None:
    fake_drand.fail("chained_scheme", path="/info")
    with pytest.raises(BeaconError, match="'pedersen-bls-chained' is not one Cleack verifies"):
        await DrandClient(fake_drand.base_url, drand.TEST_CHAIN.chain_hash, http).info()


async def test_a_relay_serving_another_chain_is_refused(fake_drand: drand.FakeDrand, http: httpx.AsyncClient) -> None:
    other = hashlib.sha256(b"another chain").hexdigest()
    with pytest.raises(BeaconError, match="HTTP 404"):
        await DrandClient(fake_drand.base_url, other, http).info()
    with pytest.raises(BeaconError, match="could not be reached"):
        await DrandClient("http://127.0.0.1:9", other, http).info()
    with pytest.raises(BeaconError, match="another chain's"):
        DrandClient(fake_drand.base_url, other, http, QUICKNET)


async def test_waiting_for_a_round_returns_it_once_out(fake_drand: drand.FakeDrand, http: httpx.AsyncClient) -> None:
    client = DrandClient(fake_drand.base_url, drand.TEST_CHAIN.chain_hash, http)
    info = await client.info()
    round_ = seal_round(info, now(), datetime.timedelta(0))
    # A relay failing on its side is asked again; a round that does not verify fails the wait at once.
    fake_drand.fail("server_error", path="/public/", times=2)

    found = await wait_for_round(client, round_, now() + datetime.timedelta(seconds=15))

    assert now() >= info.time_of(round_)
    assert found == drand.signed_round(drand.TEST_CHAIN, round_)
    with pytest.raises(BeaconError, match="not available by"):
        await wait_for_round(client, round_ + 100, now() + datetime.timedelta(seconds=1))
    fake_drand.fail("flipped_bit", path="/public/")
    with pytest.raises(BeaconError, match="does not verify"):
        await wait_for_round(client, round_, now() + datetime.timedelta(seconds=15))
    unreachable = DrandClient("http://127.0.0.1:9", drand.TEST_CHAIN.chain_hash, http, drand.TEST_CHAIN)
    with pytest.raises(BeaconError, match=r"not available by .*could not be reached"):
        await wait_for_round(unreachable, round_, now() + datetime.timedelta(seconds=1))


def test_a_draw_takes_the_first_round_published_strictly_after_its_seal_and_margin() -> None:
    round_time = QUICKNET.time_of(5000)
    tick = datetime.timedelta(microseconds=1)
    margin = datetime.timedelta(seconds=6)

    # Sealed exactly when round 5000 comes out: that round may already be known, so the next one.
    assert seal_round(QUICKNET, round_time, datetime.timedelta(0)) == 5001
    assert seal_round(QUICKNET, round_time - tick, datetime.timedelta(0)) == 5000
    # The margin counts: 6 s before round 5000, with a 6 s margin, is round 5000's time.
    assert seal_round(QUICKNET, round_time - margin, margin) == 5001
    assert seal_round(QUICKNET, round_time - margin - tick, margin) == 5000
    assert (
        QUICKNET.seconds_of(seal_round(QUICKNET, round_time - margin - tick, margin))
        > (round_time - margin - tick + margin).timestamp()
    )
    before_genesis = datetime.datetime.fromtimestamp(QUICKNET.genesis_time - 100, UTC)
    assert seal_round(QUICKNET, before_genesis, datetime.timedelta(0)) == 1
    sandbox = SandboxBeacon(Settings(environment="test", secret_key="k" * 40, sandbox_beacon_period=1)).chain_info
    half = datetime.timedelta(seconds=0.5)
    assert seal_round(sandbox, sandbox.time_of(10), half) == 11
    assert seal_round(sandbox, sandbox.time_of(10) + half, half) == 12


# The sandbox beacon, served by the app


async def test_the_sandbox_beacon_speaks_drand_over_http(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    client = sandbox_client(live_server, http)

    info = await client.info()
    current = info.round_at(now())
    first = await client.fetch(current)
    again = await client.fetch(current)
    latest = (await http.get(f"{live_server.url}/sandbox/beacon/{info.chain_hash}/public/latest")).json()

    assert info == SandboxBeacon(live_server.settings).chain_info
    assert (info.beacon_id, info.scheme, info.source) == (
        "cleack-sandbox",
        "bls-unchained-g1-rfc9380",
        "drand:cleack-sandbox",
    )
    assert info.period == live_server.settings.sandbox_beacon_period
    assert first is not None and first == again
    assert set(latest) == {"round", "randomness", "signature"} and latest["round"] >= current
    assert verify_round_signature(info, latest["round"], bytes.fromhex(latest["signature"]))
    assert latest["randomness"] == randomness_of(bytes.fromhex(latest["signature"])).hex()
    future = await http.get(f"{live_server.url}/sandbox/beacon/{info.chain_hash}/public/{current + 50}")
    assert future.status_code == 404
    assert await client.fetch(current + 50) is None
    for path in (f"{'0' * 64}/info", f"{info.chain_hash}/public/0", f"{info.chain_hash}/public/next"):
        assert (await http.get(f"{live_server.url}/sandbox/beacon/{path}")).status_code == 404


async def test_a_sandbox_round_is_404_until_due_then_its_bls_signature_verifies(
    fast_sandbox: Served, http: httpx.AsyncClient
) -> None:
    chain_hash = SandboxBeacon(fast_sandbox.settings).chain_info.chain_hash
    base = f"{fast_sandbox.url}/sandbox/beacon/{chain_hash}"
    info = ChainInfo.from_json((await http.get(f"{base}/info")).json())
    coming = info.round_at(now()) + 1
    if info.time_of(coming) - now() < datetime.timedelta(seconds=0.3):
        coming += 1

    early = await http.get(f"{base}/public/{coming}")
    await asyncio.sleep(max((info.time_of(coming) - now()).total_seconds(), 0))
    due = await http.get(f"{base}/public/{coming}")

    assert info.period == 1
    assert (
        info.chain_hash
        == hashlib.sha256(
            bytes.fromhex(info.public_key) + SANDBOX_GENESIS.to_bytes(8, "big") + (1).to_bytes(8, "big")
        ).hexdigest()
    )
    assert early.status_code == 404
    assert due.status_code == 200
    body = due.json()
    assert body["round"] == coming
    assert verify_round_signature(info, coming, bytes.fromhex(body["signature"]))
    assert not verify_round_signature(info, coming + 1, bytes.fromhex(body["signature"]))
    assert body["randomness"] == randomness_of(bytes.fromhex(body["signature"])).hex()


async def test_a_draw_sealed_on_the_sandbox_gets_its_round_when_it_comes(
    fast_sandbox: Served, http: httpx.AsyncClient
) -> None:
    settings = fast_sandbox.settings
    client = beacon_client(settings, http)
    chain = configured_chain(settings)
    sealed_at = now()

    round_ = seal_round(chain, sealed_at, settings.beacon_margin)
    found = await wait_for_round(client, round_, sealed_at + datetime.timedelta(seconds=10))

    assert client.base_url == f"{fast_sandbox.url}/sandbox/beacon"
    assert chain.time_of(round_) > sealed_at + datetime.timedelta(seconds=0.5)
    assert chain.time_of(round_ - 1) <= sealed_at + datetime.timedelta(seconds=0.5)
    assert found.round == round_
    assert verify_round_signature(chain, round_, bytes.fromhex(found.signature))
    assert now() >= chain.time_of(round_)


async def test_a_selection_mixed_with_a_beacon_round_verifies(live_server: LiveServer, http: httpx.AsyncClient) -> None:
    client = sandbox_client(live_server, http)
    info = await client.info()
    found = await client.fetch(info.round_at(now()))
    assert found is not None
    beacon = Beacon(info.source, found.round, found.randomness)
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
    signing_key = generate_signing_key()
    keys = parse_key_set(key_set([key_record(signing_key, moment - datetime.timedelta(days=1))]))
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
        signing_key=signing_key,
        issued_at=moment,
        beacon=beacon,
    )

    assert certificate["beacon"] == {
        "source": "drand:cleack-sandbox",
        "round": found.round,
        "value_hex": found.randomness,
    }
    assert selection.seed != plain.seed
    assert verify_certificate(certificate, keys=keys, entries=entries).ok
    forged = {**certificate, "beacon": {**certificate["beacon"], "value_hex": "0" * 64}}
    assert not verify_certificate(forged, keys=keys, entries=entries).ok


async def test_the_beacon_follows_the_configuration(http: httpx.AsyncClient) -> None:
    development = Settings(environment="development", secret_key="d" * 40, base_url="http://127.0.0.1:8000")
    production = Settings(environment="production", secret_key="p" * 40, sandbox=False)
    relay = production.with_overrides(beacon_url="https://drand.example")

    sandbox = beacon_client(development, http)
    quicknet = beacon_client(production, http)

    assert (sandbox.base_url, sandbox.chain_hash) == (
        "http://127.0.0.1:8000/sandbox/beacon",
        SandboxBeacon(development).chain_info.chain_hash,
    )
    assert configured_chain(development).source == "drand:cleack-sandbox"
    # Production, with or without BEACON_URL, draws with quicknet: randomness nobody holds.
    assert (quicknet.base_url, quicknet.chain_hash) == ("https://api.drand.sh", QUICKNET.chain_hash)
    assert (beacon_client(relay, http).base_url, configured_chain(relay)) == ("https://drand.example", QUICKNET)
    assert configured_chain(development.with_overrides(sandbox=False)) == QUICKNET
    # The chain's timing is known in advance: a draw can fix its round without asking the relay.
    assert await quicknet.info() == QUICKNET
    faster = development.with_overrides(sandbox_beacon_period=1)
    assert configured_chain(faster).chain_hash != configured_chain(development).chain_hash
    with pytest.raises(BeaconError, match="not a chain Cleack knows"):
        configured_chain(relay.with_overrides(beacon_chain_hash="ab" * 32))
    with pytest.raises(BeaconError, match="set BEACON_URL too"):
        configured_chain(development.with_overrides(beacon_chain_hash=QUICKNET.chain_hash))
    pointed = development.with_overrides(beacon_url="http://127.0.0.1:8000/sandbox/beacon")
    assert configured_chain(pointed.with_overrides(beacon_chain_hash=configured_chain(development).chain_hash)) == (
        configured_chain(development)
    )


def test_the_beacon_settings_are_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in BEACON_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLEACK_ENV", "test")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)

    defaults = load_settings()
    monkeypatch.setenv("SANDBOX_BEACON_PERIOD", "1")
    monkeypatch.setenv("BEACON_MARGIN_SECONDS", "0.5")
    configured = load_settings()

    assert (defaults.sandbox_beacon_period, defaults.beacon_margin) == (3, datetime.timedelta(seconds=6))
    assert (configured.sandbox_beacon_period, configured.beacon_margin) == (1, datetime.timedelta(seconds=0.5))
    for name, value, message in (
        ("SANDBOX_BEACON_PERIOD", "0", "SANDBOX_BEACON_PERIOD"),
        ("SANDBOX_BEACON_PERIOD", "1.5", "SANDBOX_BEACON_PERIOD"),
        ("BEACON_MARGIN_SECONDS", "soon", "BEACON_MARGIN_SECONDS"),
        ("BEACON_MARGIN_SECONDS", "-1", "BEACON_MARGIN_SECONDS"),
        ("BEACON_MARGIN_SECONDS", "nan", "BEACON_MARGIN_SECONDS"),
        ("BEACON_CHAIN_HASH", "quicknet", "64 hexadecimal digits"),
        ("BEACON_URL", "api.drand.sh", "drand relay's address"),
    ):
        with monkeypatch.context() as scoped:
            scoped.setenv(name, value)
            with pytest.raises(ConfigurationError, match=message):
                load_settings()
    monkeypatch.setenv("CLEACK_ENV", "production")
    monkeypatch.setenv("BEACON_CHAIN_HASH", "ab" * 32)
    with pytest.raises(ConfigurationError, match="pins"):
        load_settings()


async def test_the_sandbox_beacon_does_not_exist_when_the_sandbox_is_off(live_server: LiveServer) -> None:
    settings = live_server.settings.with_overrides(sandbox=False)
    chain_hash = SandboxBeacon(settings).chain_info.chain_hash
    with serve(ServedApp(create_app(settings))) as url:  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=url) as client:
            info = await client.get(f"/sandbox/beacon/{chain_hash}/info")
            latest = await client.get(f"/sandbox/beacon/{chain_hash}/public/latest")
    assert (info.status_code, latest.status_code) == (404, 404)


async def test_the_documented_beacon_vectors_hold() -> None:
    document = await asyncio.to_thread(SPECIFICATION.read_text, encoding="utf-8")
    secret_key = "cleack sandbox beacon test vector"
    sandbox = SandboxBeacon(Settings(environment="test", secret_key=secret_key))
    round_1000 = sandbox.published(1000)
    seed = hmac.new(secret_key.encode(), b"cleack-sandbox-beacon", hashlib.sha256).digest()

    assert round_1000 is not None
    assert bls_public_key(bls_secret_from_seed(seed)).hex() == sandbox.chain_info.public_key
    for value in (
        f"{bls_secret_from_seed(seed):064x}",
        sandbox.chain_info.public_key,
        sandbox.chain_info.chain_hash,
        round_1000.signature,
        round_1000.randomness,
        QUICKNET.public_key,
        drand.ROUND_1000["signature"],
        drand.ROUND_1000["randomness"],
    ):
        assert value in document
    assert verify_round_signature(sandbox.chain_info, 1000, bytes.fromhex(round_1000.signature))
    sealed_at = datetime.datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
    assert seal_round(QUICKNET, sealed_at, datetime.timedelta(seconds=6)) == 34189015
    assert "waits for round 34189015" in document
