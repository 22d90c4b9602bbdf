"""The witness over real HTTP: what a log and a verifier see of it."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.witness.conftest import RunningWitness, StartWitness
from tests.witness.fake_log import Clock, FakeLog
from web.fairness.note import (
    cosignature_time,
    note_signature_valid,
    parse_checkpoint,
    split_note,
)
from web.witness.state import WitnessConfig


async def submit(http: httpx.AsyncClient, witness: RunningWitness, body: bytes) -> httpx.Response:
    return await http.post(f"{witness.url}/add-checkpoint", content=body)


async def latest(http: httpx.AsyncClient, witness: RunningWitness, origin: str) -> httpx.Response:
    return await http.get(f"{witness.url}/checkpoint", params={"origin": origin})


def history(witness: RunningWitness) -> list[dict[str, Any]]:
    lines = (witness.data_dir / "history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def evidence(witness: RunningWitness) -> list[dict[str, Any]]:
    folder = witness.data_dir / "forks"
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))] if folder.exists() else []


async def test_a_log_is_cosigned_step_by_step(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog, clock: Clock
) -> None:
    for size in range(1, 5):
        log.append()
        clock.now += 10
        answer = await submit(http, witness, log.body(old=size - 1))

        assert answer.status_code == 200, answer.text
        assert cosignature_time(log.text(), answer.text, witness.key) == clock.now
    log.append(3)
    answer = await submit(http, witness, log.body(old=4))

    assert answer.status_code == 200, answer.text
    assert cosignature_time(log.text(), answer.text, witness.key) == clock.now
    assert [entry["size"] for entry in history(witness)] == [1, 2, 3, 4, 7]


async def test_the_latest_cosigned_checkpoint_carries_the_logs_and_the_witness_signatures(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog, clock: Clock
) -> None:
    log.append(3)
    assert (await submit(http, witness, log.body(old=0))).status_code == 200

    answer = await latest(http, witness, log.origin)
    text, lines = split_note(answer.text)

    assert answer.status_code == 200
    assert text == log.text()
    assert parse_checkpoint(text).size == 3
    assert len(lines) == 2
    assert note_signature_valid(text, lines[0], log.verifier_key)
    assert cosignature_time(text, lines[1], witness.key) == clock.now


async def test_the_key_is_served_as_a_verifier_key(http: httpx.AsyncClient, witness: RunningWitness) -> None:
    answer = await http.get(f"{witness.url}/key")

    assert answer.status_code == 200
    assert answer.text == witness.key.text + "\n"
    assert witness.key.name == "witness.test/w1"
    assert witness.key.algorithm == 0x04


async def test_a_log_behind_the_witness_learns_its_size_and_goes_on_from_there(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog
) -> None:
    log.append(3)
    assert (await submit(http, witness, log.body(old=0))).status_code == 200
    log.append(2)

    conflict = await submit(http, witness, log.body(old=0))
    retried = await submit(http, witness, log.body(old=3))

    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "text/x.tlog.size"
    assert conflict.text == "3\n"
    assert retried.status_code == 200
    assert cosignature_time(log.text(5), retried.text, witness.key) is not None


async def test_a_new_log_starts_at_size_zero(http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog) -> None:
    log.append(2)

    answer = await submit(http, witness, log.body(old=1))

    assert (answer.status_code, answer.text) == (409, "0\n")
    assert (await submit(http, witness, log.body(old=0, size=0))).status_code == 200


async def test_a_forked_log_is_refused_and_its_evidence_kept(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog
) -> None:
    log.append(3)
    assert (await submit(http, witness, log.body(old=0))).status_code == 200
    log.append()
    forked = log.fork(at=3)

    answer = await submit(http, witness, forked.body(old=3))

    assert forked.head(2) == log.head(2) and forked.head(3) != log.head(3)
    assert answer.status_code == 422
    assert "forked" in answer.text
    [kept] = evidence(witness)
    assert kept["submitted"] == forked.checkpoint(4)
    assert kept["held"] == {
        "origin": log.origin,
        "size": 3,
        "head": log.head(3).hex(),
        "timestamp": history(witness)[0]["timestamp"],
        "checkpoint": history(witness)[0]["checkpoint"],
        "cosignature": history(witness)[0]["cosignature"],
    }
    still = split_note((await latest(http, witness, log.origin)).text)[0]
    assert parse_checkpoint(still).head == log.head(3)
    assert (await submit(http, witness, log.body(old=3))).status_code == 200


async def test_another_head_at_the_cosigned_size_is_refused_as_a_fork(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog
) -> None:
    log.append(3)
    assert (await submit(http, witness, log.body(old=0))).status_code == 200
    forked = log.fork(at=2)

    answer = await submit(http, witness, forked.body(old=3))

    assert answer.status_code == 422
    assert [kept["submitted"] for kept in evidence(witness)] == [forked.checkpoint(3)]


async def test_a_rewritten_shorter_history_is_refused(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog
) -> None:
    log.append(5)
    assert (await submit(http, witness, log.body(old=0))).status_code == 200
    body = f"old 5\n\n{log.checkpoint(3)}".encode()

    answer = await submit(http, witness, body)

    assert answer.status_code == 422
    assert "rewritten" in answer.text
    assert [kept["submitted"] for kept in evidence(witness)] == [log.checkpoint(3)]
    assert parse_checkpoint(split_note((await latest(http, witness, log.origin)).text)[0]).size == 5


async def test_record_hashes_that_do_not_reach_the_checkpoint_are_refused(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog
) -> None:
    log.append(3)
    too_few = log.body(old=0).replace(base64.b64encode(log.record_hashes[2]) + b"\n", b"")

    answer = await submit(http, witness, too_few)

    assert answer.status_code == 422
    assert (await latest(http, witness, log.origin)).status_code == 404


async def test_a_checkpoint_is_cosigned_again_with_a_later_time(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog, clock: Clock
) -> None:
    log.append(2)
    first = await submit(http, witness, log.body(old=0))
    clock.now += 60
    again = await submit(http, witness, log.body(old=2))

    assert cosignature_time(log.text(), first.text, witness.key) == clock.now - 60
    assert cosignature_time(log.text(), again.text, witness.key) == clock.now
    assert split_note((await latest(http, witness, log.origin)).text)[1][1] == again.text


async def test_a_clock_gone_back_never_dates_a_cosignature_before_the_previous_one(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog, clock: Clock
) -> None:
    log.append()
    first = await submit(http, witness, log.body(old=0))
    clock.now -= 3600
    log.append()
    second = await submit(http, witness, log.body(old=1))

    assert cosignature_time(log.text(), second.text, witness.key) == cosignature_time(
        log.text(1), first.text, witness.key
    )


async def test_a_checkpoint_signed_by_an_unknown_key_is_forbidden(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog
) -> None:
    impostor = FakeLog(log.origin).append(2)

    answer = await submit(http, witness, impostor.body(old=0))

    assert answer.status_code == 403
    assert (await latest(http, witness, log.origin)).status_code == 404


async def test_a_checkpoint_altered_after_signing_is_forbidden(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog
) -> None:
    log.append(2)
    text, lines = split_note(log.checkpoint())
    # The signature line of the log's key, over a size the log did not sign.
    altered = "old 0\n\n" + text.replace("\n2\n", "\n3\n") + "\n" + lines[0]

    answer = await submit(http, witness, altered.encode())

    assert answer.status_code == 403


async def test_a_log_may_sign_with_any_of_its_configured_keys(
    http: httpx.AsyncClient, start_witness: StartWitness, witness_config: WitnessConfig, log: FakeLog
) -> None:
    rotated = FakeLog(log.origin)
    config = WitnessConfig(witness_config.data_dir, witness_config.name, [log.verifier_key, rotated.verifier_key])
    with start_witness(config) as witness:
        log.append(2)
        rotated.record_hashes = list(log.record_hashes)

        assert (await submit(http, witness, log.body(old=0))).status_code == 200
        assert (await submit(http, witness, rotated.body(old=2))).status_code == 200


async def test_an_unknown_origin_is_not_found(http: httpx.AsyncClient, witness: RunningWitness) -> None:
    other = FakeLog("other.test/log").append()

    answer = await submit(http, witness, other.body(old=0))

    assert answer.status_code == 404
    assert "other.test/log" in answer.text
    assert (await latest(http, witness, other.origin)).status_code == 404


def _note(log: FakeLog) -> str:
    return log.checkpoint(1)


def _signature(log: FakeLog) -> str:
    return split_note(log.checkpoint(1))[1][0]


HASH_31 = base64.b64encode(bytes(31)).decode()
UNPADDED_HASH = base64.b64encode(bytes(32)).decode().rstrip("=")
MALFORMED: dict[str, Callable[[FakeLog], str]] = {
    "empty": lambda log: "",
    "text": lambda log: "hello",
    "no empty line": lambda log: "old 0\n" + _note(log),
    "no old line": lambda log: "\n\n" + _note(log),
    "leading zero": lambda log: "old 00\n\n" + _note(log),
    "negative": lambda log: "old -1\n\n" + _note(log),
    "not base64": lambda log: "old 0\nnot base64!\n\n" + _note(log),
    "31-byte hash": lambda log: "old 0\n" + HASH_31 + "\n\n" + _note(log),
    "unpadded hash": lambda log: "old 0\n" + UNPADDED_HASH + "\n\n" + _note(log),
    "unsigned checkpoint": lambda log: "old 0\n\n" + log.text(1),
    "no signature lines": lambda log: "old 0\n\n" + log.text(1) + "\n",
    "size with a leading zero": lambda log: "old 0\n\n" + _note(log).replace("\n1\n", "\n01\n"),
    "two-line checkpoint": lambda log: "old 0\n\ncleack.test/log\n1\n\n" + _signature(log),
    "control character": lambda log: "old 0\n\n" + _note(log).replace("cleack", "cle\x07ack", 1),
    "signature line without dash": lambda log: "old 0\n\n" + log.text(1) + "\nsignature\n",
}


@pytest.mark.parametrize("make_body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_request_is_a_bad_request_with_a_one_line_reason(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog, make_body: Callable[[FakeLog], str]
) -> None:
    log.append()

    answer = await submit(http, witness, make_body(log).encode())

    assert answer.status_code == 400, answer.text
    assert answer.text.endswith("\n") and answer.text.count("\n") == 1 and len(answer.text) > 10
    assert answer.headers["content-type"].startswith("text/plain")


async def test_a_body_that_is_not_utf8_is_a_bad_request(http: httpx.AsyncClient, witness: RunningWitness) -> None:
    answer = await submit(http, witness, b"old 0\n\n\xff\xfe")

    assert (answer.status_code, answer.text) == (400, "the body is not UTF-8 text\n")


async def test_other_bad_requests_get_a_4xx_never_a_server_error(
    http: httpx.AsyncClient, witness: RunningWitness
) -> None:
    too_big = await submit(http, witness, b"old 0\n" + b"A" * (1024 * 1024 + 1))
    no_origin = await http.get(f"{witness.url}/checkpoint")
    wrong_method = await http.get(f"{witness.url}/add-checkpoint")
    nowhere = await http.get(f"{witness.url}/nowhere")

    assert [too_big.status_code, no_origin.status_code, wrong_method.status_code, nowhere.status_code] == [
        413,
        400,
        405,
        404,
    ]
    assert all(answer.text.count("\n") == 1 for answer in (too_big, no_origin, wrong_method, nowhere))


async def test_the_state_survives_a_restart(
    http: httpx.AsyncClient, start_witness: StartWitness, witness_config: WitnessConfig, log: FakeLog
) -> None:
    log.append(3)
    with start_witness(witness_config) as witness:
        assert (await submit(http, witness, log.body(old=0))).status_code == 200
        before = (await latest(http, witness, log.origin)).text
    log.append()

    with start_witness(witness_config) as restarted:
        assert restarted.key == witness.key
        assert (await latest(http, restarted, log.origin)).text == before
        conflict = await submit(http, restarted, log.body(old=0))
        assert (conflict.status_code, conflict.text) == (409, "3\n")
        assert (await submit(http, restarted, log.body(old=3))).status_code == 200
    assert [entry["size"] for entry in history(restarted)] == [3, 4]


async def test_concurrent_submissions_cosign_one_size_at_a_time_and_never_go_back(
    http: httpx.AsyncClient, witness: RunningWitness, log: FakeLog
) -> None:
    log.append(40)
    held, cosigned = 0, []
    for _ in range(4):
        sizes = range(held + 1, held + 9)
        answers = await asyncio.gather(*(submit(http, witness, log.body(old=held, size=size)) for size in sizes))
        won = [size for size, answer in zip(sizes, answers, strict=True) if answer.status_code == 200]

        assert len(won) == 1
        assert sorted(answer.text for answer in answers if answer.status_code == 409) == [f"{won[0]}\n"] * 7
        held = won[0]
        cosigned.append(held)
        assert parse_checkpoint(split_note((await latest(http, witness, log.origin)).text)[0]).size == held
    assert [entry["size"] for entry in history(witness)] == cosigned
    state = json.loads((witness.data_dir / "state.json").read_text())
    assert state["logs"][log.origin]["size"] == held


def test_the_key_file_is_readable_by_its_owner_only(witness: RunningWitness) -> None:
    assert (Path(witness.data_dir) / "witness-key.pem").stat().st_mode & 0o777 == 0o600
