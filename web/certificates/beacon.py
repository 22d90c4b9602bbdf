"""Public randomness beacons: drand's HTTP API, and a sandbox beacon that speaks it.

A draw fixes a future round when it is created (`commit_round`), and the engine mixes that round's
randomness into the seed once it is out (`wait_for_round`). Nobody, the server included, can know the value
when the commitment is published.

drand's wire format (https://drand.love/developer/http-api/):
- GET {base}/{chain_hash}/info → {"public_key", "period", "genesis_time", "hash", "groupHash", "schemeID",
  "metadata": {"beaconID"}}
- GET {base}/{chain_hash}/public/{round} → {"round", "randomness", "signature"[, "previous_signature"]},
  404 (or 425) while the round is still to come; `public/latest` the newest one.
Round r is out at genesis_time + (r - 1) * period, and randomness = SHA-256(signature).

The sandbox beacon signs SHA-256(uint64_be(round)) with an Ed25519 key derived from SECRET_KEY (scheme
"cleack-sandbox-ed25519"), so its rounds are fixed and checkable, and only exist once their time has come.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from web.fairness.sampling import Beacon
from web.settings import Settings

QUICKNET_URL = "https://api.drand.sh"
QUICKNET_CHAIN_HASH = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"
SANDBOX_SCHEME = "cleack-sandbox-ed25519"
SANDBOX_BEACON_ID = "cleack-sandbox"
SANDBOX_PERIOD = 3
SANDBOX_GENESIS = int(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC).timestamp())
# A round fixed at creation must still be to come even if this server's clock is a little fast.
COMMIT_MARGIN = datetime.timedelta(seconds=6)
# How often wait_for_round asks once the round is due.
POLL_SECONDS = 0.5
_HEX = re.compile(r"[0-9a-f]+")
_CHAIN_HASH = re.compile(r"[0-9a-f]{64}")


class BeaconError(Exception):
    """The beacon cannot be reached, or answered something that does not check out."""


@dataclass(frozen=True)
class BeaconInfo:
    chain_hash: str
    period: int
    genesis_time: int
    public_key: str
    group_hash: str
    scheme: str
    beacon_id: str

    def round_at(self, moment: datetime.datetime) -> int:
        """The newest round out at `moment` (0 before genesis), as drand numbers them."""
        elapsed = moment.timestamp() - self.genesis_time
        return 0 if elapsed < 0 else math.floor(elapsed / self.period) + 1

    def time_of(self, round_: int) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.genesis_time + (round_ - 1) * self.period, datetime.UTC)

    @property
    def source(self) -> str:
        """How a certificate names this beacon: `drand:quicknet`, `drand:cleack-sandbox`."""
        return f"drand:{self.beacon_id or self.chain_hash[:16]}"

    def as_json(self) -> dict[str, Any]:
        return {
            "public_key": self.public_key,
            "period": self.period,
            "genesis_time": self.genesis_time,
            "hash": self.chain_hash,
            "groupHash": self.group_hash,
            "schemeID": self.scheme,
            "metadata": {"beaconID": self.beacon_id},
        }


QUICKNET = BeaconInfo(
    chain_hash=QUICKNET_CHAIN_HASH,
    period=3,
    genesis_time=1692803367,
    public_key=(
        "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c"
        "921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a"
    ),
    group_hash="f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e",
    scheme="bls-unchained-g1-rfc9380",
    beacon_id="quicknet",
)


class BeaconClient(Protocol):
    async def info(self) -> BeaconInfo: ...

    def round_at(self, moment: datetime.datetime) -> int: ...

    async def fetch(self, round_: int) -> Beacon | None:
        """The round's value, or None while it is still to come."""
        ...


def _round_message(round_: int) -> bytes:
    return hashlib.sha256(round_.to_bytes(8, "big")).digest()


def _public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


class SandboxBeacon:
    """The beacon the app serves under /sandbox/beacon outside production: drand's format, computed locally."""

    def __init__(self, settings: Settings) -> None:
        seed = hmac.new(settings.secret_key.encode(), b"cleack-sandbox-beacon", hashlib.sha256).digest()
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        public_key = _public_hex(self._key)
        chain = hashlib.sha256(
            bytes.fromhex(public_key) + SANDBOX_GENESIS.to_bytes(8, "big") + SANDBOX_PERIOD.to_bytes(8, "big")
        ).hexdigest()
        self._info = BeaconInfo(
            chain_hash=chain,
            period=SANDBOX_PERIOD,
            genesis_time=SANDBOX_GENESIS,
            public_key=public_key,
            group_hash=hashlib.sha256(bytes.fromhex(public_key)).hexdigest(),
            scheme=SANDBOX_SCHEME,
            beacon_id=SANDBOX_BEACON_ID,
        )

    @property
    def chain_info(self) -> BeaconInfo:
        return self._info

    async def info(self) -> BeaconInfo:
        return self._info

    def round_at(self, moment: datetime.datetime) -> int:
        return self._info.round_at(moment)

    def round_document(self, round_: int, now: datetime.datetime | None = None) -> dict[str, Any] | None:
        """Round `round_` in drand's format, or None when it is not out yet (or before the first)."""
        if round_ < 1 or round_ > self.round_at(now or datetime.datetime.now(datetime.UTC)):
            return None
        signature = self._key.sign(_round_message(round_))
        return {"round": round_, "randomness": hashlib.sha256(signature).hexdigest(), "signature": signature.hex()}

    async def fetch(self, round_: int) -> Beacon | None:
        document = self.round_document(round_)
        if document is None:
            return None
        return Beacon(self._info.source, round_, document["randomness"])


