"""The winners' announcement of a completed draw: a draft from the result, edited, published or scheduled.

Publishing replies under the draw's (first) post through the platform, where its API allows it; otherwise the
page offers the text to copy and says why. One announcement per draw: `draft → scheduled → published | failed`,
and a failed one can be tried again. A publication is claimed by one atomic UPDATE before the platform is
called, so that a click and the periodic job never post it twice.
"""

from __future__ import annotations

import datetime
import uuid
import zoneinfo
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from litestar.status_codes import HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY
from sqlalchemy.ext.asyncio import AsyncSession

from web import forms
from web.draws.forms import SCHEDULE_HORIZON, timezones
from web.draws.models import Announcement, Draw
from web.forms import FieldError
from web.htmx import redirect, render
from web.security import current_user, requires_login
from web.settings import Settings
from web.social.models import SocialAccount
from web.social.providers import PROVIDERS, provider_config
from web.social.providers.base import Capability, ProviderError
from web.social.services import AccountUnavailable, SocialService

if TYPE_CHECKING:
    from web.worker import WorkerContext

CONTENT_MAX = 500
EDITABLE = ("draft", "scheduled", "failed")
# How many scheduled announcements one run of the periodic job publishes.
JOB_BATCH = 50
DONE_MESSAGES = {
    "saved": "The draft is saved.",
    "scheduled": "The announcement is scheduled.",
    "published": "The announcement is published under your post.",
    "failed": "The announcement could not be published; the reason is below. You can try again.",
}


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# Drafting


def certificate_url(settings: Settings, certificate_hash: str) -> str:
    return f"{settings.base_url}/certificates/{certificate_hash}"


def draft_text(draw: Draw, settings: Settings) -> str:
    """The generated announcement: the winners' @usernames, thanks and the certificate link, in 500 characters."""
    names = [f"@{winner.get('username')}" for winner in draw.winners]
    link = certificate_url(settings, draw.certificate_hash or "")
    ending = f"\n\nThank you all for taking part! Drawn at random with Cleack; anyone can check it: {link}"
    title = draw.title if len(draw.title) <= 80 else draw.title[:79] + "…"
    for shown in range(len(names), -1, -1):
        if not names:
            opening = f"🎉 The draw for {title} is done, but no entry met the rules."
        elif shown == len(names):
            opening = f"🎉 Congratulations to the winner{'s' if len(names) > 1 else ''} of {title}: {', '.join(names)}!"
        else:
            listed = ", ".join(names[:shown])
            opening = f"🎉 Congratulations to the winners of {title}: {listed} and {len(names) - shown} more!"
        if len(opening) + len(ending) <= CONTENT_MAX:
            return opening + ending
    return (f"🎉 The winners of {title} are drawn!" + ending)[:CONTENT_MAX]


def clean_content(value: str) -> str:
    """The announcement text: line ends as browsers count them (one character), at most 500 characters."""
    value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not value:
        raise FieldError("Write the announcement: it is empty.")
    if len(value) > CONTENT_MAX:
        raise FieldError(f"An announcement has at most {CONTENT_MAX} characters; this one has {len(value)}.")
    if any(char in forms.NOT_ALLOWED or (ord(char) < 32 and char not in "\n\t") for char in value):
        raise FieldError("The announcement contains characters that are not allowed.")
    return value


