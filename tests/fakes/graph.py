"""What the Instagram and Facebook fakes share: the Graph API's paging, error bodies and rate-limit headers."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from tests.fakes.server import Emulator, Reply, Request, TokenBook, json_reply, text_reply

GRAPH_VERSION = r"/v\d+\.\d+"


def graph_error(
    code: int, message: str, *, subcode: int | None = None, status: int = 400, headers: dict[str, str] | None = None
) -> Reply:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "A" + secrets.token_hex(10)
    return json_reply({"error": error}, status, headers)


def cursor_of(index: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{index}".encode()).decode()


def index_of(cursor: str | None) -> int | None:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        return int(value) if kind == "offset" else None
    except ValueError:
        return None


def graph_page(request: Request, base_url: str, items: list[dict[str, Any]], default_limit: int = 25) -> Reply:
    """One page the Graph way: `paging.cursors` always, `paging.next` only when more follow."""
    start = index_of(request.query.get("after"))
    if start is None:
        return graph_error(100, "Invalid cursor: the `after` parameter does not name a position.")
    limit = max(1, min(int(request.query.get("limit") or default_limit), 100))
    chunk = items[start : start + limit]
    body: dict[str, Any] = {"data": chunk}
    if chunk:
        body["paging"] = {"cursors": {"before": cursor_of(start), "after": cursor_of(start + len(chunk))}}
        if start + len(chunk) < len(items):
            query = {**request.query, "after": cursor_of(start + len(chunk))}
            body["paging"]["next"] = f"{base_url}{request.path}?" + "&".join(f"{k}={v}" for k, v in query.items())
    return json_reply(body)


class GraphEmulator(Emulator):
    """A Graph API host: tokens checked on every resource call, failures answered in Graph's format."""

    def __init__(self) -> None:
        super().__init__()
        self.book = TokenBook()

    def check_token(self, request: Request) -> Reply | None:
        token = request.params.get("access_token")
        state = self.book.state(token)
        if state == "ok":
            return None
        if state == "expired":
            return graph_error(
                190, "Error validating access token: Session has expired on Saturday, 21-Nov-26.", subcode=463
            )
        if state == "revoked":
            return graph_error(
                190, "Error validating access token: The session has been invalidated by the user.", subcode=460
            )
        return graph_error(190, "Invalid OAuth access token - Cannot parse access token")

    def failure_reply(self, kind: str, request: Request) -> Reply:
        if kind == "expired":
            return graph_error(190, "Error validating access token: Session has expired.", subcode=463)
        if kind == "revoked":
            return graph_error(190, "Error validating access token: the user changed their password.", subcode=460)
        if kind == "rate_limited":
            usage = json.dumps({"call_count": 100, "total_cputime": 12, "total_time": 20})
            return graph_error(4, "(#4) Application request limit reached", headers={"x-app-usage": usage})
        if kind == "rate_limited_business":
            usage = json.dumps(
                {
                    "17841400000000001": [
                        {
                            "type": "instagram",
                            "call_count": 100,
                            "total_cputime": 30,
                            "total_time": 40,
                            "estimated_time_to_regain_access": 7,
                        }
                    ]
                }
            )
            return graph_error(
                80002,
                "There have been too many calls to this Instagram account. Wait a bit and try again.",
                headers={"x-business-use-case-usage": usage},
            )
        if kind == "server_error":
            return graph_error(1, "An unknown error has occurred.", status=500)
        if kind == "not_found":
            return graph_error(
                100,
                "Unsupported get request. Object with ID '1' does not exist, cannot be loaded due to missing "
                "permissions, or does not support this operation.",
                subcode=33,
            )
        if kind == "permission":
            return graph_error(10, "(#10) Application does not have permission for this action", status=403)
        if kind == "malformed":
            return text_reply('{"data": [{"id": "1", "te', 200, "application/json")
        if kind == "token_error":
            return self.token_error_reply()
        if kind == "token_without_access":
            return json_reply({"token_type": "bearer", "expires_in": 5183944})
        raise ValueError(kind)

    def token_error_reply(self) -> Reply:
        return graph_error(100, "Invalid verification code format.", subcode=36007)

    def fields(self, request: Request, record: dict[str, Any]) -> dict[str, Any]:
        """The requested `fields` of a record (and its id), the way Graph leaves out the rest."""
        wanted = [part.split("{")[0].split(".")[0] for part in _split_fields(request.query.get("fields", ""))]
        return {key: value for key, value in record.items() if key == "id" or key in wanted}


def _split_fields(fields: str) -> list[str]:
    """Top-level names of a Graph `fields` list (commas inside braces or parentheses do not split)."""
    parts, depth, current = [], 0, ""
    for char in fields:
        if char in "{(":
            depth += 1
        elif char in "})":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current:
        parts.append(current)
    return parts