class DrandClient:
    """drand's HTTP API: one chain on one relay. `info` may be given for chains known in advance."""

    def __init__(self, base_url: str, chain_hash: str, http: httpx.AsyncClient, info: BeaconInfo | None = None) -> None:
        if not _CHAIN_HASH.fullmatch(chain_hash):
            raise BeaconError("a drand chain hash is 64 lowercase hexadecimal digits")
        self.base_url = base_url.rstrip("/")
        self.chain_hash = chain_hash
        self.http = http
        self._info = info if info is not None and info.chain_hash == chain_hash else None

    async def _get(self, path: str) -> httpx.Response:
        try:
            return await self.http.get(
                f"{self.base_url}/{self.chain_hash}{path}", headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise BeaconError(f"the beacon at {self.base_url} could not be reached: {type(exc).__name__}") from exc

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise BeaconError(f"the beacon answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise BeaconError("the beacon sent an unreadable answer")
        return body

    async def info(self) -> BeaconInfo:
        if self._info is not None:
            return self._info
        body = self._json(await self._get("/info"))
        metadata = body.get("metadata")
        if not isinstance(metadata, dict):
            metadata = {}
        try:
            info = BeaconInfo(
                chain_hash=str(body["hash"]),
                period=int(body["period"]),
                genesis_time=int(body["genesis_time"]),
                public_key=str(body["public_key"]),
                group_hash=str(body.get("groupHash") or ""),
                scheme=str(body.get("schemeID") or ""),
                beacon_id=str(metadata.get("beaconID") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BeaconError(f"the beacon's chain info is incomplete: {exc}") from exc
        if info.chain_hash != self.chain_hash:
            raise BeaconError("the beacon serves another chain than the one configured")
        if info.period < 1 or not _HEX.fullmatch(info.public_key):
            raise BeaconError("the beacon's chain info is not usable")
        self._info = info
        return info

    def round_at(self, moment: datetime.datetime) -> int:
        if self._info is None:
            raise BeaconError("the chain info is not loaded yet: await info() first")
        return self._info.round_at(moment)

    async def fetch(self, round_: int) -> Beacon | None:
        info = await self.info()
        response = await self._get(f"/public/{round_}")
        if response.status_code in (404, 425):
            return None
        body = self._json(response)
        randomness, signature = body.get("randomness"), body.get("signature")
        if body.get("round") != round_:
            raise BeaconError(f"the beacon answered round {body.get('round')!r} when asked for {round_}")
        if not isinstance(signature, str) or not _HEX.fullmatch(signature) or len(signature) % 2:
            raise BeaconError(f"round {round_}: the signature is not hexadecimal")
        if randomness != hashlib.sha256(bytes.fromhex(signature)).hexdigest():
            raise BeaconError(f"round {round_}: the randomness is not SHA-256 of the signature")
        if info.scheme == SANDBOX_SCHEME:
            try:
                Ed25519PublicKey.from_public_bytes(bytes.fromhex(info.public_key)).verify(
                    bytes.fromhex(signature), _round_message(round_)
                )
            except (InvalidSignature, ValueError) as exc:
                raise BeaconError(f"round {round_}: the signature does not verify") from exc
        return Beacon(info.source, round_, randomness)


def beacon_client(settings: Settings, http: httpx.AsyncClient) -> DrandClient | None:
    """The configured beacon: BEACON_URL, else the sandbox beacon outside production; None for none."""
    if settings.beacon_url:
        chain_hash = settings.beacon_chain_hash or QUICKNET_CHAIN_HASH
        return DrandClient(settings.beacon_url, chain_hash, http, QUICKNET)
    if not settings.sandbox_enabled:
        return None
    sandbox = SandboxBeacon(settings).chain_info
    if settings.beacon_chain_hash and settings.beacon_chain_hash != sandbox.chain_hash:
        raise BeaconError("BEACON_CHAIN_HASH names another chain than the sandbox beacon's; set BEACON_URL too")
    return DrandClient(f"{settings.base_url}/sandbox/beacon", sandbox.chain_hash, http, sandbox)


def commit_round(client: BeaconClient, at: datetime.datetime, margin: datetime.timedelta = COMMIT_MARGIN) -> int:
    """The round a draw created at `at` commits to: the first one out strictly after `at` + margin."""
    return client.round_at(at + margin) + 1


async def wait_for_round(client: BeaconClient, round_: int, deadline: datetime.datetime) -> Beacon:
    """The round's value once it is out; BeaconError if it is not by `deadline` (or the beacon fails)."""
    info = await client.info()
    while True:
        now = datetime.datetime.now(datetime.UTC)
        due = info.time_of(round_)
        if now >= due:
            found = await client.fetch(round_)
            if found is not None:
                return found
        if now >= deadline:
            raise BeaconError(f"round {round_} of {info.source} was not available by {deadline.isoformat()}")
        pause = max((due - now).total_seconds(), POLL_SECONDS)
        await asyncio.sleep(min(pause, max((deadline - now).total_seconds(), 0.01)))
