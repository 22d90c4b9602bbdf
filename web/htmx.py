"""Page-or-fragment rendering and redirects that work with and without htmx."""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_200_OK, HTTP_303_SEE_OTHER


def wants_fragment(request: Request[Any, Any, Any]) -> bool:
    """An htmx request that is not a boosted navigation asks for a piece of the page."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted  # type: ignore[union-attr]


def render(
    request: Request[Any, Any, Any],
    template: str,
    context: dict[str, Any] | None = None,
    *,
    fragment: str | None = None,
    status_code: int = HTTP_200_OK,
    cookies: list[Cookie] | None = None,
) -> Template:
    name = fragment if fragment and wants_fragment(request) else template
    return Template(template_name=name, context=context or {}, status_code=status_code, cookies=cookies or [])


def redirect(request: Request[Any, Any, Any], url: str, *, cookies: list[Cookie] | None = None) -> Response[Any]:
    """303 for browsers; for htmx, an HX-Location so that it navigates and keeps the history right."""
    if getattr(request, "htmx", None):
        # Like a boosted link: the whole body, and the new page seen from its top.
        location = json.dumps({"path": url, "target": "body", "swap": "innerHTML show:window:top"})
        return Response(content=b"", status_code=HTTP_200_OK, headers={"HX-Location": location}, cookies=cookies or [])
    return Redirect(path=url, status_code=HTTP_303_SEE_OTHER, cookies=cookies or [])


def redirect_away(request: Request[Any, Any, Any], url: str) -> Response[Any]:
    """To another site (a platform's consent page): htmx must leave the page rather than fetch it."""
    if getattr(request, "htmx", None):
        return Response(content=b"", status_code=HTTP_200_OK, headers={"HX-Redirect": url})
    return Redirect(path=url, status_code=HTTP_303_SEE_OTHER)
