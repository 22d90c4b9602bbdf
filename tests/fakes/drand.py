"""A fake drand relay serving the quicknet chain in drand's HTTP wire format.

- GET /{chain_hash}/info            the chain's parameters, as api.drand.sh serves them
- GET /{chain_hash}/public/{round}  {"round", "randomness", "signature"}; 404 while the round is to come
- GET /{chain_hash}/public/latest   the newest round

Round 1000 is quicknet's real round (its BLS signature and randomness as published); other rounds carry a
stand-in 48-byte signature, with randomness = SHA-256(signature) as drand computes it. Failure switches:
`tampered` (randomness not from the signature), `wrong_round`, `server_error`.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from tests.fakes.server import Emulator, Reply, Request, json_reply, text_reply

CHAIN_HASH = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"
GENESIS_TIME = 1692803367
PERIOD = 3
INFO = {
    "public_key": (
        "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c"
        "921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a"
    ),
    "period": PERIOD,
    "genesis_time": GENESIS_TIME,
    "hash": CHAIN_HASH,
    "groupHash": "f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e",
    "schemeID": "bls-unchained-g1-rfc9380",
    "metadata": {"beaconID": "quicknet"},
}
ROUND_1000: dict[str, Any] = {
    "round": 1000,
    "randomness": "fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd",
    "signature": "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39",
}


def current_round(now: float | None = None) -> int:
    return int(((now if now is not None else time.time()) - GENESIS_TIME) // PERIOD) + 1


def round_document(number: int) -> dict[str, Any]:
    if number == ROUND_1000["round"]:
        return dict(ROUND_1000)
    signature = (hashlib.sha256(b"quicknet stand-in %d" % number).digest() * 2)[:48]
    return {"round": number, "randomness": hashlib.sha256(signature).hexdigest(), "signature": signature.hex()}


class FakeDrand(Emulator):
    def __init__(self) -> None:
        super().__init__()
        self.route("GET", f"/{CHAIN_HASH}/info", self.info)
        self.route("GET", f"/{CHAIN_HASH}/public/(?P<which>latest|[0-9]+)", self.public)

    def info(self, request: Request) -> Reply:
        return json_reply(INFO, headers={"cache-control": "public, max-age=604800"})

    def public(self, request: Request, which: str) -> Reply:
        newest = current_round()
        number = newest if which == "latest" else int(which)
        if number < 1 or number > newest:
            return text_reply("Requested future beacon", 404, "text/plain")
        return json_reply(round_document(number))

    def failure_reply(self, kind: str, request: Request) -> Reply:
        number = int(request.path.rsplit("/", 1)[-1]) if request.path.rsplit("/", 1)[-1].isdigit() else 1
        document = round_document(number)
        if kind == "tampered":
            return json_reply({**document, "randomness": hashlib.sha256(b"something else").hexdigest()})
        if kind == "wrong_round":
            return json_reply(round_document(number - 1))
        return text_reply("internal error", 500, "text/plain")
