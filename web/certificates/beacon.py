"""Public randomness beacons: drand's HTTP API, every round checked with BLS12-381, and a sandbox beacon.

A draw's seal names a round still to come (`seal_round`); once a witness has cosigned the seal, the engine
waits for that round (`wait_for_round`), whose randomness nobody, the server included, could know before.

drand's wire format (https://drand.love/developer/http-api/):
- GET {base}/{chain_hash}/info -> {"public_key", "period", "genesis_time", "hash", "groupHash", "schemeID",
  "metadata": {"beaconID"}}
- GET {base}/{chain_hash}/public/{round} -> {"round", "randomness", "signature"}, 404 (or 425) while the round
  is still to come; `public/latest` the newest one.

The client checks each round it fetches: its number, randomness = SHA-256(signature), and the BLS signature
under the chain's public key; for a chain known in advance (quicknet) that key is the pinned one, whatever a
relay's /info claims. Without BEACON_URL, production uses drand's relay and quicknet; elsewhere the app serves
a sandbox beacon under /sandbox/beacon: the same scheme, with a BLS key derived from SECRET_KEY.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import re
from typing import Any, Protocol

import httpx

from web.fairness.drand import (
    BLS_UNCHAINED_G1,
    KNOWN_CHAINS,
    QUICKNET,
    SUPPORTED_SCHEMES,
    BeaconRound,
    ChainInfo,
    bls_public_key,
    bls_secret_from_seed,
    randomness_of,
    sign_round,
    verify_round_signature,
)
from web.settings import Settings

SANDBOX_BEACON_ID = "cleack-sandbox"
SANDBOX_GENESIS = int(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC).timestamp())
# How often wait_for_round asks once the round is due.
POLL_SECONDS = 0.5
_LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})+")
_CHAIN_HASH = re.compile(r"[0-9a-f]{64}")


class BeaconError(Exception):
    """The beacon cannot be reached, or answered something that does not check out."""


class BeaconUnavailable(BeaconError):
    """The beacon could not be reached, or failed on its side: asking again later may work."""


class BeaconClient(Protocol):
    async def info(self) -> ChainInfo: ...

    async def fetch(self, round_: int) -> BeaconRound | None:
        """The round, checked, or None while it is still to come."""
        ...


class SandboxBeacon:
    """The beacon the app serves under /sandbox/beacon outside production: drand's format, computed locally.

    Its BLS key is derived from SECRET_KEY: seed = HMAC-SHA256(key = SECRET_KEY, msg = "cleack-sandbox-beacon"),
    secret = bls_secret_from_seed(seed). Chain hash = SHA-256(public key (96 bytes) || uint64_be(genesis) ||
    uint64_be(period)); its rounds exist only once their time has come.
    """

    def __init__(self, settings: Settings) -> None:
        seed = hmac.new(settings.secret_key.encode(), b"cleack-sandbox-beacon", hashlib.sha256).digest()
        self._secret = bls_secret_from_seed(seed)
        public_key = bls_public_key(self._secret)
        period = settings.sandbox_beacon_period
        self.chain_info = ChainInfo(
            chain_hash=hashlib.sha256(
                public_key + SANDBOX_GENESIS.to_bytes(8, "big") + period.to_bytes(8, "big")
            ).hexdigest(),
            public_key=public_key.hex(),
            period=period,
            genesis_time=SANDBOX_GENESIS,
            scheme=BLS_UNCHAINED_G1,
            beacon_id=SANDBOX_BEACON_ID,
            group_hash=hashlib.sha256(public_key).hexdigest(),
        )

    def published(self, round_: int, now: datetime.datetime | None = None) -> BeaconRound | None:
        """Round `round_`, or None when it is not out yet (or before the first)."""
        newest = self.chain_info.round_at(now or datetime.datetime.now(datetime.UTC))
        if not 1 <= round_ <= newest:
            return None
        signature = sign_round(self._secret, round_)
        return BeaconRound(round_, signature.hex(), randomness_of(signature).hex())


class DrandClient:
    """drand's HTTP API: one chain on one relay. `info` may be given for a chain known in advance."""

    def __init__(self, base_url: str, chain_hash: str, http: httpx.AsyncClient, info: ChainInfo | None = None) -> None:
        if not _CHAIN_HASH.fullmatch(chain_hash):
            raise BeaconError("a drand chain hash is 64 lowercase hexadecimal digits")
        if info is not None and info.chain_hash != chain_hash:
            raise BeaconError("the chain info given is another chain's")
        pinned = KNOWN_CHAINS.get(chain_hash)
        if pinned is not None and info is not None and info != pinned:
            raise BeaconError(f"{pinned.source}'s parameters are pinned; the chain info given differs")
        self.base_url = base_url.rstrip("/")
        self.chain_hash = chain_hash
        self.http = http
        self._info = pinned or info

    async def _get(self, path: str) -> httpx.Response:
        try:
            return await self.http.get(
                f"{self.base_url}/{self.chain_hash}{path}", headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise BeaconUnavailable(
                f"the beacon at {self.base_url} could not be reached: {type(exc).__name__}"
            ) from exc

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        if response.status_code == 429 or response.status_code >= 500:
            raise BeaconUnavailable(f"the beacon answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise BeaconError(f"the beacon answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise BeaconError("the beacon sent an unreadable answer")
        return body

    async def info(self) -> ChainInfo:
        """The chain's parameters: pinned for a known chain, else asked of the relay once."""
        if self._info is not None:
            return self._info
        try:
            info = ChainInfo.from_json(self._json(await self._get("/info")))
        except ValueError as exc:
            raise BeaconError(f"the beacon's chain info is not usable: {exc}") from exc
        if info.chain_hash != self.chain_hash:
            raise BeaconError("the beacon serves another chain than the one configured")
        if info.scheme not in SUPPORTED_SCHEMES:
            raise BeaconError(f"the chain's scheme {info.scheme!r} is not one Cleack verifies ({BLS_UNCHAINED_G1})")
        self._info = info
        return info

    async def fetch(self, round_: int) -> BeaconRound | None:
        """Round `round_` once checked (number, randomness, BLS signature), or None while it is to come."""
        info = await self.info()
        response = await self._get(f"/public/{round_}")
        if response.status_code in (404, 425):
            return None
        body = self._json(response)
        number, randomness, signature = body.get("round"), body.get("randomness"), body.get("signature")
        if type(number) is not int or number != round_:
            raise BeaconError(f"the beacon answered round {number!r} when asked for {round_}")
        if not isinstance(signature, str) or not _LOWER_HEX.fullmatch(signature):
            raise BeaconError(f"round {round_}: the signature is not lowercase hexadecimal")
        signature_bytes = bytes.fromhex(signature)
        if randomness != randomness_of(signature_bytes).hex():
            raise BeaconError(f"round {round_}: the randomness is not SHA-256 of the signature")
        if not verify_round_signature(info, round_, signature_bytes):
            raise BeaconError(f"round {round_}: the BLS signature does not verify under {info.source}'s public key")
        return BeaconRound(round_, signature, randomness)


def configured_chain(settings: Settings) -> ChainInfo:
    """The chain draws use: the sandbox beacon's without BEACON_URL where the sandbox runs, else a known chain
    (BEACON_CHAIN_HASH, quicknet by default). Its parameters are known without asking any relay."""
    sandbox = SandboxBeacon(settings).chain_info if settings.sandbox_enabled else None
    if sandbox is not None and not settings.beacon_url:
        if settings.beacon_chain_hash not in (None, sandbox.chain_hash):
            raise BeaconError("BEACON_CHAIN_HASH names another chain than the sandbox beacon's; set BEACON_URL too")
        return sandbox
    chain_hash = settings.beacon_chain_hash or QUICKNET.chain_hash
    if chain_hash in KNOWN_CHAINS:
        return KNOWN_CHAINS[chain_hash]
    if sandbox is not None and chain_hash == sandbox.chain_hash:
        return sandbox
    raise BeaconError(
        f"BEACON_CHAIN_HASH {chain_hash[:16]}… is not a chain Cleack knows: use quicknet ({QUICKNET.chain_hash})"
    )


def beacon_client(settings: Settings, http: httpx.AsyncClient) -> DrandClient:
    """The configured beacon: BEACON_URL, else the app's sandbox beacon where it runs, else drand and quicknet."""
    chain = configured_chain(settings)
    return DrandClient(settings.beacon_relay, chain.chain_hash, http, chain)


def seal_round(info: ChainInfo, at: datetime.datetime, margin: datetime.timedelta) -> int:
    """The round a draw sealed at `at` waits for: the first one published strictly after `at` + margin."""
    return info.round_at(at + margin) + 1


async def wait_for_round(client: BeaconClient, round_: int, deadline: datetime.datetime) -> BeaconRound:
    """The round, checked, once it is out; BeaconError if it is not by `deadline`, or does not check out.

    An unreachable or failing relay is asked again until the deadline: drand keeps every round, so a relay that
    comes back gives the same value. A round that does not verify fails at once.
    """
    info = await client.info()
    problem = ""
    while True:
        now = datetime.datetime.now(datetime.UTC)
        due = info.time_of(round_)
        if now >= due:
            try:
                found = await client.fetch(round_)
            except BeaconUnavailable as exc:
                found, problem = None, f" ({exc})"
            if found is not None:
                return found
        if now >= deadline:
            raise BeaconError(f"round {round_} of {info.source} was not available by {deadline.isoformat()}{problem}")
        pause = max((due - now).total_seconds(), POLL_SECONDS)
        await asyncio.sleep(min(pause, max((deadline - now).total_seconds(), 0.01)))
