"""A fake of the Instagram API with Instagram Login: its consent redirect, token endpoints and Graph host.

One server plays www.instagram.com (consent), api.instagram.com (code exchange) and
graph.instagram.com (long-lived tokens and resources). The creator `cleack.creator` has three
posts; the first has 250 comments, so reading them takes several pages.
"""

from __future__ import annotations

import datetime
from typing import Any

from tests.fakes.graph import GRAPH_VERSION, GraphEmulator, graph_error, graph_page
from tests.fakes.server import CLIENT_ID, CLIENT_SECRET, Reply, Request, json_reply, redirect_reply, redirect_uri

USER_ID = "17841400000000001"
USERNAME = "cleack.creator"
SCOPES = ("instagram_business_basic", "instagram_business_manage_comments")
SHORT_LIFETIME = 3600
LONG_LIFETIME = 60 * 24 * 3600
START = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.UTC)


def _media() -> list[dict[str, Any]]:
    counts = [250, 3, 0]
    return [
        {
            "id": f"1790000000000000{number}",
            "caption": f"Giveaway number {number}! Comment and tag a friend.",
            "permalink": f"https://www.instagram.com/p/C0ffee{number}x/",
            "timestamp": (START + datetime.timedelta(days=number)).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "comments_count": counts[number - 1],
            "like_count": 1000 + number,
        }
        for number in (1, 2, 3)
    ]


def _comments(media: dict[str, Any]) -> list[dict[str, Any]]:
    comments = []
    for number in range(media["comments_count"]):
        text = f"Comment {number} on {media['id'][-1]}"
        if number % 5 == 0:
            text += f" @friend_{number} @other.friend"
        comments.append(
            {
                "id": f"18000{media['id'][-1]}{number:06d}",
                "text": text,
                "timestamp": (START + datetime.timedelta(minutes=number)).strftime("%Y-%m-%dT%H:%M:%S+0000"),
                "from": {"id": f"1784150{number % 200:010d}", "username": f"fan_{number % 200}"},
            }
        )
    return comments


class InstagramEmulator(GraphEmulator):
    def __init__(self) -> None:
        super().__init__()
        self.media = _media()
        self.comments = {item["id"]: _comments(item) for item in self.media}
        self.published: list[dict[str, str]] = []
        self.route("GET", "/oauth/authorize", self.authorize)
        self.route("POST", "/oauth/access_token", self.exchange_code)
        self.route("GET", "/access_token", self.long_lived)
        self.route("GET", "/refresh_access_token", self.refresh)
        self.route("GET", f"{GRAPH_VERSION}/me", self.me)
        self.route("GET", f"{GRAPH_VERSION}/me/media", self.list_media)
        self.route("GET", GRAPH_VERSION + r"/(?P<media_id>\d+)/comments", self.list_comments)
        self.route("POST", GRAPH_VERSION + r"/(?P<media_id>\d+)/comments", self.publish)

    def authorize(self, request: Request) -> Reply:
        query = request.query
        if query.get("client_id") != CLIENT_ID:
            return graph_error(100, "Invalid platform app")
        if query.get("redirect_uri") != redirect_uri("instagram"):
            return graph_error(
                100, "Error validating verification code. Please make sure your redirect_uri is identical"
            )
        if query.get("response_type") != "code":
            return graph_error(100, "Invalid response_type")
        scopes = tuple(query.get("scope", "").split(","))
        if not set(scopes) <= set(SCOPES):
            return graph_error(100, "Invalid scope")
        code = self.book.code(redirect_uri=query["redirect_uri"], scopes=scopes)
        # Instagram appends `#_` to the redirect; browsers drop it before the callback.
        reply = redirect_reply(query["redirect_uri"], {"code": code, "state": query.get("state", "")})
        reply.headers["location"] += "#_"
        return reply

    def exchange_code(self, request: Request) -> Reply:
        form = request.form
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return json_reply({"error_type": "OAuthException", "code": 400, "error_message": "Invalid Client ID"}, 400)
        if form.get("grant_type") != "authorization_code":
            return json_reply({"error_type": "OAuthException", "code": 400, "error_message": "Invalid grant_type"}, 400)
        grant = self.book.spend_code(form.get("code", ""))
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            return self.token_error_reply()
        token = self.book.issue("IGAAshort", USER_ID, grant["scopes"], SHORT_LIFETIME, kind="short")
        return json_reply(
            {"data": [{"access_token": token.value, "user_id": USER_ID, "permissions": ",".join(grant["scopes"])}]}
        )

    def token_error_reply(self) -> Reply:
        return json_reply(
            {"error_type": "OAuthException", "code": 400, "error_message": "Invalid authorization code"}, 400
        )

    def long_lived(self, request: Request) -> Reply:
        query = request.query
        if query.get("grant_type") != "ig_exchange_token" or query.get("client_secret") != CLIENT_SECRET:
            return graph_error(101, "Error validating client secret.")
        refused = self.check_token(request)
        if refused is not None:
            return refused
        short = self.book.tokens[query["access_token"]]
        if short.extra.get("kind") != "short":
            return graph_error(100, "The access token is already long-lived.")
        token = self.book.issue("IGAAlong", USER_ID, short.scopes, LONG_LIFETIME, kind="long")
        return json_reply({"access_token": token.value, "token_type": "bearer", "expires_in": LONG_LIFETIME})

    def refresh(self, request: Request) -> Reply:
        if request.query.get("grant_type") != "ig_refresh_token":
            return graph_error(100, "Unsupported grant_type")
        refused = self.check_token(request)
        if refused is not None:
            return refused
        old = self.book.tokens[request.query["access_token"]]
        token = self.book.issue("IGAAlong", USER_ID, old.scopes, LONG_LIFETIME, kind="long")
        return json_reply({"access_token": token.value, "token_type": "bearer", "expires_in": LONG_LIFETIME})

    def me(self, request: Request) -> Reply:
        refused = self.check_token(request)
        if refused is not None:
            return refused
        record = {
            "id": USER_ID,
            "user_id": USER_ID,
            "username": USERNAME,
            "name": "Cleack Creator",
            "account_type": "BUSINESS",
            "followers_count": 1520,
        }
        return json_reply(self.fields(request, record))

    def list_media(self, request: Request) -> Reply:
        refused = self.check_token(request)
        if refused is not None:
            return refused
        return graph_page(request, self.base_url, [self.fields(request, item) for item in self.media])

    def list_comments(self, request: Request, media_id: str) -> Reply:
        refused = self.check_token(request) or self._missing(media_id)
        if refused is not None:
            return refused
        return graph_page(request, self.base_url, self.comments[media_id])

    def publish(self, request: Request, media_id: str) -> Reply:
        refused = self.check_token(request) or self._missing(media_id)
        if refused is not None:
            return refused
        token = self.book.tokens[request.params["access_token"]]
        if "instagram_business_manage_comments" not in token.scopes:
            return graph_error(10, "(#10) Application does not have permission for this action", status=403)
        message = request.params.get("message", "")
        if not message:
            return graph_error(100, "(#100) The parameter message is required")
        comment_id = f"1801{len(self.published):012d}"
        self.published.append({"id": comment_id, "media_id": media_id, "message": message})
        return json_reply({"id": comment_id})

    def _missing(self, media_id: str) -> Reply | None:
        if media_id in self.comments:
            return None
        return graph_error(
            100,
            f"Unsupported get request. Object with ID '{media_id}' does not exist, cannot be loaded due to missing "
            "permissions, or does not support this operation.",
            subcode=33,
        )
