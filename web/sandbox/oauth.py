"""The sandbox's OAuth 2.0 endpoints: the consent page (authorization code with PKCE S256), the token endpoint
(authorization_code and refresh_token grants, client_secret_post or client_secret_basic) and revocation (RFC 7009).

Codes live ten minutes and are single-use; refresh tokens rotate. A replayed code or refresh token revokes every
token of its grant (RFC 9700). Only SHA-256 hashes of codes and tokens are stored.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy.ext.asyncio import AsyncSession

from web.forms import read_form
from web.sandbox.api import requires_sandbox
from web.sandbox.services import (
    DEFAULT_USERNAME,
    SCOPES,
    USERNAME,
    OAuthError,
    SandboxService,
    redirect_uri,
    username_for_email,
)
from web.security import current_user
from web.settings import Settings
from web.social.providers import SANDBOX_CLIENT_ID, sandbox_client_secret

CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PERMISSIONS = {
    "profile": "read your profile",
    "posts.read": "read your posts",
    "comments.read": "read the comments on your posts",
    "likes.read": "see who liked your posts",
    "followers.read": "see your followers",
    "replies.write": "publish replies under your posts",
}


@dataclass(frozen=True)
class AuthorizationRequest:
    redirect_uri: str
    state: str
    code_challenge: str
    scope: str

    def hidden_fields(self) -> dict[str, str]:
        return {
            "client_id": SANDBOX_CLIENT_ID,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "scope": self.scope,
            "state": self.state,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }


class RefusedRequest(Exception):
    """An authorization request that cannot go back to the client: shown as an error page."""


class RedirectedError(Exception):
    """An authorization request refused with an error sent back to the (verified) redirect URI."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def _back_to_client(redirect_to: str, **params: str) -> str:
    return f"{redirect_to}?{urlencode({key: value for key, value in params.items() if value})}"


def _authorization_request(settings: Settings, params: dict[str, str | None]) -> AuthorizationRequest:
    """Check what the client sent; raise RefusedRequest or RedirectedError."""
    if params.get("client_id") != SANDBOX_CLIENT_ID:
        raise RefusedRequest("This application is not registered with the sandbox (unknown client_id).")
    expected = redirect_uri(settings)
    if params.get("redirect_uri") != expected:
        raise RefusedRequest(f"The sandbox only sends people back to {expected}, which this request did not name.")
    state = params.get("state") or ""

    def refuse(error: str, description: str) -> RedirectedError:
        return RedirectedError(_back_to_client(expected, error=error, error_description=description, state=state))

    if params.get("response_type") != "code":
        raise refuse("unsupported_response_type", "The sandbox only issues authorization codes (response_type=code).")
    if not state or len(state) > 500:
        raise refuse("invalid_request", "state is required (at most 500 characters).")
    if params.get("code_challenge_method") != "S256" or not CODE_CHALLENGE.match(params.get("code_challenge") or ""):
        raise refuse("invalid_request", "PKCE is required: a code_challenge with code_challenge_method=S256.")
    requested = (params.get("scope") or " ".join(SCOPES)).split()
    if not requested or any(scope not in SCOPES for scope in requested):
        raise refuse("invalid_scope", f"The sandbox's scopes are: {', '.join(SCOPES)}.")
    return AuthorizationRequest(expected, state, params.get("code_challenge") or "", " ".join(dict.fromkeys(requested)))


def _consent_page(
    request: AuthorizationRequest, username: str, error: str | None = None, status_code: int = 200
) -> Template:
    return Template(
        template_name="sandbox/consent.html",
        context={
            "authorization": request,
            "permissions": [PERMISSIONS[scope] for scope in request.scope.split()],
            "username": username,
            "username_error": error,
        },
        status_code=status_code,
    )


def _refused_page(message: str) -> Template:
    return Template(
        template_name="errors/error.html",
        context={"status_code": 400, "title": "This connection request is not valid", "message": message},
        status_code=400,
    )


def _oauth_error(error: OAuthError) -> Response[Any]:
    headers = dict(NO_STORE)
    if error.status_code == 401:
        headers["WWW-Authenticate"] = 'Basic realm="sandbox"'
    return Response(
        {"error": error.error, "error_description": error.description}, status_code=error.status_code, headers=headers
    )


