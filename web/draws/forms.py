"""The draw configuration form: its fields, their cleaners, and the uploaded list of entries."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import re
import unicodedata
import uuid
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType

from web import forms
from web.forms import FieldError
from web.social.models import PLATFORMS

TITLE_MAX = 200
WINNERS_MAX = 100
ALTERNATES_MAX = 50
KEYWORDS_MAX = 20
KEYWORD_LENGTH_MAX = 50
MENTIONS_MAX = 20
FOLLOWERS_MAX = 1_000_000_000
POST_URLS_MAX = 20
POST_URL_LENGTH_MAX = 2000
SCHEDULE_HORIZON = datetime.timedelta(days=90)

LIST_MAX_BYTES = 10 * 1024 * 1024
LIST_MAX_ROWS = 100_000
# Problems listed one by one; beyond this, only their number (the list would drown the page).
LIST_PROBLEMS_SHOWN = 200
LIST_COLUMNS = ("platform", "username", "platform_user_id", "comment", "followers_count", "account_type")
LIST_PLATFORMS = (*PLATFORMS, "list")
ACCOUNT_TYPES = ("business", "personal", "creator")
IDENTITY_MAX = 128
COMMENT_MAX = 10_000
# Spreadsheets read a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@")
MENTION = re.compile(r"(?<![\w@])@[\w.]{1,64}")

CHECKBOX_RULES = (
    "require_comment",
    "require_like",
    "require_follow",
    "one_entry_per_user",
    "exclude_suspicious",
    "exclude_businesses",
)


@cache
def timezones() -> tuple[str, ...]:
    return ("UTC", *sorted(zone for zone in zoneinfo.available_timezones() if zone != "UTC" and "/" in zone))


@dataclass
class DrawSubmission:
    """What the creator sent: the plain fields, the posts ticked, and the uploaded file."""

    values: dict[str, str | None]
    posts: list[str]
    upload: UploadFile | None


async def read_draw_form(request: Request[Any, Any, Any]) -> DrawSubmission:
    values = await forms.read_form(request)
    content_type, _ = request.content_type
    upload: UploadFile | None = None
    if content_type == RequestEncodingType.URL_ENCODED:
        body = (await request.body()).decode("utf-8", "replace")
        posts = [value for key, value in parse_qsl(body, keep_blank_values=True) if key == "post"]
    else:
        data = await request.form()
        posts = [value for value in data.getall("post", []) if isinstance(value, str)]
        sent = data.get("entries_file")
        # A form sent without a chosen file carries an empty part with no file name.
        if isinstance(sent, UploadFile) and sent.filename:
            upload = sent
    return DrawSubmission(values, posts, upload)


# Cleaners


def clean_count(label: str, low: int, high: int, message: str) -> forms.Cleaner:
    def clean(value: str) -> int:
        value = value.strip()
        if not value:
            raise FieldError(f"Enter the number of {label}.")
        if not re.fullmatch(r"[0-9]{1,9}", value):
            raise FieldError(message)
        number = int(value)
        if not low <= number <= high:
            raise FieldError(message)
        return number

    return clean


def clean_optional_count(label: str, high: int) -> forms.Cleaner:
    def clean(value: str) -> int:
        value = value.strip()
        if not value:
            return 0
        if not re.fullmatch(r"[0-9]{1,10}", value) or int(value) > high:
            raise FieldError(f"{label} is a whole number from 0 to {high:,}.")
        return int(value)

    return clean


def clean_keywords(value: str) -> list[str]:
    if len(value) > 2000:
        raise FieldError("The keywords are too long (at most 2,000 characters).")
    if any(unicodedata.category(char) in {"Cc", "Cs", "Co", "Cn"} and char not in "\r\n\t" for char in value):
        raise FieldError("The keywords contain characters that are not allowed.")
    keywords: list[str] = []
    for part in re.split(r"[,\n]", value):
        keyword = " ".join(part.split())
        if not keyword or keyword.casefold() in (kept.casefold() for kept in keywords):
            continue
        if len(keyword) > KEYWORD_LENGTH_MAX:
            raise FieldError(f"A keyword has at most {KEYWORD_LENGTH_MAX} characters: “{keyword[:20]}…” is longer.")
        keywords.append(keyword)
    if len(keywords) > KEYWORDS_MAX:
        raise FieldError(f"Use at most {KEYWORDS_MAX} keywords (you gave {len(keywords)}).")
    return keywords


def clean_timezone(value: str) -> str:
    value = value.strip() or "UTC"
    if value not in timezones():
        raise FieldError("Choose a time zone from the list.")
    return value


def clean_post_urls(value: str) -> list[str]:
    urls: list[str] = []
    for line in value.splitlines():
        url = line.strip()
        if not url or url in urls:
            continue
        if len(url) > POST_URL_LENGTH_MAX or not re.fullmatch(r"https?://[^\s]+", url):
            raise FieldError(f"“{url[:80]}” is not a post address (it starts with https://).")
        urls.append(url)
    if len(urls) > POST_URLS_MAX:
        raise FieldError(f"Paste at most {POST_URLS_MAX} post addresses.")
    return urls


SETTINGS_FIELDS: dict[str, forms.Cleaner] = {
    "title": forms.clean_required_text("The title", TITLE_MAX),
    "winners_count": clean_count("winners", 1, WINNERS_MAX, f"Choose between 1 and {WINNERS_MAX} winners."),
    "alternates_count": clean_count(
        "alternates", 0, ALTERNATES_MAX, f"Choose between 0 and {ALTERNATES_MAX} alternates."
    ),
    "comment_keywords": clean_keywords,
    "min_mentions": clean_optional_count("The number of mentions", MENTIONS_MAX),
    "min_followers": clean_optional_count("The number of followers", FOLLOWERS_MAX),
    "post_urls": clean_post_urls,
    "start_at": lambda value: value.strip(),
    "timezone": clean_timezone,
}
# Fields a browser without the latest page may leave out: read as empty rather than "not sent".
OPTIONAL_FIELDS = ("comment_keywords", "min_mentions", "min_followers", "post_urls", "start_at", "timezone")


def validate_settings(submission: DrawSubmission, now: datetime.datetime) -> forms.Form:
    """Every field but the sources, which need the platforms; the form keeps one message per field."""
    values = dict(submission.values)
    for name in OPTIONAL_FIELDS:
        values.setdefault(name, "")
    form = forms.validate(values, SETTINGS_FIELDS)
    for name in CHECKBOX_RULES:
        form.cleaned[name] = bool(values.get(name))
        form.values[name] = "on" if form.cleaned[name] else ""
    form.values["post"] = "\n".join(submission.posts)
    if "start_at" in form.cleaned and "timezone" in form.cleaned:
        try:
            form.cleaned["scheduled_at"] = clean_start(form.cleaned["start_at"], form.cleaned["timezone"], now)
        except FieldError as exc:
            form.error("start_at", str(exc))
    return form


def clean_start(text: str, zone: str, now: datetime.datetime) -> datetime.datetime | None:
    """The start time typed in the creator's time zone, as UTC; None to start as soon as possible."""
    if not text:
        return None
    try:
        local = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise FieldError("Enter the start time as a date and a time, like 2026-12-24T18:00.") from None
    if local.tzinfo is not None:
        raise FieldError("Enter the start time without a time zone offset; choose the zone from the list.")
    moment = local.replace(tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(datetime.UTC)
    if moment <= now:
        raise FieldError("The start time is in the past. Leave it empty to start now.")
    if moment > now + SCHEDULE_HORIZON:
        raise FieldError("A draw can be scheduled at most 90 days ahead.")
    return moment


def draw_config(cleaned: Mapping[str, Any]) -> dict[str, Any]:
    """The config JSON (PRODUCT §3) from the cleaned fields."""
    return {
        "filters": {
            "min_followers": cleaned["min_followers"],
            "exclude_suspicious": cleaned["exclude_suspicious"],
            "exclude_businesses": cleaned["exclude_businesses"],
        },
        "rules": {
            "require_like": cleaned["require_like"],
            "require_comment": cleaned["require_comment"],
            "require_follow": cleaned["require_follow"],
            "comment_keywords": cleaned["comment_keywords"],
            "min_mentions": cleaned["min_mentions"],
            "one_entry_per_user": cleaned["one_entry_per_user"],
        },
        "winners_count": cleaned["winners_count"],
        "alternates_count": cleaned["alternates_count"],
    }


def rules_turned_on(cleaned: Mapping[str, Any]) -> list[str]:
    """The rule keys (web.social.rules) the creator switched on."""
    on = [name for name in CHECKBOX_RULES if cleaned.get(name)]
    on += [name for name in ("comment_keywords", "min_mentions", "min_followers") if cleaned.get(name)]
    return on


def parse_post_choice(value: str) -> tuple[uuid.UUID, str] | None:
    """A ticked post, sent as "<account id>:<post id>"."""
    account, _, post_id = value.partition(":")
    try:
        account_id = uuid.UUID(account)
    except ValueError:
        return None
    if not post_id or len(post_id) > 200:
        return None
    return account_id, post_id


# The uploaded list of entries


@dataclass(frozen=True)
class ListEntry:
    row: int
    platform: str
    platform_user_id: str
    username: str
    comment: str | None
    mentions_count: int
    followers_count: int | None
    is_business: bool | None


@dataclass
class EntryList:
    entries: list[ListEntry] = field(default_factory=list)
    columns: frozenset[str] = frozenset()
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    # SHA-256 of the uploaded file's bytes, hex: named in the draw's opened record.
    sha256: str = ""

    def problem(self, line: int, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < LIST_PROBLEMS_SHOWN:
            self.problems.append(f"Line {line}: {message}")

    @property
    def platforms(self) -> set[str]:
        return {entry.platform for entry in self.entries}


class ListRefused(Exception):
    """The file as a whole cannot be read as a list of entries."""


def normalize_username(value: str) -> str:
    return value.strip().lstrip("@").strip()


def parse_entry_list(data: bytes) -> EntryList:
    """Every row checked; ListRefused when the file as a whole is unusable, else the rows and each bad line."""
    if len(data) > LIST_MAX_BYTES:
        raise ListRefused(f"The file is larger than {LIST_MAX_BYTES // (1024 * 1024)} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ListRefused(f"The file is not UTF-8 text (byte {exc.start + 1}). Save it as CSV UTF-8.") from None
    if "\x00" in text:
        raise ListRefused("The file is not a CSV text file.")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ListRefused(f"Line 1: {exc}.") from None
    if header is None or not any(name.strip() for name in header):
        raise ListRefused("The file is empty. Its first line names the columns, e.g. username,comment.")
    names = [name.strip().lower() for name in header]
    unknown = [name for name in names if name not in LIST_COLUMNS]
    if unknown:
        raise ListRefused(
            f"Line 1: unknown column(s) {', '.join(unknown)}. The columns are: {', '.join(LIST_COLUMNS)}."
        )
    if len(set(names)) != len(names):
        raise ListRefused("Line 1: a column is named twice.")
    if "username" not in names:
        raise ListRefused("Line 1: the username column is missing.")
    result = EntryList(columns=frozenset(names), sha256=hashlib.sha256(data).hexdigest())
    line = 1
    try:
        for fields in reader:
            line = reader.line_num
            if not any(value.strip() for value in fields):
                continue
            if len(result.entries) + result.problem_count >= LIST_MAX_ROWS:
                raise ListRefused(f"The file has more than {LIST_MAX_ROWS:,} rows.")
            if len(fields) != len(names):
                result.problem(line, f"{len(fields)} values, expected {len(names)}.")
                continue
            try:
                entry = _list_entry(dict(zip(names, fields, strict=True)), len(result.entries) + 1)
            except FieldError as exc:
                result.problem(line, str(exc))
                continue
            result.entries.append(entry)
    except csv.Error as exc:
        result.problem(reader.line_num or line, f"{exc}.")
    if not result.entries and not result.problem_count:
        raise ListRefused("The file has no entries, only its header line.")
    return result


def _identity(value: str, label: str) -> str:
    if len(value) > IDENTITY_MAX:
        raise FieldError(f"the {label} is longer than {IDENTITY_MAX} characters.")
    if any(char.isspace() or not char.isprintable() for char in value):
        raise FieldError(f"the {label} contains spaces or invisible characters.")
    if value.startswith(FORMULA_STARTS):
        raise FieldError(f"the {label} starts with {value[0]}.")
    return value


def _list_entry(row: dict[str, str], number: int) -> ListEntry:
    username = _identity(normalize_username(row["username"]), "username")
    if not username:
        raise FieldError("the username is empty.")
    platform = row.get("platform", "").strip().lower() or "list"
    if platform not in LIST_PLATFORMS:
        raise FieldError(f"the platform “{platform[:20]}” is not one of {', '.join(LIST_PLATFORMS)}.")
    platform_user_id = _identity(row.get("platform_user_id", "").strip(), "platform_user_id") or username.lower()
    comment = row.get("comment", "").strip() or None
    if comment is not None:
        if len(comment) > COMMENT_MAX:
            raise FieldError(f"the comment is longer than {COMMENT_MAX:,} characters.")
        if "\ufffd" in comment:
            raise FieldError("the comment contains characters that are not text.")
    followers_text = row.get("followers_count", "").strip().replace(",", "").replace("_", "")
    followers: int | None = None
    if followers_text:
        if not re.fullmatch(r"[0-9]{1,12}", followers_text):
            raise FieldError(f"followers_count “{followers_text[:20]}” is not a whole number.")
        followers = int(followers_text)
    account_type = row.get("account_type", "").strip().lower()
    if account_type and account_type not in ACCOUNT_TYPES:
        raise FieldError(f"account_type “{account_type[:20]}” is not one of {', '.join(ACCOUNT_TYPES)}.")
    return ListEntry(
        row=number,
        platform=platform,
        platform_user_id=platform_user_id,
        username=username,
        comment=comment,
        mentions_count=len(MENTION.findall(comment or "")),
        followers_count=followers,
        is_business=(account_type == "business") if account_type else None,
    )
