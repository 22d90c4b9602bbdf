"""A fake of Facebook Login and the Graph API for Pages.

One server plays www.facebook.com (the login dialog) and graph.facebook.com (tokens, /me/accounts,
the Page, its posts, their comments and reactions). Calls with a token must carry a valid
`appsecret_proof`. The Page's first post has 250 comments and 120 reactions.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from typing import Any

from tests.fakes.graph import GRAPH_VERSION, GraphEmulator, graph_error, graph_page
from tests.fakes.server import CLIENT_ID, CLIENT_SECRET, Reply, Request, json_reply, redirect_reply, redirect_uri

USER_ID = "10220000000000001"
PAGE_ID = "104000000000001"
PAGE_USERNAME = "cleackpage"
SCOPES = ("pages_show_list", "pages_read_engagement", "pages_read_user_content", "pages_manage_engagement")
SHORT_LIFETIME = 2 * 3600
LONG_LIFETIME = 60 * 24 * 3600
START = datetime.datetime(2026, 11, 1, 9, 0, tzinfo=datetime.UTC)


def _posts() -> list[dict[str, Any]]:
    counts = [(250, 120), (4, 2), (0, 0)]
    return [
        {
            "id": f"{PAGE_ID}_20000000000000{number}",
            "message": f"Page giveaway {number}",
            "permalink_url": f"https://www.facebook.com/{PAGE_USERNAME}/posts/pfbid0Post{number}Abc",
            "created_time": (START + datetime.timedelta(days=number)).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "comments": {"data": [], "summary": {"order": "ranked", "total_count": counts[number - 1][0]}},
            "reactions": {"data": [], "summary": {"total_count": counts[number - 1][1]}},
        }
        for number in (1, 2, 3)
    ]


def _comments(post: dict[str, Any]) -> list[dict[str, Any]]:
    comments = []
    for number in range(post["comments"]["summary"]["total_count"]):
        comment: dict[str, Any] = {
            "id": f"{post['id'].split('_')[1]}_{number + 1:06d}",
            "message": f"Count me in {number}",
            "created_time": (START + datetime.timedelta(minutes=number)).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "from": {"id": f"2500000000{number % 180:05d}", "name": f"Fan {number % 180}"},
        }
        if number % 4 == 0:
            comment["message"] += " Friend One"
            comment["message_tags"] = [
                {"id": f"26000000{number:05d}", "name": "Friend One", "type": "user", "offset": 14, "length": 10}
            ]
        comments.append(comment)
    return comments


def _reactions(post: dict[str, Any]) -> list[dict[str, Any]]:
    kinds = ["LIKE", "LOVE", "WOW", "HAHA"]
    return [
        {"id": f"2500000000{number:05d}", "name": f"Fan {number}", "type": kinds[number % 4]}
        for number in range(post["reactions"]["summary"]["total_count"])
    ]


class FacebookEmulator(GraphEmulator):
    def __init__(self) -> None:
        super().__init__()
        self.pages_shared = True
        self.posts = _posts()
        self.comments = {post["id"]: _comments(post) for post in self.posts}
        self.reactions = {post["id"]: _reactions(post) for post in self.posts}
        self.published: list[dict[str, str]] = []
        self.route("GET", f"{GRAPH_VERSION}/dialog/oauth", self.dialog)
        self.route("GET", f"{GRAPH_VERSION}/oauth/access_token", self.access_token)
        self.route("GET", f"{GRAPH_VERSION}/me/accounts", self.accounts)
        self.route("DELETE", f"{GRAPH_VERSION}/me/permissions", self.delete_permissions)
        self.route("GET", GRAPH_VERSION + r"/(?P<object_id>\d+(?:_\d+)?)", self.read_object)
        self.route("GET", GRAPH_VERSION + r"/(?P<page_id>\d+)/published_posts", self.published_posts)
        self.route("GET", GRAPH_VERSION + r"/(?P<post_id>\d+_\d+)/comments", self.list_comments)
        self.route("GET", GRAPH_VERSION + r"/(?P<post_id>\d+_\d+)/reactions", self.list_reactions)
        self.route("POST", GRAPH_VERSION + r"/(?P<post_id>\d+_\d+)/comments", self.publish)

    def dialog(self, request: Request) -> Reply:
        query = request.query
        if query.get("client_id") != CLIENT_ID:
            return graph_error(101, "Error validating application. Invalid application ID.")
        if query.get("redirect_uri") != redirect_uri("facebook"):
            return graph_error(191, "The redirect_uri URL must be absolute and match the app's settings.")
        scopes = tuple(query.get("scope", "").split(","))
        if query.get("response_type") != "code" or not set(scopes) <= set(SCOPES):
            return graph_error(100, "Invalid scope or response_type.")
        code = self.book.code(redirect_uri=query["redirect_uri"], scopes=scopes)
        return redirect_reply(query["redirect_uri"], {"code": code, "state": query.get("state", "")})

    def access_token(self, request: Request) -> Reply:
        query = request.query
        if query.get("client_id") != CLIENT_ID or query.get("client_secret") != CLIENT_SECRET:
            return graph_error(1, "Error validating client secret.", status=400)
        if query.get("grant_type") == "fb_exchange_token":
            short = self.book.tokens.get(query.get("fb_exchange_token", ""))
            if short is None or short.expired or short.revoked:
                return graph_error(190, "Error validating access token: the session is invalid.", subcode=460)
            token = self.book.issue("EAAuserLong", USER_ID, short.scopes, LONG_LIFETIME, kind="user")
            return json_reply({"access_token": token.value, "token_type": "bearer", "expires_in": LONG_LIFETIME})
        grant = self.book.spend_code(query.get("code", ""))
        if grant is None:
            return self.token_error_reply()
        if grant["redirect_uri"] != query.get("redirect_uri"):
            return graph_error(
                100, "Error validating verification code. Please make sure your redirect_uri is identical"
            )
        token = self.book.issue("EAAuserShort", USER_ID, grant["scopes"], SHORT_LIFETIME, kind="user")
        return json_reply({"access_token": token.value, "token_type": "bearer", "expires_in": SHORT_LIFETIME})

    def token_error_reply(self) -> Reply:
        return graph_error(100, "This authorization code has been used.", subcode=36009)

    def check_token(self, request: Request) -> Reply | None:
        refused = super().check_token(request)
        if refused is not None:
            return refused
        token = request.params["access_token"]
        proof = hmac.new(CLIENT_SECRET.encode(), token.encode(), hashlib.sha256).hexdigest()
        if request.params.get("appsecret_proof") != proof:
            return graph_error(100, "Invalid appsecret_proof provided in the API argument")
        return None

    def _page_token(self, request: Request) -> Reply | None:
        refused = self.check_token(request)
        if refused is not None:
            return refused
        if self.book.tokens[request.params["access_token"]].extra.get("kind") != "page":
            return graph_error(190, "This call requires a Page access token.", status=400)
        return None

    def accounts(self, request: Request) -> Reply:
        refused = self.check_token(request)
        if refused is not None:
            return refused
        user = self.book.tokens[request.query["access_token"]]
        if user.extra.get("kind") != "user":
            return graph_error(100, "(#100) Tried accessing nonexisting field (accounts) on node type (Page)")
        pages = []
        if self.pages_shared:
            page_token = self.book.issue("EAApage", PAGE_ID, user.scopes, None, kind="page")
            pages.append(
                {
                    "id": PAGE_ID,
                    "name": "Cleack Page",
                    "access_token": page_token.value,
                    "category": "Brand",
                    "tasks": ["ANALYZE", "ADVERTISE", "MODERATE", "CREATE_CONTENT"],
                }
            )
        return graph_page(request, self.base_url, pages)

    def delete_permissions(self, request: Request) -> Reply:
        refused = self.check_token(request)
        if refused is not None:
            return refused
        user_id = self.book.tokens[request.params["access_token"]].user
        for token in self.book.tokens.values():
            if token.user in {user_id, PAGE_ID}:
                token.revoked = True
        return json_reply({"success": True})

    def read_object(self, request: Request, object_id: str) -> Reply:
        refused = self._page_token(request)
        if refused is not None:
            return refused
        if object_id == PAGE_ID:
            page = {
                "id": PAGE_ID,
                "name": "Cleack Page",
                "username": PAGE_USERNAME,
                "followers_count": 4200,
                "fan_count": 4100,
            }
            return json_reply(self.fields(request, page))
        post = next((post for post in self.posts if post["id"] == object_id), None)
        if post is None:
            return self._missing(object_id)
        return json_reply(self.fields(request, post))

    def published_posts(self, request: Request, page_id: str) -> Reply:
        refused = self._page_token(request) or (None if page_id == PAGE_ID else self._missing(page_id))
        if refused is not None:
            return refused
        return graph_page(request, self.base_url, [self.fields(request, post) for post in self.posts])

    def list_comments(self, request: Request, post_id: str) -> Reply:
        refused = self._page_token(request) or (None if post_id in self.comments else self._missing(post_id))
        if refused is not None:
            return refused
        if request.query.get("filter") != "stream":
            return graph_error(100, "Only filter=stream lists every comment in this fake.")
        return graph_page(request, self.base_url, self.comments[post_id])

    def list_reactions(self, request: Request, post_id: str) -> Reply:
        refused = self._page_token(request) or (None if post_id in self.reactions else self._missing(post_id))
        if refused is not None:
            return refused
        return graph_page(request, self.base_url, self.reactions[post_id])

    def publish(self, request: Request, post_id: str) -> Reply:
        refused = self._page_token(request) or (None if post_id in self.comments else self._missing(post_id))
        if refused is not None:
            return refused
        if "pages_manage_engagement" not in self.book.tokens[request.params["access_token"]].scopes:
            return graph_error(
                200, "(#200) Requires pages_manage_engagement permission to manage the object", status=403
            )
        comment_id = f"{post_id.split('_')[1]}_{900000 + len(self.published)}"
        self.published.append({"id": comment_id, "post_id": post_id, "message": request.params.get("message", "")})
        return json_reply({"id": comment_id})

    def _missing(self, object_id: str) -> Reply:
        return graph_error(
            100,
            f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
            "missing permissions, or does not support this operation.",
            subcode=33,
        )
