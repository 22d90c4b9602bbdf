"""A fake drand relay in drand's HTTP wire format, serving two chains.

- GET /{chain_hash}/info            the chain's parameters, as api.drand.sh serves them
- GET /{chain_hash}/public/{round}  {"round", "randomness", "signature"}; 404 while the round is to come
- GET /{chain_hash}/public/latest   the newest round

quicknet, with its real parameters: round 1000 is drand's real round (its BLS signature and randomness as
published). The fake cannot sign quicknet's other rounds, so it serves them signed with an impostor BLS key, as
a lying relay would: a client must refuse them. TEST_CHAIN is a chain of the fake's own (period 1 s) whose every
round verifies under the key its /info gives.

Failure switches on /info: `impostor` (claims the impostor's public key), `chained_scheme` (claims drand's older
chained scheme). On /public/: `tampered` (randomness not from the signature), `wrong_round`, `server_error`,
`flipped_bit` (one bit of the signature flipped, randomness recomputed), `other_round` (the previous round's
valid signature under this round's number).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from tests.fakes.server import Emulator, Reply, Request, json_reply, text_reply
from web.fairness.drand import (
    BLS_UNCHAINED_G1,
    QUICKNET,
    BeaconRound,
    ChainInfo,
    bls_public_key,
    bls_secret_from_seed,
    randomness_of,
    sign_round,
)

CHAIN_HASH = QUICKNET.chain_hash
ROUND_1000: dict[str, Any] = {
    "round": 1000,
    "randomness": "fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd",
    "signature": "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39",
}
IMPOSTOR_SECRET = bls_secret_from_seed(hashlib.sha256(b"a relay's own quicknet key").digest())
IMPOSTOR_PUBLIC_KEY = bls_public_key(IMPOSTOR_SECRET).hex()
TEST_SECRET = bls_secret_from_seed(hashlib.sha256(b"cleack fake drand chain").digest())
_TEST_KEY = bls_public_key(TEST_SECRET)
TEST_CHAIN = ChainInfo(
    chain_hash=hashlib.sha256(b"cleack fake drand chain" + _TEST_KEY).hexdigest(),
    public_key=_TEST_KEY.hex(),
    period=1,
    genesis_time=1767225600,
    scheme=BLS_UNCHAINED_G1,
    beacon_id="fake-drand",
    group_hash=hashlib.sha256(_TEST_KEY).hexdigest(),
)
CHAINS = {QUICKNET.chain_hash: QUICKNET, TEST_CHAIN.chain_hash: TEST_CHAIN}


def current_round(chain: ChainInfo = QUICKNET, now: float | None = None) -> int:
    return int(((now if now is not None else time.time()) - chain.genesis_time) // chain.period) + 1


def signed_round(chain: ChainInfo, number: int) -> BeaconRound:
    """The round as the fake serves it: quicknet's real round 1000, an impostor's signature for its others."""
    if chain == QUICKNET and number == ROUND_1000["round"]:
        return BeaconRound(number, ROUND_1000["signature"], ROUND_1000["randomness"])
    signature = sign_round(IMPOSTOR_SECRET if chain == QUICKNET else TEST_SECRET, number)
    return BeaconRound(number, signature.hex(), randomness_of(signature).hex())


def round_document(number: int, chain: ChainInfo = QUICKNET) -> dict[str, Any]:
    return signed_round(chain, number).as_json()


class FakeDrand(Emulator):
    def __init__(self) -> None:
        super().__init__()
        chains = "|".join(CHAINS)
        self.route("GET", f"/(?P<chain_hash>{chains})/info", self.info)
        self.route("GET", f"/(?P<chain_hash>{chains})/public/(?P<which>latest|[0-9]+)", self.public)

    def info(self, request: Request, chain_hash: str) -> Reply:
        return json_reply(CHAINS[chain_hash].as_json(), headers={"cache-control": "public, max-age=604800"})

    def public(self, request: Request, chain_hash: str, which: str) -> Reply:
        chain = CHAINS[chain_hash]
        newest = current_round(chain)
        number = newest if which == "latest" else int(which)
        if number < 1 or number > newest:
            return text_reply("Requested future beacon", 404, "text/plain")
        return json_reply(round_document(number, chain))

    def failure_reply(self, kind: str, request: Request) -> Reply:
        chain = CHAINS.get(request.path.split("/")[1], QUICKNET)
        if kind == "impostor":
            return json_reply({**chain.as_json(), "public_key": IMPOSTOR_PUBLIC_KEY})
        if kind == "chained_scheme":
            return json_reply({**chain.as_json(), "schemeID": "pedersen-bls-chained"})
        last = request.path.rsplit("/", 1)[-1]
        number = int(last) if last.isdigit() else current_round(chain)
        document = round_document(number, chain)
        if kind == "tampered":
            return json_reply({**document, "randomness": hashlib.sha256(b"something else").hexdigest()})
        if kind == "wrong_round":
            return json_reply(round_document(number - 1, chain))
        if kind == "flipped_bit":
            signature = bytearray.fromhex(document["signature"])
            signature[-1] ^= 0x01
            return json_reply(
                {**document, "signature": signature.hex(), "randomness": randomness_of(bytes(signature)).hex()}
            )
        if kind == "other_round":
            return json_reply({**round_document(number - 1, chain), "round": number})
        return text_reply("internal error", 500, "text/plain")
