"""create_witness_app(): the witness over HTTP (C2SP tlog-witness, a hash chain in place of a Merkle proof)."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.exceptions import HTTPException
from litestar.params import FromQuery

from web.fairness.note import parse_checkpoint, split_note
from web.witness.state import Refused, SizeConflict, Submission, Witness, WitnessConfig

log = logging.getLogger(__name__)

MAX_BODY_SIZE = 1024 * 1024
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


@post("/add-checkpoint", status_code=200)
async def add_checkpoint(request: Request[Any, Any, Any], state: State) -> Response[str]:
    """Body: `old <m>`, the record hashes m+1 … n (base64, one a line), an empty line, the log's signed checkpoint."""
    submission = parse_submission(await request.body())
    witness: Witness = state.witness
    return _text(await witness.add_checkpoint(submission))


@get("/key")
async def witness_key(state: State) -> Response[str]:
    witness: Witness = state.witness
    return _text(witness.verifier_key.text + "\n")


@get("/checkpoint")
async def latest_checkpoint(state: State, origin: FromQuery[str]) -> Response[str]:
    """The latest checkpoint cosigned for `origin`: its text, the log's signature lines, the cosignature line."""
    witness: Witness = state.witness
    cosigned = witness.latest(origin)
    if cosigned is None:
        raise Refused(404, f"this witness has cosigned no checkpoint of {origin}")
    return _text(cosigned.note)


def parse_submission(body: bytes) -> Submission:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "the body is not UTF-8 text") from None
    # The proof part holds no empty line: the first one ends it.
    proof, separator, note = text.partition("\n\n")
    if not separator:
        raise Refused(400, "the body is `old <size>`, a record hash a line, an empty line, then the signed checkpoint")
    old_line, *hash_lines = proof.split("\n")
    old_size = old_line.removeprefix("old ")
    if old_size == old_line or not _DECIMAL.fullmatch(old_size):
        raise Refused(400, "the first line is `old <size>`, the size in decimal without leading zeros")
    record_hashes = tuple(_record_hash(line, seq) for seq, line in enumerate(hash_lines, start=int(old_size) + 1))
    try:
        checkpoint_text, signature_lines = split_note(note)
        checkpoint = parse_checkpoint(checkpoint_text)
    except ValueError as exc:
        raise Refused(400, f"the signed checkpoint cannot be read: {exc}") from None
    return Submission(int(old_size), record_hashes, note, checkpoint_text, tuple(signature_lines), checkpoint)


def _record_hash(line: str, seq: int) -> bytes:
    try:
        record_hash = base64.b64decode(line.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise Refused(400, f"the hash of record {seq} is not base64") from None
    if len(record_hash) != 32 or base64.b64encode(record_hash).decode() != line:
        raise Refused(400, f"the hash of record {seq} is not 32 bytes in canonical base64")
    return record_hash


def _text(body: str, status_code: int = 200) -> Response[str]:
    return Response(body, status_code=status_code, media_type=MediaType.TEXT)


def _refused(request: Request[Any, Any, Any], exc: Refused) -> Response[str]:
    if isinstance(exc, SizeConflict):
        # C2SP asks for exactly this content type, without a charset.
        return Response(f"{exc.size}\n", status_code=409, headers={"content-type": "text/x.tlog.size"})
    if exc.status == 422:
        log.warning("refused a checkpoint: %s", exc.message)
    return _text(exc.message + "\n", exc.status)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[str]:
    return _text(f"{exc.detail}\n", exc.status_code)


def _failure(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    log.exception("the witness failed on %s %s", request.method, request.url.path, exc_info=exc)
    return _text("the witness failed; its log says why\n", 500)


def create_witness_app(config: WitnessConfig) -> Litestar:
    """The witness's ASGI app; its key and state are loaded (or created) from `config.data_dir` here."""
    return Litestar(
        route_handlers=[add_checkpoint, witness_key, latest_checkpoint],
        state=State({"witness": Witness(config)}),
        exception_handlers={Refused: _refused, HTTPException: _http_error, Exception: _failure},
        request_max_body_size=MAX_BODY_SIZE,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
