"""Act as a creator's browser through an OAuth dance with the sandbox platform."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tests.conftest import post_form


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value, label)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(Form(values.get("action", ""), values.get("method", "get").lower()))
        elif not self.forms:
            return
        elif tag == "input" and values.get("type") not in {"submit", "checkbox", "radio"} and values.get("name"):
            self.forms[-1].fields[values["name"]] = values.get("value", "")
        elif tag == "button" and values.get("type", "submit") == "submit":
            self._button = [values.get("name", ""), values.get("value", ""), ""]

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button[2] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            name, value, label = self._button
            self.forms[-1].buttons.append((name, value, label.strip()))
            self._button = None


def forms_of(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


async def start(client: httpx.AsyncClient, platform: str = "sandbox") -> httpx.Response:
    """Press "Connect": the app answers with a redirect to the platform's consent page."""
    response = await post_form(client, f"/accounts/{platform}/connect", {})
    assert response.status_code == 303, response.text
    return response


async def consent(client: httpx.AsyncClient, authorize_url: str, *, allow: bool = True, username: str = "") -> str:
    """Answer the sandbox's consent page; returns the callback URL the platform sends the browser to."""
    page = await client.get(authorize_url)
    assert page.status_code == 200, page.text
    form = next(form for form in forms_of(page.text) if form.method == "post")
    wanted = "allow" if allow else "deny"
    name, value, _ = next(button for button in form.buttons if wanted in (button[1] + " " + button[2]).lower())
    data = dict(form.fields)
    if username:
        data["username"] = username
    if name:
        data[name] = value
    action = urljoin(str(page.url), form.action or str(page.url))
    answer = await client.post(action, data=data)
    assert answer.status_code in (302, 303), answer.text
    return answer.headers["location"]


async def callback(client: httpx.AsyncClient, url: str) -> httpx.Response:
    parts = urlsplit(url)
    return await client.get(f"{parts.path}?{parts.query}")


async def connect_sandbox(client: httpx.AsyncClient, username: str = "") -> httpx.Response:
    """The whole dance; returns the app's answer to the callback."""
    started = await start(client)
    back = await consent(client, started.headers["location"], username=username)
    return await callback(client, back)


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
