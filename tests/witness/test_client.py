"""web.witness.client, as the log calls it, against a real witness (and a broken one)."""

from __future__ import annotations

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.fakes.server import Emulator, free_port, serve, text_reply
from tests.witness.conftest import RunningWitness
from tests.witness.fake_log import Clock, FakeLog
from web.fairness.note import COSIGNATURE_V1, cosignature_time, verifier_key
from web.fairness.signing import public_key_bytes
from web.witness.client import (
    Cosigned,
    WitnessConflict,
    WitnessRefused,
    WitnessUnavailable,
    add_checkpoint,
)


async def test_a_cosignature_comes_back_verified_with_its_time(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog, clock: Clock
) -> None:
    log.append(3)

    cosigned = await add_checkpoint(http, witness.url, 0, log.record_hashes, log.checkpoint(), witness.key)

    assert cosigned == Cosigned(cosigned.line, clock.now)
    assert cosignature_time(log.text(), cosigned.line, witness.key) == clock.now
    assert cosigned.line.endswith("\n")


async def test_a_conflict_tells_the_size_the_witness_holds(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog
) -> None:
    log.append(3)
    await add_checkpoint(http, witness.url + "/", 0, log.record_hashes, log.checkpoint(), witness.key)
    log.append(2)

    with pytest.raises(WitnessConflict) as conflict:
        await add_checkpoint(http, witness.url, 1, log.record_hashes[1:], log.checkpoint(), witness.key)
    cosigned = await add_checkpoint(
        http, witness.url, conflict.value.size, log.record_hashes[conflict.value.size :], log.checkpoint(), witness.key
    )

    assert conflict.value.size == 3
    assert cosignature_time(log.text(), cosigned.line, witness.key) is not None


async def test_a_fork_is_refused_with_the_witness_reason(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog
) -> None:
    log.append(2)
    await add_checkpoint(http, witness.url, 0, log.record_hashes, log.checkpoint(), witness.key)
    forked = log.fork(at=2)

    with pytest.raises(WitnessRefused) as refused:
        await add_checkpoint(http, witness.url, 2, [], forked.checkpoint(), witness.key)

    assert refused.value.status == 422
    assert "forked" in refused.value.message


async def test_a_cosignature_by_another_key_than_the_expected_one_is_refused(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog
) -> None:
    log.append()
    expected = verifier_key(witness.key.name, COSIGNATURE_V1, public_key_bytes(Ed25519PrivateKey.generate()))

    with pytest.raises(WitnessRefused) as refused:
        await add_checkpoint(http, witness.url, 0, log.record_hashes, log.checkpoint(), expected)

    assert refused.value.status == 200
    assert "no valid cosignature" in refused.value.message


async def test_a_witness_nobody_answers_at_is_unavailable(http: httpx.AsyncClient, log: FakeLog) -> None:
    log.append()
    key = verifier_key("witness.test/w1", COSIGNATURE_V1, bytes(32))

    with pytest.raises(WitnessUnavailable):
        await add_checkpoint(http, f"http://127.0.0.1:{free_port()}", 0, log.record_hashes, log.checkpoint(), key)


async def test_a_witness_that_fails_is_unavailable_and_one_that_refuses_is_not(
    http: httpx.AsyncClient, log: FakeLog
) -> None:
    log.append()
    key = verifier_key("witness.test/w1", COSIGNATURE_V1, bytes(32))
    broken = Emulator()
    broken.route("POST", "/add-checkpoint", lambda request: text_reply("disk full\n", 503, "text/plain"))
    strict = Emulator()
    strict.route("POST", "/add-checkpoint", lambda request: text_reply("no thanks\n", 403, "text/plain"))

    with serve(broken) as url, pytest.raises(WitnessUnavailable, match="503"):
        await add_checkpoint(http, url, 0, log.record_hashes, log.checkpoint(), key)
    with serve(strict) as url, pytest.raises(WitnessRefused, match="no thanks"):
        await add_checkpoint(http, url, 0, log.record_hashes, log.checkpoint(), key)
    # What the log sends is the request of docs/fairness.md, byte for byte.
    assert broken.requests[0].body == log.body(old=0)