def _authenticate_client(request: Request[Any, Any, Any], form: dict[str, str | None], *, required: bool) -> None:
    """client_secret_basic or client_secret_post; OAuthError invalid_client when wrong (or absent but required)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    client_id: str | None
    secret: str | None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except ValueError:
            decoded = ""
        raw_id, _, raw_secret = decoded.partition(":")
        client_id, secret = unquote(raw_id), unquote(raw_secret)
    else:
        client_id, secret = form.get("client_id"), form.get("client_secret")
    if client_id is None and secret is None and not required:
        return
    expected = sandbox_client_secret(request.app.state.settings)
    if client_id != SANDBOX_CLIENT_ID or not hmac.compare_digest((secret or "").encode(), expected.encode()):
        raise OAuthError("invalid_client", "Client authentication failed.", 401)


class SandboxOAuth(Controller):
    path = "/sandbox/oauth"
    guards = [requires_sandbox]

    @get("/authorize")
    async def consent(self, request: Request[Any, Any, Any]) -> Response[Any]:
        settings: Settings = request.app.state.settings
        try:
            authorization = _authorization_request(settings, dict(request.query_params))
        except RefusedRequest as refused:
            return _refused_page(str(refused))
        except RedirectedError as redirected:
            return Redirect(redirected.location, status_code=HTTP_303_SEE_OTHER)
        user = current_user(request)
        return _consent_page(authorization, username_for_email(user.email) if user else DEFAULT_USERNAME)

    @post("/authorize")
    async def decide(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        settings: Settings = request.app.state.settings
        form = await read_form(request)
        try:
            authorization = _authorization_request(settings, form)
        except RefusedRequest as refused:
            return _refused_page(str(refused))
        except RedirectedError as redirected:
            return Redirect(redirected.location, status_code=HTTP_303_SEE_OTHER)
        decision = form.get("decision")
        if decision == "deny":
            location = _back_to_client(
                authorization.redirect_uri,
                error="access_denied",
                error_description="The account owner declined to connect Cleack.",
                state=authorization.state,
            )
            return Redirect(location, status_code=HTTP_303_SEE_OTHER)
        if decision != "allow":
            return _refused_page("Choose Allow or Deny.")
        username = (form.get("username") or "").strip().lower()
        if not USERNAME.match(username):
            message = (
                "A username has 2 to 30 characters: letters, digits, dots and underscores, not starting with a dot."
            )
            return _consent_page(authorization, username, message, 422)
        service = SandboxService(db_session, settings)
        account = await service.ensure_account(username)
        code = await service.issue_code(
            account, authorization.redirect_uri, authorization.code_challenge, authorization.scope
        )
        location = _back_to_client(authorization.redirect_uri, code=code, state=authorization.state)
        return Redirect(location, status_code=HTTP_303_SEE_OTHER)

    @post("/token", opt={"skip_session": True}, status_code=200)
    async def token(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        form = await read_form(request)
        service = SandboxService(db_session, request.app.state.settings)
        try:
            _authenticate_client(request, form, required=True)
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                if not form.get("code"):
                    raise OAuthError("invalid_request", "code is required.")
                tokens = await service.exchange_code(
                    form["code"] or "", form.get("redirect_uri"), form.get("code_verifier")
                )
            elif grant_type == "refresh_token":
                if not form.get("refresh_token"):
                    raise OAuthError("invalid_request", "refresh_token is required.")
                tokens = await service.refresh(form["refresh_token"] or "")
            elif not grant_type:
                raise OAuthError("invalid_request", "grant_type is required.")
            else:
                raise OAuthError("unsupported_grant_type", "The sandbox accepts authorization_code and refresh_token.")
        except OAuthError as error:
            return _oauth_error(error)
        return Response(tokens.as_json(), status_code=200, headers=NO_STORE)

    @post("/revoke", opt={"skip_session": True}, status_code=200)
    async def revoke(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        form = await read_form(request)
        try:
            # The token itself proves the right to withdraw it; client credentials, when sent, must be right.
            _authenticate_client(request, form, required=False)
            if not form.get("token"):
                raise OAuthError("invalid_request", "token is required.")
        except OAuthError as error:
            return _oauth_error(error)
        await SandboxService(db_session, request.app.state.settings).revoke_token(form["token"] or "")
        return Response(b"", status_code=200, headers=NO_STORE)
