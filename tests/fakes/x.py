"""A fake of X's OAuth 2.0 (with PKCE and rotating refresh tokens) and the part of the X API v2 Cleack reads.

One server plays x.com (consent) and api.x.com. The creator `cleack_creator` has three posts; the
first has 250 replies (recent search returns the post itself too, as X does, newest first), 120
likes, and the creator has 2,500 followers.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import time
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

USER_ID = "1500000000000000001"
SCOPES = ("tweet.read", "users.read", "follows.read", "like.read", "tweet.write", "offline.access")
LIFETIME = 7200
RATE_LIMIT_RESET_IN = 123
START = datetime.datetime(2026, 11, 20, 8, 0, tzinfo=datetime.UTC)


def _time(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _tweets() -> list[dict[str, Any]]:
    counts = [(250, 120), (2, 1), (0, 0)]
    return [
        {
            "id": f"18600000000000000{number:02d}",
            "text": f"Giveaway {number}: reply and tag a friend",
            "author_id": USER_ID,
            "conversation_id": f"18600000000000000{number:02d}",
            "created_at": _time(START + datetime.timedelta(hours=number)),
            "public_metrics": {
                "retweet_count": 5,
                "reply_count": counts[number - 1][0],
                "like_count": counts[number - 1][1],
                "quote_count": 0,
            },
        }
        for number in (1, 2, 3)
    ]


def _user(number: int) -> dict[str, Any]:
    return {
        "id": f"17{number:017d}",
        "name": f"Fan {number}",
        "username": f"fan_{number}",
        "public_metrics": {"followers_count": number * 3, "following_count": 10, "tweet_count": 99},
    }


def _replies(tweet: dict[str, Any]) -> list[dict[str, Any]]:
    replies = []
    for number in range(tweet["public_metrics"]["reply_count"]):
        reply: dict[str, Any] = {
            "id": f"1870000{tweet['id'][-2:]}{number:010d}",
            "text": f"@cleack_creator count me in {number}",
            "author_id": _user(number % 200)["id"],
            "conversation_id": tweet["id"],
            "created_at": _time(START + datetime.timedelta(minutes=number + 1)),
            "entities": {"mentions": [{"start": 0, "end": 15, "username": "cleack_creator", "id": USER_ID}]},
        }
        if number % 3 == 0:
            reply["text"] += " @pal_one"
            reply["entities"]["mentions"].append({"start": 40, "end": 48, "username": "pal_one", "id": "42"})
        replies.append(reply)
    replies.reverse()  # search answers newest first
    return [*replies, tweet]


def _token_of(index: int) -> str:
    return base64.b32encode(f"page{index}".encode()).decode().rstrip("=").lower()


def _index_of(token: str | None) -> int | None:
    if not token:
        return 0
    try:
        text = base64.b32decode(token.upper() + "=" * (-len(token) % 8)).decode()
    except ValueError:
        return None
    return int(text[4:]) if text.startswith("page") and text[4:].isdigit() else None


def problem(status: int, title: str, detail: str, kind: str = "about:blank", **extra: Any) -> Reply:
    return json_reply({"title": title, "detail": detail, "type": kind, "status": status, **extra}, status)


class XEmulator(Emulator):
    def __init__(self) -> None:
        super().__init__()
        self.book = TokenBook()
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> user
        self.tweets = _tweets()
        self.replies = {tweet["id"]: _replies(tweet) for tweet in self.tweets}
        self.users = {USER_ID: {"id": USER_ID, "name": "Cleack Creator", "username": "cleack_creator"}}
        self.published: list[dict[str, Any]] = []
        self.route("GET", "/i/oauth2/authorize", self.authorize)
        self.route("POST", "/2/oauth2/token", self.token)
        self.route("POST", "/2/oauth2/revoke", self.revoke)
        self.route("GET", "/2/users/me", self.me)
        self.route("GET", r"/2/users/(?P<user_id>\d+)/tweets", self.user_tweets)
        self.route("GET", r"/2/users/(?P<user_id>\d+)/followers", self.followers)
        self.route("GET", "/2/tweets/search/recent", self.search)
        self.route("GET", r"/2/tweets/(?P<tweet_id>\d+)", self.lookup)
        self.route("GET", r"/2/tweets/(?P<tweet_id>\d+)/liking_users", self.liking_users)
        self.route("POST", "/2/tweets", self.publish)

    # OAuth

    def authorize(self, request: Request) -> Reply:
        query = request.query
        if query.get("client_id") != CLIENT_ID or query.get("redirect_uri") != redirect_uri("x"):
            return text_reply("<h1>Something went wrong</h1><p>You weren't able to give access to the App.</p>", 400)
        scopes = tuple(query.get("scope", "").split(" "))
        if query.get("response_type") != "code" or not set(scopes) <= set(SCOPES):
            return text_reply("<h1>Something went wrong</h1>", 400)
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return text_reply("<h1>Something went wrong</h1><p>Missing PKCE challenge.</p>", 400)
        code = self.book.code(redirect_uri=query["redirect_uri"], scopes=scopes, challenge=query["code_challenge"])
        return redirect_reply(query["redirect_uri"], {"state": query.get("state", ""), "code": code})

    def token(self, request: Request) -> Reply:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return json_reply(
                {"error": "unauthorized_client", "error_description": "Missing valid authorization header"}, 401
            )
        form = request.form
        if form.get("grant_type") == "refresh_token":
            user = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if user is None:
                return self.token_error_reply()
            return self._issue(user, SCOPES)
        if form.get("grant_type") != "authorization_code":
            return json_reply({"error": "unsupported_grant_type"}, 400)
        grant = self.book.spend_code(form.get("code", ""))
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri") or grant["challenge"] != challenge:
            return self.token_error_reply()
        return self._issue(USER_ID, grant["scopes"])

    def token_error_reply(self) -> Reply:
        return json_reply(
            {"error": "invalid_request", "error_description": "Value passed for the token was invalid."}, 400
        )

    def _issue(self, user: str, scopes: tuple[str, ...]) -> Reply:
        access = self.book.issue("xat-", user, scopes, LIFETIME)
        body: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": LIFETIME,
            "access_token": access.value,
            "scope": " ".join(scopes),
        }
        if "offline.access" in scopes:
            refresh = self.book.issue("xrt-", user, scopes, None)
            self.refresh_tokens[refresh.value] = user
            body["refresh_token"] = refresh.value
        return json_reply(body)

    def revoke(self, request: Request) -> Reply:
        token = request.form.get("token", "")
        self.book.revoke(token)
        self.refresh_tokens.pop(token, None)
        return json_reply({"revoked": True})

    # Resources

    def check_token(self, request: Request, scope: str = "tweet.read") -> Reply | None:
        if self.book.state(request.bearer) != "ok":
            return problem(401, "Unauthorized", "Unauthorized")
        if scope not in self.book.tokens[request.bearer or ""].scopes:
            return problem(
                403,
                "Forbidden",
                f"Your app does not have the {scope} scope for this request.",
                "https://api.twitter.com/2/problems/oauth2-scope",
            )
        return None

    def failure_reply(self, kind: str, request: Request) -> Reply:
        if kind in {"expired", "revoked"}:
            return problem(401, "Unauthorized", "Unauthorized")
        if kind == "rate_limited":
            reset = int(time.time()) + RATE_LIMIT_RESET_IN
            reply = problem(429, "Too Many Requests", "Too Many Requests")
            reply.headers.update(
                {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}
            )
            return reply
        if kind == "permission":
            return problem(
                403,
                "Client Forbidden",
                "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from "
                "a Twitter developer App that is attached to a Project.",
                "https://api.twitter.com/2/problems/client-forbidden",
                reason="client-not-enrolled",
                required_enrollment="Appropriate Level of API Access",
            )
        if kind == "not_found":
            return problem(404, "Not Found Error", "Could not find the requested resource.")
        if kind == "server_error":
            return problem(503, "Service Unavailable", "Service Unavailable")
        if kind == "malformed":
            return text_reply('{"data": [{"id": "1", "te', 200, "application/json")
        if kind == "token_error":
            return self.token_error_reply()
        if kind == "token_without_access":
            return json_reply({"token_type": "bearer", "expires_in": LIFETIME})
        raise ValueError(kind)

    def me(self, request: Request) -> Reply:
        refused = self.check_token(request, "users.read")
        if refused is not None:
            return refused
        user: dict[str, Any] = {**self.users[USER_ID]}
        fields = request.query.get("user.fields", "")
        if "public_metrics" in fields:
            user["public_metrics"] = {"followers_count": 2500, "following_count": 12, "tweet_count": 340}
        if "verified_type" in fields:
            user["verified_type"] = "none"
        return json_reply({"data": user})

    def user_tweets(self, request: Request, user_id: str) -> Reply:
        refused = self.check_token(request)
        if refused is not None:
            return refused
        tweets = [tweet for tweet in self.tweets if tweet["author_id"] == user_id]
        limit = int(request.query.get("max_results", "10"))
        if not 5 <= limit <= 100:
            return problem(400, "Invalid Request", "The `max_results` query parameter value is not between 5 and 100")
        return json_reply({"data": tweets[:limit], "meta": {"result_count": len(tweets[:limit])}})

    def lookup(self, request: Request, tweet_id: str) -> Reply:
        refused = self.check_token(request)
        if refused is not None:
            return refused
        tweet = next((tweet for tweet in self.tweets if tweet["id"] == tweet_id), None)
        if tweet is None:
            return self._resource_not_found(tweet_id)
        return json_reply({"data": tweet})

    def search(self, request: Request) -> Reply:
        refused = self.check_token(request)
        if refused is not None:
            return refused
        query = request.query.get("query", "")
        conversation = query.removeprefix("conversation_id:")
        limit = int(request.query.get("max_results", "10"))
        if not query.startswith("conversation_id:") or not 10 <= limit <= 100:
            return problem(400, "Invalid Request", "One or more parameters to your request was invalid.")
        items = self.replies.get(conversation, [])
        page, meta = self._page(items, request.query.get("next_token"), limit, "next_token")
        if page is None:
            return problem(400, "Invalid Request", "The `next_token` query parameter value is not valid.")
        authors = {str(item["author_id"]) for item in page}
        users = [
            _user(number)
            for number in range(200)
            if _user(number)["id"] in authors and "author_id" in request.query.get("expansions", "")
        ]
        if USER_ID in authors:
            users.append({**self.users[USER_ID], "public_metrics": {"followers_count": 2500}})
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = page
            body["includes"] = {"users": users}
        return json_reply(body)

    def liking_users(self, request: Request, tweet_id: str) -> Reply:
        refused = self.check_token(request, "like.read")
        if refused is not None:
            return refused
        tweet = next((tweet for tweet in self.tweets if tweet["id"] == tweet_id), None)
        if tweet is None:
            return self._resource_not_found(tweet_id)
        likers = [
            {key: _user(number)[key] for key in ("id", "name", "username")}
            for number in range(tweet["public_metrics"]["like_count"])
        ]
        return self._list(request, likers, 100)

    def followers(self, request: Request, user_id: str) -> Reply:
        refused = self.check_token(request, "follows.read")
        if refused is not None:
            return refused
        if user_id != USER_ID:
            return self._resource_not_found(user_id, "user")
        followers = [
            {"id": f"16{number:017d}", "name": f"Follower {number}", "username": f"follower_{number}"}
            for number in range(2500)
        ]
        return self._list(request, followers, 1000)

    def publish(self, request: Request) -> Reply:
        refused = self.check_token(request, "tweet.write")
        if refused is not None:
            return refused
        body = request.json()
        if not isinstance(body, dict) or not body.get("text"):
            return problem(400, "Invalid Request", "One or more parameters to your request was invalid.")
        tweet_id = f"18800000000000{len(self.published):05d}"
        self.published.append({"id": tweet_id, **body})
        return json_reply({"data": {"id": tweet_id, "text": body["text"]}}, 201)

    def _list(self, request: Request, items: list[dict[str, Any]], largest: int) -> Reply:
        limit = int(request.query.get("max_results", "100"))
        if not 1 <= limit <= largest:
            return problem(400, "Invalid Request", "The `max_results` query parameter value is out of range.")
        page, meta = self._page(items, request.query.get("pagination_token"), limit, "pagination_token")
        if page is None:
            return problem(400, "Invalid Request", "The `pagination_token` query parameter value is not valid.")
        return json_reply({"data": page, "meta": meta} if page else {"meta": meta})

    def _page(
        self, items: list[dict[str, Any]], token: str | None, limit: int, name: str
    ) -> tuple[list[dict[str, Any]] | None, dict[str, Any]]:
        start = _index_of(token)
        if start is None:
            return None, {}
        page = items[start : start + limit]
        meta: dict[str, Any] = {"result_count": len(page)}
        if start + limit < len(items):
            meta["next_token"] = _token_of(start + limit)
        if start:
            meta["previous_token"] = _token_of(max(0, start - limit))
        return page, meta

    def _resource_not_found(self, value: str, kind: str = "tweet") -> Reply:
        return json_reply(
            {
                "errors": [
                    {
                        "value": value,
                        "detail": f"Could not find {kind} with id: [{value}].",
                        "title": "Not Found Error",
                        "resource_type": kind,
                        "parameter": "id",
                        "resource_id": value,
                        "type": "https://api.twitter.com/2/problems/resource-not-found",
                    }
                ]
            }
        )
