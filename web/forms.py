"""Small form toolkit: read a submitted form, clean each field, keep one message per field."""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from litestar import Request
from litestar.enums import RequestEncodingType

EMAIL_MAX = 254
PASSWORD_MIN = 10
PASSWORD_MAX = 256
NAME_MAX = 120

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
# Invisible characters that change the order text reads in (the "Trojan Source" ones), and U+FFFD, which stands
# for bytes that were not text.
NOT_ALLOWED = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufffd")

NOT_SENT = "This field was not sent. Reload the page and try again."
NOT_TEXT = "Enter text here, not a file."


class FieldError(ValueError):
    """A message to show next to the field."""


@dataclass
class Form:
    """What the user typed (to show it back) and what is wrong with it."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    cleaned: dict[str, Any] = field(default_factory=dict)

    @property
    def is_valid(self) -> bool:
        return not self.errors

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)


Cleaner = Callable[[str], Any]


async def read_form(request: Request[Any, Any, Any]) -> dict[str, str | None]:
    """The first value of each field as text, or None for a field sent as a file.

    A body that is not a form (JSON, say) reads as an empty one, so that every field is reported as not sent; a body
    too large or malformed raises the client error that says so rather than passing for an empty form.
    """
    content_type, _ = request.content_type
    if content_type == RequestEncodingType.URL_ENCODED:
        # Litestar reads raw bytes as Latin-1. A form is UTF-8, and a byte that is not becomes U+FFFD, which the
        # cleaners refuse, rather than other, plausible-looking text.
        values: dict[str, str | None] = {}
        for key, value in parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True):
            values.setdefault(key, value)
        return values
    data = await request.form()
    return {key: value if isinstance(value, str) else None for key, value in ((key, data.get(key)) for key in data)}


def validate(values: Mapping[str, str | None], cleaners: dict[str, Cleaner]) -> Form:
    form = Form(values={name: values.get(name) or "" for name in cleaners})
    for name, clean in cleaners.items():
        value = values.get(name)
        if value is None and name not in values and clean is clean_checkbox:
            value = ""  # a browser sends no field at all for an unticked checkbox
        if value is None:
            form.error(name, NOT_TEXT if name in values else NOT_SENT)
            continue
        try:
            form.cleaned[name] = clean(value)
        except FieldError as exc:
            form.error(name, str(exc))
    return form


def _plain_text(value: str, label: str, *, max_length: int) -> str:
    if len(value) > max_length:
        raise FieldError(f"{label} is too long (at most {max_length} characters).")
    if any(
        (unicodedata.category(char) in {"Cc", "Cs", "Co", "Cn"} and char != "\t") or char in NOT_ALLOWED
        for char in value
    ):
        raise FieldError(f"{label} contains characters that are not allowed.")
    return value


def clean_email(value: str) -> str:
    # Fullwidth or decomposed, it is the same address: one account per address however it is typed.
    value = unicodedata.normalize("NFKC", value).strip()
    if not value:
        raise FieldError("Enter your email address.")
    if len(value) > EMAIL_MAX:
        raise FieldError(f"An email address has at most {EMAIL_MAX} characters.")
    _plain_text(value, "The email address", max_length=EMAIL_MAX)
    if any(unicodedata.category(char) == "Cf" for char in value):  # invisible, so one address could pass for another
        raise FieldError("The email address contains characters that are not allowed.")
    if not EMAIL_PATTERN.match(value) or (not value.isascii() and not _idna_ok(value)):
        raise FieldError("Enter a valid email address, like name@example.com.")
    return value


def _idna_ok(value: str) -> bool:
    domain = value.rsplit("@", 1)[1]
    try:
        domain.encode("idna")
    except UnicodeError:
        return False
    return True


@cache
def common_passwords() -> frozenset[str]:
    path = Path(__file__).parent / "accounts" / "common-passwords.txt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip() for line in handle if line.strip())


def clean_new_password(value: str) -> str:
    if not value:
        raise FieldError("Choose a password.")
    if len(value) < PASSWORD_MIN:
        raise FieldError(f"Use at least {PASSWORD_MIN} characters.")
    if len(value) > PASSWORD_MAX:
        raise FieldError(f"Use at most {PASSWORD_MAX} characters.")
    if "\x00" in value or "\ufffd" in value:
        raise FieldError("The password contains characters that are not allowed.")
    # Judged as it will be hashed: a fullwidth "password123" is "password123".
    normalized = unicodedata.normalize("NFKC", value)
    if normalized.lower() in common_passwords() or len(set(normalized)) < 4:
        raise FieldError("This password is too common. Choose one that is harder to guess.")
    return value


def clean_password(value: str) -> str:
    if not value:
        raise FieldError("Enter your password.")
    if len(value) > PASSWORD_MAX:
        raise FieldError("Incorrect email or password.")
    return value


def clean_checkbox(value: str) -> bool:
    """A checkbox: ticked when the browser sends it (as `on`) or a client sends true, 1 or yes; validate() reads an
    unticked box, which browsers leave out, as False."""
    return value in {"on", "true", "1", "yes"}


def clean_name(value: str) -> str | None:
    value = " ".join(value.split())
    _plain_text(value, "The name", max_length=NAME_MAX)
    return value or None


def clean_required_text(label: str, max_length: int) -> Cleaner:
    def clean(value: str) -> str:
        value = value.strip()
        if not value:
            raise FieldError(f"Enter {label.lower()}.")
        return _plain_text(value, label, max_length=max_length)

    return clean


def clean_search(value: str | None, max_length: int = 200) -> str:
    """A search or filter term: printable text only, spaces folded, cut to length."""
    printable = "".join(
        char for char in value or "" if unicodedata.category(char)[0] != "C" and char not in NOT_ALLOWED
    )
    return " ".join(printable.split())[:max_length]


def clean_page(value: str | None) -> int:
    try:
        page = int(value or 1)
    except ValueError:
        return 1
    return min(max(page, 1), 100_000)
