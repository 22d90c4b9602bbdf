"""What a log calls to have its checkpoint cosigned by a witness (docs/fairness.md)."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from web.fairness.note import VerifierKey, cosignature_time, split_note

_SIZE_BODY = re.compile(r"(0|[1-9][0-9]*)\n")


@dataclass(frozen=True)
class Cosigned:
    line: str
    timestamp: int


class WitnessError(Exception):
    """The witness did not cosign."""


class WitnessConflict(WitnessError):
    """409: the witness holds the log at another size; submit again from that size."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the witness holds the log at size {size}")
        self.size = size


class WitnessRefused(WitnessError):
    """A 4xx other than 409 (a fork, a bad signature, an unknown log, …), or an answer without a valid cosignature."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message if status is None else f"{status}: {message}")
        self.message = message
        self.status = status


class WitnessUnavailable(WitnessError):
    """The witness could not be reached, timed out or failed (5xx): try again later."""


async def add_checkpoint(
    http: httpx.AsyncClient,
    url: str,
    old_size: int,
    record_hashes: Sequence[bytes],
    signed_note: str,
    witness_key: VerifierKey,
) -> Cosigned:
    """The witness's cosignature of `signed_note`, verified under `witness_key`; `url` is the witness's base URL."""
    checkpoint_text, _ = split_note(signed_note)
    body = f"old {old_size}\n" + "".join(f"{base64.b64encode(h).decode()}\n" for h in record_hashes) + "\n"
    try:
        answer = await http.post(
            f"{url.rstrip('/')}/add-checkpoint",
            content=(body + signed_note).encode(),
            headers={"content-type": "text/plain; charset=utf-8"},
        )
    except httpx.HTTPError as exc:
        raise WitnessUnavailable(f"{url} cannot be reached: {exc!r}") from exc
    if answer.status_code == 200:
        return _cosignature(answer.text, checkpoint_text, witness_key)
    message = answer.text.strip().split("\n")[0][:300]
    if answer.status_code == 409:
        size = _SIZE_BODY.fullmatch(answer.text)
        if size is None:
            raise WitnessRefused(f"a conflict without a size: {message!r}", 409)
        raise WitnessConflict(int(size.group(1)))
    if 400 <= answer.status_code < 500:
        raise WitnessRefused(message, answer.status_code)
    raise WitnessUnavailable(f"{url} answered {answer.status_code}: {message}")


def _cosignature(body: str, checkpoint_text: str, witness_key: VerifierKey) -> Cosigned:
    for line in body.split("\n"):
        timestamp = cosignature_time(checkpoint_text, line, witness_key)
        if timestamp is not None:
            return Cosigned(line + "\n", timestamp)
    raise WitnessRefused(f"the answer holds no valid cosignature by {witness_key.text}", 200)
