"""Outgoing mail: every message is kept in the outbox table, and sent over SMTP when SMTP_URL is set."""

from __future__ import annotations

import datetime
import logging
import re
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib
import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from web.base import UUIDv7Base, created_at_column
from web.settings import Settings

log = logging.getLogger(__name__)

LINK = re.compile(r"https?://[^\s<>\"']+")


class OutboxMessage(UUIDv7Base):
    __tablename__ = "mail_outbox"

    recipient: Mapped[str] = mapped_column(sa.String(254), nullable=False, index=True)
    subject: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    body: Mapped[str] = mapped_column(sa.Text, nullable=False)
    created_at: Mapped[datetime.datetime] = created_at_column()
    sent_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    error: Mapped[str | None] = mapped_column(sa.String(500))

    @property
    def links(self) -> list[str]:
        return LINK.findall(self.body)


class MailError(RuntimeError):
    """The SMTP server refused or could not be reached."""


async def _send_smtp(settings: Settings, message: EmailMessage) -> None:
    assert settings.smtp_url is not None
    parts = urlsplit(settings.smtp_url)
    use_tls = parts.scheme == "smtps"
    start_tls = parts.scheme == "smtp+starttls"
    await aiosmtplib.send(
        message,
        hostname=parts.hostname or "localhost",
        port=parts.port or (465 if use_tls else 587 if start_tls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=use_tls,
        start_tls=start_tls,
        tls_context=ssl.create_default_context() if (use_tls or start_tls) else None,
        timeout=15,
    )


async def send_mail(db: AsyncSession, settings: Settings, *, to: str, subject: str, body: str) -> OutboxMessage:
    """Record the message, then deliver it; a delivery failure is kept on the row, not raised."""
    row = OutboxMessage(recipient=to, subject=subject, body=body)
    db.add(row)
    await db.flush()
    if settings.smtp_url:
        message = EmailMessage()
        message["From"] = settings.mail_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            await _send_smtp(settings, message)
            row.sent_at = datetime.datetime.now(datetime.UTC)
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("mail to %s not delivered: %s", to, type(exc).__name__)
            row.error = f"{type(exc).__name__}: {exc}"[:500]
    return row


async def recent_outbox(db: AsyncSession, limit: int = 50) -> list[OutboxMessage]:
    result = await db.scalars(
        sa.select(OutboxMessage).order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()).limit(limit)
    )
    return list(result)
