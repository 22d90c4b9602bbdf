"""Small form toolkit: read a submitted form, clean each field, keep one message per field."""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request

MAX_FIELD_LENGTH = 10_000
EMAIL_MAX = 254
PASSWORD_MIN = 10
PASSWORD_MAX = 256
NAME_MAX = 120

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


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


async def read_form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Only the first value of each field, as text, whatever was sent."""
    try:
        data = await request.form()
    except Exception:  # a body that is not a form is an empty form
        return {}
    values: dict[str, str] = {}
    for key in data:
        value = data.get(key)
        values[key] = value if isinstance(value, str) else ""
    return values


def validate(values: dict[str, str], cleaners: dict[str, Cleaner]) -> Form:
    form = Form(values={name: values.get(name, "") for name in cleaners})
    for name, clean in cleaners.items():
        try:
            form.cleaned[name] = clean(values.get(name, ""))
        except FieldError as exc:
            form.error(name, str(exc))
    return form


def _plain_text(value: str, label: str, *, max_length: int) -> str:
    if len(value) > max_length:
        raise FieldError(f"{label} is too long (at most {max_length} characters).")
    if any(unicodedata.category(char) in {"Cc", "Cs", "Co", "Cn"} and char not in "\t" for char in value):
        raise FieldError(f"{label} contains characters that are not allowed.")
    return value


def clean_email(value: str) -> str:
    value = value.strip()
    if not value:
        raise FieldError("Enter your email address.")
    if len(value) > EMAIL_MAX:
        raise FieldError(f"An email address has at most {EMAIL_MAX} characters.")
    _plain_text(value, "The email address", max_length=EMAIL_MAX)
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
    if "\x00" in value:
        raise FieldError("The password contains characters that are not allowed.")
    if value.lower() in common_passwords() or len(set(value)) < 4:
        raise FieldError("This password is too common. Choose one that is harder to guess.")
    return value


def clean_password(value: str) -> str:
    if not value:
        raise FieldError("Enter your password.")
    if len(value) > PASSWORD_MAX:
        raise FieldError("Incorrect email or password.")
    return value


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


def clean_page(value: str | None) -> int:
    try:
        page = int(value or 1)
    except ValueError:
        return 1
    return min(max(page, 1), 100_000)