def clean_schedule(text: str, zone: str, now: datetime.datetime) -> datetime.datetime:
    if not text:
        raise FieldError("Choose when to publish it.")
    try:
        local = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise FieldError("Enter the time as a date and a time, like 2026-12-24T18:00.") from None
    if local.tzinfo is not None:
        raise FieldError("Enter the time without a time zone offset; choose the zone from the list.")
    if zone not in timezones():
        raise FieldError("Choose a time zone from the list.")
    moment = local.replace(tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(datetime.UTC)
    if moment <= now:
        raise FieldError("This time is in the past. Choose a later one, or publish now.")
    if moment > now + SCHEDULE_HORIZON:
        raise FieldError("An announcement can be scheduled at most 90 days ahead.")
    return moment


# Where it can be published


@dataclass(frozen=True)
class PublishTarget:
    """The post the announcement replies under, or why there is none."""

    platform: str | None
    account_id: uuid.UUID | None
    post_id: str | None
    refusal: str | None

    @property
    def possible(self) -> bool:
        return self.refusal is None


def _first_post(draw: Draw) -> dict[str, Any] | None:
    return next((source for source in draw.sources if source.get("kind") == "post" and source.get("post_id")), None)


async def publish_target(db: AsyncSession, settings: Settings, draw: Draw) -> PublishTarget:
    source = _first_post(draw)
    if source is None:
        return PublishTarget(
            None, None, None, "The entries came from an uploaded list, so there is no post to reply under."
        )
    platform = str(source.get("platform") or "")
    provider = PROVIDERS.get(platform)
    if provider is None or provider_config(settings, platform) is None:
        return PublishTarget(platform, None, None, f"{platform.title()} cannot be reached from here.")
    if Capability.PUBLISH_REPLY not in provider.capabilities:
        return PublishTarget(platform, None, None, provider.why_not(Capability.PUBLISH_REPLY))
    try:
        account_id = uuid.UUID(str(source.get("account_id")))
    except ValueError:
        account_id = None
    account = None
    if account_id is not None:
        account = await db.scalar(
            sa.select(SocialAccount).where(SocialAccount.id == account_id, SocialAccount.user_id == draw.user_id)
        )
    if account is None or not account.is_active:
        return PublishTarget(
            platform, None, None, f"The {provider.name} account this draw used is no longer connected."
        )
    if account.needs_reconnect:
        return PublishTarget(
            platform, account.id, None, f"Reconnect your {provider.name} account on the Accounts page first."
        )
    return PublishTarget(platform, account.id, str(source["post_id"]), None)


class AnnouncementService:
    def __init__(self, db: AsyncSession, settings: Settings, http: httpx.AsyncClient) -> None:
        self.db = db
        self.settings = settings
        self.http = http

    async def completed_draw(self, user_id: uuid.UUID, draw_id: uuid.UUID) -> Draw | None:
        """The user's own completed draw, or None (another user's draw does not exist for them)."""
        return await self.db.scalar(
            sa.select(Draw).where(
                Draw.id == draw_id,
                Draw.user_id == user_id,
                Draw.status == "completed",
                Draw.certificate_hash.is_not(None),
            )
        )

    async def of_draw(self, draw: Draw) -> Announcement | None:
        return await self.db.scalar(
            sa.select(Announcement)
            .where(Announcement.draw_id == draw.id)
            .order_by(Announcement.created_at.desc())
            .limit(1)
        )

    async def _editable(self, draw: Draw, platform: str | None) -> Announcement:
        announcement = await self.of_draw(draw)
        if announcement is None:
            announcement = Announcement(
                draw_id=draw.id, user_id=draw.user_id, platform=platform, content="", metadata_={}
            )
            self.db.add(announcement)
        elif announcement.status not in EDITABLE:
            raise AlreadyPublished()
        return announcement

    async def save_draft(self, draw: Draw, content: str) -> Announcement:
        target = await publish_target(self.db, self.settings, draw)
        announcement = await self._editable(draw, target.platform)
        announcement.content = content
        announcement.status = "draft"
        announcement.scheduled_for = None
        await self.db.commit()
        return announcement

    async def schedule(self, draw: Draw, content: str, moment: datetime.datetime) -> Announcement:
        target = await publish_target(self.db, self.settings, draw)
        if not target.possible:
            raise CannotPublish(target.refusal or "")
        announcement = await self._editable(draw, target.platform)
        announcement.content = content
        announcement.status = "scheduled"
        announcement.scheduled_for = moment
        announcement.metadata_ = {key: value for key, value in announcement.metadata_.items() if key != "error"}
        await self.db.commit()
        return announcement

    async def publish_now(self, draw: Draw, content: str) -> Announcement:
        target = await publish_target(self.db, self.settings, draw)
        if not target.possible:
            raise CannotPublish(target.refusal or "")
        announcement = await self._editable(draw, target.platform)
        announcement.content = content
        await self.db.commit()
        return await self.publish(announcement, draw, target)

    async def publish(self, announcement: Announcement, draw: Draw, target: PublishTarget) -> Announcement:
        """Claim the announcement, reply under the post, and record what happened."""
        claimed = await self.db.scalar(
            sa.update(Announcement)
            .where(Announcement.id == announcement.id, Announcement.status.in_(EDITABLE))
            .values(status="published", published_at=utcnow(), platform=target.platform)
            .returning(Announcement.id)
        )
        await self.db.commit()
        await self.db.refresh(announcement)
        if claimed is None:
            return announcement
        details: dict[str, Any] = {"post_id": target.post_id}
        try:
            if not target.possible or target.account_id is None or target.post_id is None:
                raise CannotPublish(target.refusal or "There is no post to reply under.")
            account = await self.db.get(SocialAccount, target.account_id)
            if account is None:
                raise CannotPublish("The account this draw used is no longer connected.")
            post_id, text = target.post_id, announcement.content
            reply_id = await SocialService(self.db, self.settings, self.http).call(
                account, lambda provider, token: provider.publish_reply(token, post_id, text)
            )
        except (ProviderError, AccountUnavailable, CannotPublish) as exc:
            announcement.status = "failed"
            announcement.published_at = None
            details["error"] = exc.message
        else:
            details["reply_id"] = reply_id
        announcement.metadata_ = details
        await self.db.commit()
        return announcement

    async def publish_due(self, now: datetime.datetime) -> dict[str, int]:
        """The periodic job's work: every scheduled announcement whose time has come, once."""
        rows = await self.db.execute(
            sa.select(Announcement, Draw)
            .join(Draw, Draw.id == Announcement.draw_id)
            .where(Announcement.status == "scheduled", Announcement.scheduled_for <= now)
            .order_by(Announcement.scheduled_for)
            .limit(JOB_BATCH)
        )
        published = failed = 0
        for announcement, draw in rows.all():
            target = await publish_target(self.db, self.settings, draw)
            result = await self.publish(announcement, draw, target)
            published += result.status == "published"
            failed += result.status == "failed"
        return {"published": published, "failed": failed}


class AlreadyPublished(Exception):
    """A published announcement is not edited again."""


class CannotPublish(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def publish_scheduled_announcements(db: AsyncSession, context: WorkerContext) -> dict[str, int]:
    """Periodic job `publish-scheduled-announcements`."""
    return await AnnouncementService(db, context.settings, context.http).publish_due(utcnow())


# Pages


def provide_announcements(db_session: AsyncSession, request: Request[Any, Any, Any]) -> AnnouncementService:
    return AnnouncementService(db_session, request.app.state.settings, request.app.state.http)


class AnnouncementsController(Controller):
    path = "/draws/{draw_id:uuid}/announcement"
    guards = [requires_login]

    async def _draw(self, request: Request[Any, Any, Any], service: AnnouncementService, draw_id: uuid.UUID) -> Draw:
        user = current_user(request)
        assert user is not None
        draw = await service.completed_draw(user.id, draw_id)
        if draw is None:
            raise NotFoundException()
        return draw

    async def _context(
        self, service: AnnouncementService, draw: Draw, form: forms.Form, done: str | None = None
    ) -> dict[str, Any]:
        announcement = await service.of_draw(draw)
        target = await publish_target(service.db, service.settings, draw)
        content = form.values.get("content")
        if content is None:
            content = announcement.content if announcement is not None else draft_text(draw, service.settings)
        form.values["content"] = content
        form.values.setdefault("timezone", "UTC")
        return {
            "draw": draw,
            "announcement": announcement,
            "status": announcement.status if announcement is not None else "draft",
            "form": form,
            "target": target,
            "content_max": CONTENT_MAX,
            "length": len(content.replace("\r\n", "\n")),
            "timezones": timezones(),
            "done": DONE_MESSAGES.get(done or ""),
            "certificate_url": certificate_url(service.settings, draw.certificate_hash or ""),
        }

    @get("/", name="announcements:show")
    async def show(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], draw_id: FromPath[uuid.UUID]
    ) -> Template:
        service = provide_announcements(db_session, request)
        draw = await self._draw(request, service, draw_id)
        done = request.query_params.get("done")
        return render(request, "announcements/page.html", await self._context(service, draw, forms.Form(), done))

    @post("/count", name="announcements:count")
    async def count(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], draw_id: FromPath[uuid.UUID]
    ) -> Template:
        """The live character counter (an htmx fragment)."""
        await self._draw(request, provide_announcements(db_session, request), draw_id)
        values = await forms.read_form(request)
        content = (values.get("content") or "").replace("\r\n", "\n").strip()
        return Template(
            template_name="announcements/_counter.html", context={"length": len(content), "content_max": CONTENT_MAX}
        )

    @post("/", name="announcements:submit")
    async def submit(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], draw_id: FromPath[uuid.UUID]
    ) -> Response[Any]:
        """Save the draft, publish now or schedule, as the pressed button says."""
        service = provide_announcements(db_session, request)
        draw = await self._draw(request, service, draw_id)
        values = await forms.read_form(request)
        action = values.get("action") or "save"
        form = forms.validate(values, {"content": clean_content})
        form.values["timezone"] = values.get("timezone") or "UTC"
        form.values["scheduled_for"] = values.get("scheduled_for") or ""
        if action not in ("save", "publish", "schedule"):
            form.error("content", "Choose to save, publish or schedule the announcement.")
        moment = None
        if action == "schedule":
            try:
                moment = clean_schedule(form.values["scheduled_for"], form.values["timezone"], utcnow())
            except FieldError as exc:
                form.error("scheduled_for", str(exc))
        status_code = HTTP_422_UNPROCESSABLE_ENTITY
        if form.is_valid:
            content = form.cleaned["content"]
            try:
                if action == "publish":
                    announcement = await service.publish_now(draw, content)
                    done = announcement.status
                elif action == "schedule" and moment is not None:
                    await service.schedule(draw, content, moment)
                    done = "scheduled"
                else:
                    await service.save_draft(draw, content)
                    done = "saved"
            except AlreadyPublished:
                form.error("content", "This announcement is already published; it cannot be changed here.")
                status_code = HTTP_409_CONFLICT
            except CannotPublish as exc:
                form.error("content", f"It cannot be published automatically. {exc.message} Copy it instead.")
            else:
                return redirect(request, f"/draws/{draw.id}/announcement?done={done}")
        context = await self._context(service, draw, form)
        return render(request, "announcements/page.html", context, status_code=status_code)
