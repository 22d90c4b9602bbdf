"""Bad input on every account form: empty, huge, the wrong type, odd Unicode, another spelling of a taken email.

Whatever arrives, the answer is never a 5xx. Input that is refused gets a 4xx and a human message in the field's
error paragraph, and the page keeps what was typed in the other (non-password) fields; input that is legitimately
unusual (an emoji in a name, a password in fullwidth) is accepted and stored as the user meant it.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import PASSWORD, Mailbox, csrf_token, log_in, post_form
from web.db import session_factory
from web.security import verify_password

MiB = 1024 * 1024
ORIGINAL_NAME = "Ada Lovelace"
NEW_PASSWORD = "marmalade sky ladder"


# What is sent for one field


@dataclass(frozen=True)
class Given:
    """One way of filling in a field: as form text, repeated, as a file, inside JSON, raw bytes, or not at all."""

    how: str
    value: Any = None

    @property
    def typed(self) -> str:
        """What the user meant, for the inputs that are accepted."""
        if self.how == "many":
            return str(self.value[0])
        return str(self.value)


def text(value: str) -> Given:
    return Given("text", value)


def number(value: int) -> Given:
    return Given("text", value)


def many(*values: str) -> Given:
    return Given("many", values)


def raw(value: bytes) -> Given:
    """Bytes put verbatim into an urlencoded body: percent-escapes or bytes that are not UTF-8."""
    return Given("raw", value)


FILE = Given("file")
MISSING = Given("missing")


def json_body(value: Any) -> Given:
    return Given("json", value)


@dataclass(frozen=True)
class Case:
    id: str
    given: Given
    accepted: bool
    stored: Any = ...  # what is kept when accepted; ... for exactly what was typed

    @property
    def expected(self) -> Any:
        return self.given.typed if self.stored is ... else self.stored


def fullwidth(value: str) -> str:
    """The same text as typed with a CJK input method in fullwidth mode."""
    return "".join(
        "\u3000" if char == " " else chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in value
    )


# The same wrong types, for every field
WRONG_TYPES = [
    Case("a file upload", FILE, False),
    Case("a missing field", MISSING, False),
    Case("a JSON body", json_body("Ada"), False),
    Case("a JSON number", json_body(42), False),
]

NAME_CASES = [
    Case("empty", text(""), True, stored=None),
    Case("10000 characters", text("a" * 10_000), False),
    Case("121 characters", text("a" * 121), False),
    Case("120 characters", text("a" * 120), True),
    Case("a NUL byte", text("Ada\x00Lovelace"), False),
    Case("a control character", text("Ada\x07"), False),
    Case("a right-to-left override", text("Ada \u202eecalevoL"), False),
    Case("a zero-width joiner", text("Ada 👩\u200d💻"), True),
    Case("emoji", text("Ada 🎉"), True),
    Case("combining characters", text("Zoe\u0308 Ame\u0301lie"), True),
    Case("fullwidth characters", text(fullwidth("Ada")), True),
    Case("4-byte characters", text("𠜎𠜱𠝹"), True),
    Case("runs of whitespace", text("  Ada \t  Lovelace  "), True, stored="Ada Lovelace"),
    Case("a number", number(42), True, stored="42"),
    Case("a repeated field", many("Ada", "Grace"), True),
    Case("raw UTF-8", raw(b"Ren\xc3\xa9e"), True, stored="Renée"),
    Case("percent-encoded invalid UTF-8", raw(b"Ada%FF%FE"), False),
    Case("raw invalid UTF-8", raw(b"Ada\xff\xfe"), False),
    Case("a UTF-8-encoded lone surrogate", raw(b"Ada\xed\xa0\x80"), False),
    *WRONG_TYPES,
]

EMAIL_CASES = [
    Case("empty", text(""), False),
    Case("only spaces", text("   "), False),
    Case("10000 characters", text("a" * 9988 + "@example.com"), False),
    Case("no at sign", text("ada.example.com"), False),
    Case("a NUL byte", text("ada\x00@example.com"), False),
    Case("a right-to-left override", text("\u202eada@example.com"), False),
    Case("a zero-width joiner", text("ada\u200d@example.com"), False),
    Case("a zero-width space", text("ada\u200b@example.com"), False),
    Case("emoji", text("ada🎉@example.com"), True),
    Case("combining characters", text("zoe\u0308@example.com"), True, stored="zoë@example.com"),
    Case("fullwidth characters", text(fullwidth("ada@example.com")), True, stored="ada@example.com"),
    Case("4-byte characters", text("𠜎@example.com"), True),
    Case("surrounding spaces", text("  ada@example.com  "), True, stored="ada@example.com"),
    Case("a number", number(42), False),
    Case("a repeated field", many("ada@example.com", "grace@example.com"), True),
    Case("raw UTF-8", raw(b"ren\xc3\xa9e@example.com"), True, stored="renée@example.com"),
    Case("percent-encoded invalid UTF-8", raw(b"ada%FF@example.com"), False),
    Case("raw invalid UTF-8", raw(b"ada\xff@example.com"), False),
    Case("a UTF-8-encoded lone surrogate", raw(b"ada\xed\xa0\x80@example.com"), False),
    *WRONG_TYPES,
]

NEW_PASSWORD_CASES = [
    Case("empty", text(""), False),
    Case("9 characters", text("kayak-mug"), False),
    Case("10000 characters", text(("marmalade sky " * 715)[:10_000]), False),
    Case("257 characters", text(("marmalade sky " * 20)[:257]), False),
    Case("256 characters", text(("marmalade sky " * 20)[:256]), True),
    Case("a common password", text("password123"), False),
    Case("a common password in fullwidth", text(fullwidth("password123")), False),
    Case("a number", number(1234567890), False),
    Case("a NUL byte", text("marmalade\x00sky ladder"), False),
    Case("a right-to-left override", text("\u202emarmalade sky ladder"), True),
    Case("a zero-width joiner", text("marmalade sky 👩\u200d💻"), True),
    Case("emoji", text("🐴🔋📎 marmalade"), True),
    Case("combining characters", text("zoe\u0308 ame\u0301lie kayak"), True),
    Case("fullwidth characters", text(fullwidth("marmalade sky")), True),
    Case("4-byte characters", text("𠜎𠜱𠝹 marmalade sky"), True),
    Case("a repeated field", many("marmalade sky ladder", "x"), True),
    Case("percent-encoded invalid UTF-8", raw(b"marmalade%FF%FEsky"), False),
    Case("raw invalid UTF-8", raw(b"marmalade\xff\xfesky"), False),
    Case("a UTF-8-encoded lone surrogate", raw(b"marmalade\xed\xa0\x80sky"), False),
    *WRONG_TYPES,
]

# The password of an existing account (login, current password): anything but the right one is refused.
CURRENT_PASSWORD_CASES = [
    Case("empty", text(""), False),
    Case("10000 characters", text("a" * 10_000), False),
    Case("a wrong password", text("not the password at all"), False),
    Case("a NUL byte", text(PASSWORD + "\x00"), False),
    Case("a number", number(42), False),
    Case("raw invalid UTF-8", raw(b"correct horse\xff"), False),
    Case("the password", text(PASSWORD), True),
    Case("the password in fullwidth", text(fullwidth(PASSWORD)), True),
    Case("a repeated field", many(PASSWORD, "x"), True),
    *WRONG_TYPES,
]


def refused(cases: list[Case]) -> list[Any]:
    return [pytest.param(case, id=case.id) for case in cases if not case.accepted]


def accepted(cases: list[Case]) -> list[Any]:
    return [pytest.param(case, id=case.id) for case in cases if case.accepted]


def per_field(fields: dict[str, list[Case]], *, keep: Callable[[Case], bool] = lambda case: True) -> list[Any]:
    return [
        pytest.param(name, case, id=f"{name}-{case.id}")
        for name, cases in fields.items()
        for case in cases
        if keep(case)
    ]


# Sending and reading


async def submit(
    client: httpx.AsyncClient, url: str, fields: dict[str, str], name: str, given: Given, **kwargs: Any
) -> httpx.Response:
    """Post the form with `fields`, except that `name` is filled in as `given` says."""
    token = await csrf_token(client)
    others = {key: value for key, value in fields.items() if key != name}
    match given.how:
        case "text" | "many":
            value = list(given.value) if given.how == "many" else given.value
            return await client.post(url, data={**others, name: value, "_csrf_token": token}, **kwargs)
        case "file":
            upload = {name: ("name.txt", b"ada@example.com", "text/plain")}
            return await client.post(url, data={**others, "_csrf_token": token}, files=upload, **kwargs)
        case "missing":
            return await client.post(url, data={**others, "_csrf_token": token}, **kwargs)
        case "json":
            headers = {"x-csrftoken": token, **kwargs.pop("headers", {})}
            return await client.post(url, json={**fields, name: given.value}, headers=headers, **kwargs)
        case "raw":
            body = urlencode({**others, "_csrf_token": token}).encode() + b"&" + name.encode() + b"=" + given.value
            headers = {"content-type": "application/x-www-form-urlencoded", **kwargs.pop("headers", {})}
            return await client.post(url, content=body, headers=headers, **kwargs)
    raise AssertionError(given.how)


def field_error(page: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="{name}-error"[^>]*>(.*?)</p>', page, re.S)
    assert found, f"no error paragraph for {name}"
    return html.unescape(found.group(1)).strip()


def input_value(page: str, name: str) -> str | None:
    tag = re.search(rf'<input id="{name}" name="{name}"[^>]*>', page, re.S)
    assert tag, f"no input for {name}"
    value = re.search(r'\svalue="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else None


def hidden_value(page: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden input {name}"
    return html.unescape(found.group(1))


def assert_refused(response: httpx.Response, name: str, *, status: int | None = None) -> str:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if status is not None:
        assert response.status_code == status
    message = field_error(response.text, name)
    assert message, f"no message next to {name}"
    assert len(message.split()) >= 2 and "<" not in message, message
    return message


def assert_kept(response: httpx.Response, fields: dict[str, str], refused_name: str, given: Given) -> None:
    """The other fields show what was typed; password fields never echo anything."""
    for name, value in fields.items():
        if name == refused_name:
            continue
        if "password" in name:
            assert input_value(response.text, name) is None
        elif given.how != "json":  # a JSON body is not a form: nothing of it was read
            assert input_value(response.text, name) == value


async def users(engine: AsyncEngine) -> list[tuple[str, str | None]]:
    async with session_factory(engine)() as session:
        rows = await session.execute(sa.text("SELECT email, full_name FROM users ORDER BY created_at"))
        return [(row.email, row.full_name) for row in rows]


async def full_name(engine: AsyncEngine, email: str) -> str | None:
    async with session_factory(engine)() as session:
        return await session.scalar(sa.text("SELECT full_name FROM users WHERE email = :email"), {"email": email})


async def password_is(engine: AsyncEngine, email: str, password: str) -> bool:
    async with session_factory(engine)() as session:
        stored = await session.scalar(sa.text("SELECT password_hash FROM users WHERE email = :email"), {"email": email})
    return await verify_password(stored, password)


async def set_name(client: httpx.AsyncClient, name: str) -> None:
    response = await post_form(client, "/settings/profile", {"full_name": name})
    assert response.status_code == 303


# Sign-up

SIGNUP = {"full_name": ORIGINAL_NAME, "email": "ada@example.com", "password": PASSWORD}
SIGNUP_FIELDS = {"full_name": NAME_CASES, "email": EMAIL_CASES, "password": NEW_PASSWORD_CASES}


@pytest.mark.parametrize(("name", "case"), per_field(SIGNUP_FIELDS, keep=lambda case: not case.accepted))
async def test_signup_refuses_bad_input_next_to_the_field_keeps_the_rest_and_creates_nothing(
    client: httpx.AsyncClient, engine: AsyncEngine, name: str, case: Case
) -> None:
    response = await submit(client, "/signup", SIGNUP, name, case.given)

    assert_refused(response, name, status=422)
    assert_kept(response, SIGNUP, name, case.given)
    assert await users(engine) == []


@pytest.mark.parametrize(("name", "case"), per_field(SIGNUP_FIELDS, keep=lambda case: case.accepted))
async def test_signup_accepts_unusual_but_legitimate_input_as_typed(
    client: httpx.AsyncClient, engine: AsyncEngine, new_client: Any, name: str, case: Case
) -> None:
    response = await submit(client, "/signup", SIGNUP, name, case.given)

    assert response.status_code == 303, field_error(response.text, name)
    assert response.headers["location"] == "/signup/sent"
    [(email, stored_name)] = await users(engine)
    if name == "full_name":
        assert (email, stored_name) == (SIGNUP["email"], case.expected)
    elif name == "email":
        assert (email, stored_name) == (case.expected, ORIGINAL_NAME)
    else:
        assert await password_is(engine, email, case.given.typed)
        async with session_factory(engine)() as session:
            await session.execute(sa.text("UPDATE users SET email_verified = true"))
            await session.commit()
        assert (await log_in(new_client(), email, case.given.typed)).status_code == 303


# The same address in another spelling

EXISTING = "creator@example.com"


@pytest.mark.parametrize(
    "spelling",
    [
        "Creator@Example.COM",
        "CREATOR@EXAMPLE.COM",
        "creator@EXAMPLE.com",
        "  creator@example.com  ",
        fullwidth("creator") + "@example.com",
        fullwidth("CREATOR@example.com"),
    ],
)
async def test_signup_with_a_taken_email_in_another_spelling_is_refused_and_makes_no_second_account(
    client: httpx.AsyncClient, engine: AsyncEngine, make_user: Any, spelling: str
) -> None:
    await make_user(email=EXISTING)

    response = await post_form(client, "/signup", {**SIGNUP, "email": spelling})

    assert "already exists" in assert_refused(response, "email", status=422)
    assert input_value(response.text, "full_name") == ORIGINAL_NAME
    assert [email for email, _ in await users(engine)] == [EXISTING]


@pytest.mark.parametrize(
    ("existing", "spelling"),
    [
        ("Creator@Example.COM", "creator@example.com"),
        ("zoë@example.com", "ZOË@example.com"),
        ("zoë@example.com", "zoe\u0308@example.com"),
        ("ÄRGER@example.com", "ärger@example.com"),
        ("İPEK@example.com", "ipek@example.com"),
    ],
    ids=["ascii", "unicode-case", "decomposed", "umlaut", "dotted-capital-i"],
)
async def test_signup_sees_an_account_whatever_case_or_normal_form_it_was_made_in(
    client: httpx.AsyncClient, engine: AsyncEngine, make_user: Any, existing: str, spelling: str
) -> None:
    await make_user(email=existing)

    response = await post_form(client, "/signup", {**SIGNUP, "email": spelling})

    assert "already exists" in assert_refused(response, "email", status=422)
    assert [email for email, _ in await users(engine)] == [existing]


async def test_concurrent_signups_in_different_cases_make_exactly_one_account(
    new_client: Any, engine: AsyncEngine
) -> None:
    spellings = ["race@example.com", "Race@example.com", "RACE@EXAMPLE.COM", "race@Example.com", "rAcE@eXaMpLe.CoM"]
    clients = [new_client() for _ in spellings]
    for made in clients:
        await csrf_token(made)

    signups = (
        post_form(made, "/signup", {**SIGNUP, "email": spelling})
        for made, spelling in zip(clients, spellings, strict=True)
    )
    responses = await asyncio.gather(*signups)

    assert sorted(response.status_code for response in responses) == [303, 422, 422, 422, 422]
    assert len(await users(engine)) == 1


@pytest.mark.parametrize(
    ("email", "spelling"),
    [
        ("creator@example.com", "Creator@Example.COM"),
        ("creator@example.com", fullwidth("creator@example.com")),
        ("İPEK@example.com", "İPEK@example.com"),
        ("ΟΔΥΣΣΕΑΣ@example.com", "ΟΔΥΣΣΕΑΣ@example.com"),
        ("ΟΔΥΣΣΕΑΣ@example.com", "οδυσσεασ@example.com"),
    ],
    ids=["ascii-case", "fullwidth", "dotted-capital-i", "greek-capital-sigma", "greek-lower"],
)
async def test_login_finds_the_account_in_any_case_or_width_of_its_email(
    client: httpx.AsyncClient, make_user: Any, email: str, spelling: str
) -> None:
    await make_user(email=email)

    response = await log_in(client, spelling)

    assert response.status_code == 303, field_error(response.text, "password")


# Login

LOGIN_FIELDS = {"email": EMAIL_CASES, "password": CURRENT_PASSWORD_CASES}


@pytest.mark.parametrize(("name", "case"), per_field(LOGIN_FIELDS, keep=lambda case: not case.accepted))
async def test_login_refuses_bad_input_next_to_the_field_keeping_the_email_and_next(
    client: httpx.AsyncClient, make_user: Any, engine: AsyncEngine, name: str, case: Case
) -> None:
    user = await make_user(email="ada@example.com")
    fields = {"email": user.email, "password": user.password}

    response = await submit(client, "/login", {**fields, "next": "/credits"}, name, case.given)

    # A well-formed password that is not the right one is refused next to the password, as any wrong password is.
    assert_refused(response, name)
    assert_kept(response, fields, name, case.given)
    if case.given.how != "json":
        assert hidden_value(response.text, "next") == "/credits"
    assert "cleack_session" not in response.cookies


@pytest.mark.parametrize(
    "case",
    [param for param in accepted(EMAIL_CASES) if param.values[0].expected != "ada@example.com"],
)
async def test_login_with_a_well_formed_unknown_email_says_incorrect_next_to_the_password(
    client: httpx.AsyncClient, make_user: Any, case: Case
) -> None:
    await make_user(email="ada@example.com")

    response = await submit(client, "/login", {"email": "", "password": PASSWORD}, "email", case.given)

    assert assert_refused(response, "password", status=400) == "Incorrect email or password."


@pytest.mark.parametrize(
    ("name", "case"),
    per_field(LOGIN_FIELDS, keep=lambda case: case.accepted and case.expected in {"ada@example.com", PASSWORD}),
)
async def test_login_accepts_the_right_credentials_however_they_are_typed(
    client: httpx.AsyncClient, make_user: Any, name: str, case: Case
) -> None:
    await make_user(email="ada@example.com")

    response = await submit(
        client, "/login", {"email": "ada@example.com", "password": PASSWORD, "next": "/credits"}, name, case.given
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/credits"


@pytest.mark.parametrize(
    ("given", "location"),
    [
        (text(""), "/draws"),
        (text("/" + "a" * 10_000), "/" + "a" * 10_000),
        (many("/credits", "/settings"), "/credits"),
        (FILE, "/draws"),
        (MISSING, "/draws"),
        (number(42), "/draws"),
        (text("//evil.example"), "/draws"),
        (text("/\\evil.example"), "/draws"),
        (text("https://evil.example/"), "/draws"),
        (text(" /credits"), "/draws"),
        (text("/a\x00b"), "/a%00b"),
        (text("/\r\nSet-Cookie: stolen=1"), "/%0D%0ASet-Cookie:%20stolen=1"),
        (text("/crédits 🎉"), "/cr%C3%A9dits%20%F0%9F%8E%89"),
        (raw(b"/cr\xff"), "/cr%EF%BF%BD"),
    ],
    ids=[
        "empty",
        "10000-characters",
        "repeated",
        "file",
        "missing",
        "number",
        "protocol-relative",
        "backslash",
        "absolute",
        "leading-space",
        "nul",
        "crlf",
        "unicode",
        "invalid-utf8",
    ],
)
async def test_login_next_only_ever_leads_to_a_path_on_this_site(
    client: httpx.AsyncClient, make_user: Any, given: Given, location: str
) -> None:
    user = await make_user()

    response = await submit(client, "/login", {"email": user.email, "password": user.password}, "next", given)

    assert response.status_code == 303
    assert response.headers["location"] == location
    assert "stolen" not in response.cookies


# Forgot password and a new verification link


@pytest.mark.parametrize("url", ["/forgot-password", "/verify-email/resend"])
@pytest.mark.parametrize("case", refused(EMAIL_CASES))
async def test_email_only_forms_refuse_bad_input_next_to_the_field_and_send_nothing(
    client: httpx.AsyncClient, mailbox: Mailbox, make_user: Any, url: str, case: Case
) -> None:
    await make_user(email="ada@example.com")

    response = await submit(client, url, {"email": "ada@example.com"}, "email", case.given)

    assert_refused(response, "email", status=422)
    assert mailbox.messages == []


@pytest.mark.parametrize("case", accepted(EMAIL_CASES))
async def test_forgot_password_accepts_any_well_formed_email_with_the_same_answer(
    client: httpx.AsyncClient, mailbox: Mailbox, make_user: Any, case: Case
) -> None:
    await make_user(email="ada@example.com")

    response = await submit(client, "/forgot-password", {"email": ""}, "email", case.given)

    assert response.status_code == 200
    assert "If an account exists for" in response.text
    if case.expected == "ada@example.com":
        assert mailbox.wait_for("ada@example.com")


@pytest.mark.parametrize("case", accepted(EMAIL_CASES))
async def test_resending_the_verification_accepts_any_well_formed_email(client: httpx.AsyncClient, case: Case) -> None:
    response = await submit(client, "/verify-email/resend", {"email": ""}, "email", case.given)

    assert response.status_code == 303
    assert response.headers["location"] == "/signup/sent"


# Password reset


async def reset_path(client: httpx.AsyncClient, mailbox: Mailbox, email: str) -> str:
    response = await post_form(client, "/forgot-password", {"email": email})
    assert response.status_code == 200
    return httpx.URL(mailbox.last_link(email)).path


@pytest.mark.parametrize("case", refused(NEW_PASSWORD_CASES))
async def test_reset_refuses_a_bad_password_next_to_the_field_and_the_link_still_works(
    client: httpx.AsyncClient, mailbox: Mailbox, make_user: Any, engine: AsyncEngine, case: Case
) -> None:
    user = await make_user()
    path = await reset_path(client, mailbox, user.email)

    response = await submit(client, path, {"password": NEW_PASSWORD}, "password", case.given)

    assert_refused(response, "password", status=422)
    assert input_value(response.text, "password") is None
    assert await password_is(engine, user.email, PASSWORD)
    assert (await client.get(path)).status_code == 200


@pytest.mark.parametrize("case", accepted(NEW_PASSWORD_CASES))
async def test_reset_accepts_any_strong_password_and_it_logs_in(
    client: httpx.AsyncClient, mailbox: Mailbox, make_user: Any, new_client: Any, case: Case
) -> None:
    user = await make_user()
    path = await reset_path(client, mailbox, user.email)

    response = await submit(client, path, {"password": ""}, "password", case.given)

    assert response.status_code == 303
    assert (await log_in(new_client(), user.email, case.given.typed)).status_code == 303
    assert (await log_in(new_client(), user.email, PASSWORD)).status_code == 400


@pytest.mark.parametrize(
    "token",
    ["%00", "%FF%FE", "%ED%A0%80", "a" * 10_000, "%E2%80%AE", "🎉", "%20"],
    ids=["nul", "invalid-utf8", "surrogate", "10000-characters", "rtl-override", "emoji", "space"],
)
async def test_an_odd_token_in_a_link_is_refused_with_a_message(client: httpx.AsyncClient, token: str) -> None:
    for path in (f"/reset-password/{token}", f"/verify-email/{token}"):
        response = await post_form(client, path, {"password": NEW_PASSWORD})
        assert response.status_code == 400, path
        assert "This link is not valid" in response.text
    page = await client.get(f"/reset-password/{token}")
    assert page.status_code == 400
    assert "This link is not valid" in page.text


# Settings: profile and password


@pytest.mark.parametrize("case", refused(NAME_CASES))
async def test_profile_refuses_a_bad_name_next_to_the_field_and_keeps_the_saved_one(
    logged_in: Any, engine: AsyncEngine, case: Case
) -> None:
    client, user = await logged_in()
    await set_name(client, ORIGINAL_NAME)

    response = await submit(client, "/settings/profile", {"full_name": "Grace Hopper"}, "full_name", case.given)

    assert_refused(response, "full_name", status=422)
    assert await full_name(engine, user.email) == ORIGINAL_NAME


@pytest.mark.parametrize("case", accepted(NAME_CASES))
async def test_profile_accepts_any_legitimate_name(logged_in: Any, engine: AsyncEngine, case: Case) -> None:
    client, user = await logged_in()
    await set_name(client, ORIGINAL_NAME)

    response = await submit(client, "/settings/profile", {"full_name": ""}, "full_name", case.given)

    assert response.status_code == 303
    assert response.headers["location"] == "/settings?notice=profile_saved"
    assert await full_name(engine, user.email) == case.expected
    page = await client.get("/settings")
    assert input_value(page.text, "full_name") == (case.expected or "")


PASSWORD_FORM = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
PASSWORD_FIELDS = {"current_password": CURRENT_PASSWORD_CASES, "new_password": NEW_PASSWORD_CASES}


@pytest.mark.parametrize(("name", "case"), per_field(PASSWORD_FIELDS, keep=lambda case: not case.accepted))
async def test_password_change_refuses_bad_input_next_to_the_field_and_keeps_the_password(
    logged_in: Any, engine: AsyncEngine, name: str, case: Case
) -> None:
    client, user = await logged_in()
    await set_name(client, ORIGINAL_NAME)

    response = await submit(client, "/settings/password", PASSWORD_FORM, name, case.given)

    assert_refused(response, name)
    assert input_value(response.text, "current_password") is None
    assert input_value(response.text, "new_password") is None
    assert input_value(response.text, "full_name") == ORIGINAL_NAME
    assert await password_is(engine, user.email, PASSWORD)


@pytest.mark.parametrize(("name", "case"), per_field(PASSWORD_FIELDS, keep=lambda case: case.accepted))
async def test_password_change_accepts_the_password_however_typed_and_the_new_one_logs_in(
    logged_in: Any, new_client: Any, name: str, case: Case
) -> None:
    client, user = await logged_in()

    response = await submit(client, "/settings/password", PASSWORD_FORM, name, case.given)

    assert response.status_code == 303
    new_password = case.given.typed if name == "new_password" else NEW_PASSWORD
    assert (await log_in(new_client(), user.email, new_password)).status_code == 303


# Inline validation

INLINE = {
    ("signup", "full_name"): NAME_CASES,
    ("signup", "email"): EMAIL_CASES,
    ("signup", "password"): NEW_PASSWORD_CASES,
    ("login", "email"): EMAIL_CASES,
    ("forgot", "email"): EMAIL_CASES,
    ("reset", "password"): NEW_PASSWORD_CASES,
    ("profile", "full_name"): NAME_CASES,
    ("password", "new_password"): NEW_PASSWORD_CASES,
}


@pytest.mark.parametrize(
    ("form", "name", "case"),
    [
        pytest.param(form, name, case, id=f"{form}-{name}-{case.id}")
        for (form, name), cases in INLINE.items()
        for case in cases
    ],
)
async def test_inline_validation_answers_with_the_fields_message_or_none(
    client: httpx.AsyncClient, form: str, name: str, case: Case
) -> None:
    response = await submit(client, f"/forms/validate/{form}/{name}", {name: ""}, name, case.given)

    assert response.status_code == 200
    assert response.text.startswith(f'<p class="field-error" id="{name}-error"')
    message = field_error(response.text, name)
    if case.accepted:
        assert message == ""
    else:
        assert len(message.split()) >= 2


@pytest.mark.parametrize(
    ("form", "name"),
    [
        ("signup", "next"),
        ("login", "password"),
        ("password", "current_password"),
        ("signup", "x" * 10_000),
        ("%00", "%FF"),
        ("__class__", "__init__"),
    ],
)
async def test_inline_validation_of_an_unknown_form_or_field_is_not_found(
    client: httpx.AsyncClient, form: str, name: str
) -> None:
    response = await post_form(client, f"/forms/validate/{form}/{name}", {name: "x"})

    assert response.status_code == 404


# The ledger's page number


@pytest.mark.parametrize(
    "query",
    [
        "page=",
        "page=0",
        "page=-1",
        "page=abc",
        "page=" + "9" * 10_000,
        "page=%EF%BC%92",
        "page=1.5",
        "page=%00",
        "page=%FF",
        "page=1&page=2",
        "page=99999999",
    ],
)
async def test_the_ledger_shows_a_page_whatever_the_page_number(logged_in: Any, query: str) -> None:
    client, _ = await logged_in()

    response = await client.get(f"/credits?{query}")

    assert response.status_code == 200
    assert 'id="ledger"' in response.text


# Whole requests: no CSRF token, too large, not UTF-8

UNSAFE_ROUTES = [
    "/signup",
    "/login",
    "/logout",
    "/forgot-password",
    "/verify-email/resend",
    "/verify-email/some-token",
    "/reset-password/some-token",
    "/forms/validate/signup/email",
    "/settings/profile",
    "/settings/password",
    "/settings/sessions/00000000-0000-0000-0000-000000000000/revoke",
]


@pytest.mark.parametrize("url", UNSAFE_ROUTES)
@pytest.mark.parametrize(
    "how", ["no-token", "wrong-token", "htmx-without-token", "token-without-cookie"], ids=lambda how: how
)
async def test_a_post_without_the_csrf_token_is_refused_with_403_and_a_clear_message(
    logged_in: Any, new_client: Any, url: str, how: str
) -> None:
    client, _ = await logged_in()
    data = {"full_name": "Mallory", "email": "mallory@example.com", "password": NEW_PASSWORD}
    token = await csrf_token(client)
    if how == "no-token":
        response = await client.post(url, data=data)
    elif how == "wrong-token":
        response = await client.post(url, data={**data, "_csrf_token": token[:-4] + "abcd"})
    elif how == "htmx-without-token":
        response = await client.post(url, data=data, headers={"HX-Request": "true"})
    else:
        response = await new_client().post(url, data={**data, "_csrf_token": token})

    assert response.status_code == 403
    assert "This form has expired" in response.text
    assert "reload the page and try again" in response.text


async def test_without_the_csrf_token_nothing_changes(logged_in: Any, engine: AsyncEngine) -> None:
    client, user = await logged_in()
    await set_name(client, ORIGINAL_NAME)

    assert (await client.post("/settings/profile", data={"full_name": "Mallory"})).status_code == 403
    assert (await client.post("/signup", data=SIGNUP)).status_code == 403
    assert (await client.post("/logout", data={})).status_code == 403

    assert await users(engine) == [(user.email, ORIGINAL_NAME)]
    assert (await client.get("/settings")).status_code == 200


def large_form(token: str | None, size: int = MiB + 1) -> bytes:
    fields = urlencode({"_csrf_token": token}).encode() + b"&" if token else b""
    return fields + b"full_name=" + b"a" * size


@pytest.mark.parametrize("url", ["/signup", "/login", "/settings/profile", "/forms/validate/signup/email"])
@pytest.mark.parametrize("how", ["token-in-form", "token-in-header", "chunked", "multipart"])
async def test_a_body_larger_than_one_mebibyte_is_refused_with_413_and_changes_nothing(
    logged_in: Any, engine: AsyncEngine, url: str, how: str
) -> None:
    client, user = await logged_in()
    await set_name(client, ORIGINAL_NAME)
    token = await csrf_token(client)
    form_type = {"content-type": "application/x-www-form-urlencoded"}
    if how == "token-in-form":
        response = await client.post(url, content=large_form(token), headers=form_type)
    elif how == "token-in-header":
        response = await client.post(url, content=large_form(None), headers={**form_type, "x-csrftoken": token})
    elif how == "chunked":

        async def chunks() -> Any:
            body = large_form(token)
            for start in range(0, len(body), 64 * 1024):
                yield body[start : start + 64 * 1024]

        response = await client.post(url, content=chunks(), headers=form_type)
    else:
        files = {"full_name": ("big.txt", b"a" * (MiB + 1), "text/plain")}
        response = await client.post(url, data={"_csrf_token": token}, files=files)

    assert response.status_code == 413
    assert "Too large" in response.text
    assert await users(engine) == [(user.email, ORIGINAL_NAME)]


async def test_a_body_just_under_one_mebibyte_reaches_the_form_and_gets_a_field_message(
    logged_in: Any, engine: AsyncEngine
) -> None:
    client, user = await logged_in()
    await set_name(client, ORIGINAL_NAME)
    token = await csrf_token(client)

    response = await client.post(
        "/settings/profile",
        content=large_form(token, size=MiB - 200),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert "too long" in assert_refused(response, "full_name", status=422)
    assert await full_name(engine, user.email) == ORIGINAL_NAME


def multipart(token: str | None, name: str, value: bytes) -> bytes:
    parts = [(b"_csrf_token", token.encode())] if token else []
    parts.append((name.encode(), value))
    body = b"".join(
        b'--XX\r\nContent-Disposition: form-data; name="' + key + b'"\r\n\r\n' + data + b"\r\n" for key, data in parts
    )
    return body + b"--XX--\r\n"


@pytest.mark.parametrize("token_in", ["form", "header"])
@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe", b"Ada\xed\xa0\x80", b"Ada\xc0\x80"],
    ids=["invalid-utf8", "surrogate", "overlong-nul"],
)
async def test_a_multipart_form_that_is_not_utf8_is_refused_with_400_and_changes_nothing(
    logged_in: Any, engine: AsyncEngine, token_in: str, body: bytes
) -> None:
    client, user = await logged_in()
    await set_name(client, ORIGINAL_NAME)
    token = await csrf_token(client)
    headers = {"content-type": "multipart/form-data; boundary=XX"}
    if token_in == "header":
        headers["x-csrftoken"] = token

    body = multipart(token if token_in == "form" else None, "full_name", body)

    response = await client.post("/settings/profile", content=body, headers=headers)

    assert response.status_code == 400
    assert "not valid UTF-8" in response.text
    assert await full_name(engine, user.email) == ORIGINAL_NAME


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"full_name=Mallory"),
        ("multipart/form-data; boundary=XX", b"--XX\r\nnot a part header\r\n"),
        ("multipart/form-data; boundary=XX", b'--XX\r\nContent-Disposition: form-data; name="full_name"\r\n\r\nM'),
        ("text/plain", b"full_name=Mallory"),
        ("application/xml", b"<full_name>Mallory</full_name>"),
        ("application/x-www-form-urlencoded; charset=latin-1", b"full_name=%E9&&&=&=="),
    ],
    ids=["no-boundary", "broken-part", "truncated", "text", "xml", "odd-urlencoded"],
)
async def test_a_body_that_is_not_a_readable_form_is_refused_and_changes_nothing(
    logged_in: Any, engine: AsyncEngine, content_type: str, body: bytes
) -> None:
    client, user = await logged_in()
    await set_name(client, ORIGINAL_NAME)
    token = await csrf_token(client)

    response = await client.post(
        "/settings/profile", content=body, headers={"content-type": content_type, "x-csrftoken": token}
    )

    assert 400 <= response.status_code < 500
    assert await full_name(engine, user.email) == ORIGINAL_NAME
