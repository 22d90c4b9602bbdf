"""A fake of TikTok Login Kit v2, the Display API and the Business API's comment list.

One server plays www.tiktok.com (consent), open.tiktokapis.com (tokens, user info, videos) and
business-api.tiktok.com (comments). PKCE challenges are the hex SHA-256 of the verifier, as
TikTok documents. The creator has three videos; the first has 250 comments (30 a page).
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from typing import Any

from tests.fakes.server import (
    CLIENT_ID,
    CLIENT_SECRET,
    Emulator,
    Reply,
    Request,
    TokenBook,
    json_reply,
    redirect_reply,
    redirect_uri,
    text_reply,
)

OPEN_ID = "-000OpenIdOfTheCreator"
SCOPES = ("user.info.basic", "user.info.profile", "user.info.stats", "video.list")
LIFETIME = 86400
REFRESH_LIFETIME = 365 * 86400
START = datetime.datetime(2026, 11, 10, 18, 0, tzinfo=datetime.UTC)


def _videos() -> list[dict[str, Any]]:
    counts = [250, 5, 0]
    return [
        {
            "id": f"735000000000000000{number}",
            "title": f"Giveaway {number}",
            "video_description": f"Giveaway {number}! Comment to enter #giveaway",
            "create_time": int((START + datetime.timedelta(days=number)).timestamp()),
            "share_url": f"https://www.tiktok.com/@cleack.creator/video/735000000000000000{number}",
            "comment_count": counts[number - 1],
            "like_count": 500 * number,
        }
        for number in (1, 2, 3)
    ]


def _comments(video: dict[str, Any]) -> list[dict[str, Any]]:
    comments = []
    for number in range(video["comment_count"]):
        text = f"Me please {number}"
        if number % 10 == 0:
            text += " @best.friend"
        comments.append(
            {
                "comment_id": f"7360{video['id'][-1]}{number:08d}",
                "video_id": video["id"],
                "user_id": f"user-{number % 150}",
                "username": f"tiktoker_{number % 150}",
                "display_name": f"TikToker {number % 150}",
                "text": text,
                "create_time": str(int((START + datetime.timedelta(minutes=number)).timestamp())),
                "likes": number % 7,
                "replies": 0,
                "owner": False,
                "liked": False,
                "pinned": False,
                "status": "PUBLIC",
            }
        )
    return comments


def display_error(code: str, message: str, status: int) -> Reply:
    return json_reply({"data": {}, "error": {"code": code, "message": message, "log_id": _log_id()}}, status)


def business_answer(code: int, message: str, data: dict[str, Any] | None = None, status: int = 200) -> Reply:
    return json_reply({"code": code, "message": message, "request_id": _log_id(), "data": data or {}}, status)


def _log_id() -> str:
    return "20261122" + secrets.token_hex(12).upper()


class TikTokEmulator(Emulator):
    def __init__(self) -> None:
        super().__init__()
        self.book = TokenBook()
        self.refresh_tokens: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.videos = _videos()
        self.comments = {video["id"]: _comments(video) for video in self.videos}
        self.route("GET", "/v2/auth/authorize/", self.authorize)
        self.route("POST", "/v2/oauth/token/", self.token)
        self.route("POST", "/v2/oauth/revoke/", self.revoke)
        self.route("GET", "/v2/user/info/", self.user_info)
        self.route("POST", "/v2/video/list/", self.video_list)
        self.route("POST", "/v2/video/query/", self.video_query)
        self.route("GET", "/open_api/v1.3/business/comment/list/", self.comment_list)

    def authorize(self, request: Request) -> Reply:
        query = request.query
        if query.get("client_key") != CLIENT_ID:
            return text_reply("<p>Something went wrong: client_key</p>", 400)
        if query.get("redirect_uri") != redirect_uri("tiktok"):
            return text_reply("<p>Something went wrong: redirect_uri</p>", 400)
        scopes = tuple(query.get("scope", "").split(","))
        if query.get("response_type") != "code" or not set(scopes) <= set(SCOPES):
            return text_reply("<p>Something went wrong: scope</p>", 400)
        if query.get("code_challenge_method") != "S256" or len(query.get("code_challenge", "")) != 64:
            return text_reply("<p>Something went wrong: code_challenge</p>", 400)
        code = self.book.code(redirect_uri=query["redirect_uri"], scopes=scopes, challenge=query["code_challenge"])
        return redirect_reply(
            query["redirect_uri"], {"code": code, "scopes": ",".join(scopes), "state": query.get("state", "")}
        )

    def token(self, request: Request) -> Reply:
        form = request.form
        if form.get("client_key") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return self._oauth_error("invalid_client", "Client key or secret is incorrect.", 401)
        if form.get("grant_type") == "refresh_token":
            known = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if known is None:
                return self._oauth_error("invalid_grant", "Refresh token is invalid or expired.")
            return self._issue(*known)
        if form.get("grant_type") != "authorization_code":
            return self._oauth_error("unsupported_grant_type", "Grant type is not supported.")
        grant = self.book.spend_code(form.get("code", ""))
        challenge = hashlib.sha256(form.get("code_verifier", "").encode()).hexdigest()
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            return self.token_error_reply()
        if grant["challenge"] != challenge:
            return self._oauth_error("invalid_request", "Code verifier or code challenge is invalid.")
        return self._issue(OPEN_ID, grant["scopes"])

    def token_error_reply(self) -> Reply:
        return self._oauth_error("invalid_grant", "Authorization code is expired.")

    def _oauth_error(self, error: str, description: str, status: int = 400) -> Reply:
        return json_reply({"error": error, "error_description": description, "log_id": _log_id()}, status)

    def _issue(self, open_id: str, scopes: tuple[str, ...]) -> Reply:
        access = self.book.issue("act.", open_id, scopes, LIFETIME)
        refresh = self.book.issue("rft.", open_id, scopes, REFRESH_LIFETIME)
        self.refresh_tokens[refresh.value] = (open_id, scopes)
        return json_reply(
            {
                "access_token": access.value,
                "expires_in": LIFETIME,
                "open_id": open_id,
                "refresh_expires_in": REFRESH_LIFETIME,
                "refresh_token": refresh.value,
                "scope": ",".join(scopes),
                "token_type": "Bearer",
            }
        )

    def revoke(self, request: Request) -> Reply:
        form = request.form
        if form.get("client_key") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return self._oauth_error("invalid_client", "Client key or secret is incorrect.", 401)
        token = self.book.tokens.get(form.get("token", ""))
        if token is not None:
            for issued in self.book.tokens.values():
                if issued.user == token.user:
                    issued.revoked = True
            self.refresh_tokens.clear()
        return json_reply({})

    # Display API

    def check_token(self, request: Request, scope: str) -> Reply | None:
        if self.book.state(request.bearer) != "ok":
            return display_error(
                "access_token_invalid", "The access token is invalid or not found in the request.", 401
            )
        if scope not in self.book.tokens[request.bearer or ""].scopes:
            return display_error(
                "scope_not_authorized", f"The user did not authorize the scope required: {scope}.", 401
            )
        return None

    def failure_reply(self, kind: str, request: Request) -> Reply:
        if request.path.startswith("/open_api/"):
            return self._business_failure(kind)
        if kind == "expired":
            return display_error("access_token_invalid", "The access token is invalid or not found.", 401)
        if kind == "rate_limited":
            return display_error("rate_limit_exceeded", "The API rate limit was exceeded.", 429)
        if kind == "permission":
            return display_error("scope_not_authorized", "The user did not authorize the scope required.", 401)
        if kind == "server_error":
            return display_error("internal_error", "Something went wrong.", 500)
        if kind == "malformed":
            return text_reply("<html><body>Gateway timeout</body></html>", 200)
        if kind == "token_error":
            return self.token_error_reply()
        if kind == "token_without_access":
            return json_reply({"open_id": OPEN_ID, "scope": "user.info.basic", "token_type": "Bearer"})
        if kind == "token_error_with_200":
            return self._oauth_error("invalid_grant", "Authorization code is expired.", 200)
        raise ValueError(kind)

    def _business_failure(self, kind: str) -> Reply:
        if kind == "expired":
            return business_answer(40102, "Access token has expired.")
        if kind == "revoked":
            return business_answer(40105, "Access token is incorrect or has been revoked.")
        if kind == "rate_limited":
            return business_answer(40100, "Too many requests. Please retry in some time.")
        if kind == "permission":
            return business_answer(40001, "No permission to operate: the account is not a Business Account.")
        if kind == "not_found":
            return business_answer(40002, "video_id is invalid.")
        if kind == "server_error":
            return business_answer(50000, "System error.", status=500)
        if kind == "malformed":
            return text_reply('{"code": 0, "data": {"comm', 200, "application/json")
        raise ValueError(kind)

    def user_info(self, request: Request) -> Reply:
        refused = self.check_token(request, "user.info.basic")
        if refused is not None:
            return refused
        user = {
            "open_id": OPEN_ID,
            "union_id": "union-1",
            "username": "cleack.creator",
            "display_name": "Cleack on TikTok",
            "follower_count": 8800,
            "is_verified": False,
        }
        wanted = request.query.get("fields", "").split(",")
        return json_reply(
            {
                "data": {"user": {key: value for key, value in user.items() if key in wanted}},
                "error": {"code": "ok", "message": "", "log_id": _log_id()},
            }
        )

    def video_list(self, request: Request) -> Reply:
        refused = self.check_token(request, "video.list")
        if refused is not None:
            return refused
        body = request.json() or {}
        limit = body.get("max_count", 10)
        if not isinstance(limit, int) or not 1 <= limit <= 20:
            return display_error("invalid_params", "max_count must be between 1 and 20.", 400)
        videos = self.videos[:limit]
        return json_reply(
            {
                "data": {"videos": videos, "cursor": videos[-1]["create_time"] * 1000, "has_more": False},
                "error": {"code": "ok", "message": "", "log_id": _log_id()},
            }
        )

    def video_query(self, request: Request) -> Reply:
        refused = self.check_token(request, "video.list")
        if refused is not None:
            return refused
        body = request.json() or {}
        wanted = (body.get("filters") or {}).get("video_ids") or []
        found = [video for video in self.videos if video["id"] in wanted]
        return json_reply({"data": {"videos": found}, "error": {"code": "ok", "message": "", "log_id": _log_id()}})

    # Business API

    def comment_list(self, request: Request) -> Reply:
        token = request.headers.get("access-token")
        state = self.book.state(token)
        if state == "expired":
            return business_answer(40102, "Access token has expired.")
        if state != "ok":
            return business_answer(40105, "Access token is incorrect or has been revoked.")
        query = request.query
        if query.get("business_id") != OPEN_ID:
            return business_answer(40001, "No permission to operate this business_id.")
        comments = self.comments.get(query.get("video_id", ""))
        if comments is None:
            return business_answer(40002, "video_id is invalid.")
        cursor = int(query.get("cursor") or 0)
        limit = int(query.get("max_count") or 20)
        if not 1 <= limit <= 30:
            return business_answer(40002, "max_count should be between 1 and 30.")
        chunk = comments[cursor : cursor + limit]
        has_more = cursor + limit < len(comments)
        return business_answer(0, "OK", {"comments": chunk, "cursor": cursor + len(chunk), "has_more": has_more})
