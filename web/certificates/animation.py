"""The reveal of a draw, replayed from its certificate alone: the page's script data and an animated image.

The image (WebP or GIF, 480 by 480, about five seconds) counts the entries up, drops the excluded ones to the
eligible count, shuffles names and shows the winners one by one, with the certificate hash at the bottom. It is
made once per certificate and kept under var/animations/, named by the certificate hash.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import re
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy.ext.asyncio import AsyncSession

from web.draws.models import Draw
from web.settings import VAR_DIR, Settings

ANIMATIONS_DIR = VAR_DIR / "animations"
FORMATS = {"webp": "image/webp", "gif": "image/gif"}
HEX64 = re.compile(r"[0-9a-f]{64}")

SIZE = 480
FRAME_MS = 80
HOLD_MS = 1600
COUNT_FRAMES = 12
EXCLUDE_FRAMES = 8
SHUFFLE_FRAMES = 10
REVEAL_BUDGET_FRAMES = 20
ROWS_SHOWN = 10

BRAND = (91, 61, 245)
BRAND_STRONG = (59, 34, 184)
SOFT = (239, 235, 255)
WHITE = (255, 255, 255)
GOLD = (255, 214, 102)
FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
)


def reveal_url(settings: Settings, certificate_hash: str) -> str:
    """The public replay page of a certificate: what the engine stores in draws.video_url at completion."""
    return f"{settings.base_url}/certificates/{certificate_hash}/reveal"


async def completed_certificate(db: AsyncSession, certificate_hash: str) -> dict[str, Any] | None:
    """The certificate of a completed draw by its hash, or None."""
    if not HEX64.fullmatch(certificate_hash):
        return None
    certificate = await db.scalar(
        sa.select(Draw.certificate).where(Draw.certificate_hash == certificate_hash, Draw.status == "completed")
    )
    return certificate if isinstance(certificate, dict) else None


@dataclass(frozen=True)
class Reveal:
    """What the replay shows, read from a certificate."""

    certificate_hash: str
    title: str
    participants: int
    excluded: dict[str, int]
    eligible: int
    winners: list[str]
    alternates: list[str]

    @property
    def excluded_total(self) -> int:
        return sum(self.excluded.values())

    @property
    def shuffle_names(self) -> list[str]:
        return [*self.winners, *self.alternates]

    @classmethod
    def from_certificate(cls, certificate: Mapping[str, Any]) -> Reveal:
        counts = certificate.get("counts") or {}
        excluded = {str(reason): int(count) for reason, count in (counts.get("excluded") or {}).items()}
        return cls(
            certificate_hash=str(certificate.get("certificate_hash") or ""),
            title=str((certificate.get("draw") or {}).get("title") or "Giveaway"),
            participants=int(counts.get("participants") or 0),
            excluded=excluded,
            eligible=int(counts.get("eligible") or 0),
            winners=[str(pick.get("username") or "") for pick in certificate.get("winners") or []],
            alternates=[str(pick.get("username") or "") for pick in certificate.get("alternates") or []],
        )


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONT_FILES:
        if Path(path).exists():
            return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)
    return ImageFont.load_default(size)


def _fit(text: str, size: int, width: int) -> str:
    """`text` on one line, cut with an ellipsis so that it fits `width` pixels."""
    text = "".join(" " if unicodedata.category(char)[0] == "C" else char for char in text)
    font = _font(size)
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _centered(draw: ImageDraw.ImageDraw, y: int, text: str, size: int, fill: tuple[int, int, int]) -> None:
    text = _fit(text, size, SIZE - 48)
    draw.text((SIZE // 2, y), text, font=_font(size), fill=fill, anchor="mm")


def _eased(step: int, steps: int) -> float:
    progress = min(1.0, (step + 1) / steps)
    return 1 - (1 - progress) ** 3


class _Frames:
    def __init__(self, reveal: Reveal) -> None:
        self.reveal = reveal
        self.images: list[Image.Image] = []
        self.durations: list[int] = []

    def canvas(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        image = Image.new("RGB", (SIZE, SIZE), BRAND)
        draw = ImageDraw.Draw(image)
        draw.rounded_rectangle((24, 22, 52, 50), radius=7, fill=WHITE)
        draw.line(((31, 37), (36, 42), (45, 30)), fill=BRAND, width=4, joint="curve")
        draw.text((62, 36), "Cleack", font=_font(22), fill=WHITE, anchor="lm")
        draw.text((SIZE - 24, 36), "fair draw", font=_font(14), fill=SOFT, anchor="rm")
        _centered(draw, 84, self.reveal.title, 20, SOFT)
        draw.rectangle((0, SIZE - 58, SIZE, SIZE), fill=BRAND_STRONG)
        digest = self.reveal.certificate_hash
        draw.text((SIZE // 2, SIZE - 40), "Certificate", font=_font(12), fill=SOFT, anchor="mm")
        draw.text((SIZE // 2, SIZE - 22), f"{digest[:24]}…{digest[-8:]}", font=_font(13), fill=WHITE, anchor="mm")
        return image, draw

    def add(self, image: Image.Image, duration: int = FRAME_MS) -> None:
        self.images.append(image)
        self.durations.append(duration)

    def counting(self) -> None:
        for step in range(COUNT_FRAMES):
            image, draw = self.canvas()
            shown = round(self.reveal.participants * _eased(step, COUNT_FRAMES))
            _centered(draw, 210, f"{shown:,}", 72, WHITE)
            _centered(draw, 270, "entries", 24, SOFT)
            self.add(image)

    def excluding(self) -> None:
        reveal = self.reveal
        for step in range(EXCLUDE_FRAMES):
            image, draw = self.canvas()
            progress = _eased(step, EXCLUDE_FRAMES)
            shown = round(reveal.participants - reveal.excluded_total * progress)
            _centered(draw, 210, f"{shown:,}", 72, WHITE)
            _centered(draw, 270, "eligible", 24, SOFT)
            fall = int(60 * progress)
            _centered(draw, 320 + fall, f"\N{MINUS SIGN} {reveal.excluded_total:,} excluded by the rules", 18, GOLD)
            self.add(image)

    def shuffling(self) -> None:
        names = self.reveal.shuffle_names or ["…"]
        # A fixed order from the certificate hash, so that the same certificate always gives the same image.
        order = hashlib.sha256(self.reveal.certificate_hash.encode()).digest()
        for step in range(SHUFFLE_FRAMES):
            image, draw = self.canvas()
            _centered(draw, 170, f"{self.reveal.eligible:,} eligible", 22, SOFT)
            _centered(draw, 215, "Drawing…", 28, WHITE)
            name = names[order[step % len(order)] % len(names)]
            offset = (step % 2) * 6
            _centered(draw, 285 + offset, "@" + name, 30, GOLD)
            self.add(image)

    def winner_rows(self) -> list[str]:
        winners = self.reveal.winners
        if len(winners) <= ROWS_SHOWN:
            return [f"{position}. @{name}" for position, name in enumerate(winners, start=1)]
        rows = [f"{position}. @{name}" for position, name in enumerate(winners[: ROWS_SHOWN - 1], start=1)]
        return [*rows, f"+ {len(winners) - ROWS_SHOWN + 1} more winners"]

    def draw_rows(self, draw: ImageDraw.ImageDraw, rows: Sequence[str], shown: int, slide: float) -> None:
        size, spacing = (26, 44) if len(rows) <= 5 else (19, 27)
        top = 150 if len(rows) <= 5 else 122
        for index, row in enumerate(rows[:shown]):
            entering = index == shown - 1
            x = 48 + (int(40 * (1 - slide)) if entering else 0)
            fill = GOLD if entering and slide < 1 else WHITE
            draw.text((x, top + index * spacing), _fit(row, size, SIZE - 96), font=_font(size), fill=fill)

    def revealing(self) -> None:
        rows = self.winner_rows()
        if not rows:
            image, draw = self.canvas()
            _centered(draw, 240, "No eligible entries", 28, WHITE)
            self.add(image, HOLD_MS)
            return
        per_row = max(2, min(4, REVEAL_BUDGET_FRAMES // len(rows)))
        for shown in range(1, len(rows) + 1):
            for step in range(per_row):
                image, draw = self.canvas()
                _centered(draw, 116, "Winners", 22, SOFT)
                self.draw_rows(draw, rows, shown, _eased(step, per_row))
                self.add(image)
        image, draw = self.canvas()
        _centered(draw, 116, "Winners", 22, SOFT)
        self.draw_rows(draw, rows, len(rows), 1.0)
        _centered(draw, SIZE - 84, "✓ Verifiable: anyone can re-check this draw", 15, SOFT)
        self.add(image, HOLD_MS)


def render_frames(reveal: Reveal) -> tuple[list[Image.Image], list[int]]:
    """The frames of the replay and how long each shows, in milliseconds."""
    frames = _Frames(reveal)
    frames.counting()
    frames.excluding()
    frames.shuffling()
    frames.revealing()
    return frames.images, frames.durations


def encode_animation(reveal: Reveal, image_format: str) -> bytes:
    images, durations = render_frames(reveal)
    output = io.BytesIO()
    first, rest = images[0], images[1:]
    if image_format == "webp":
        first.save(
            output,
            "WEBP",
            save_all=True,
            append_images=rest,
            duration=durations,
            loop=0,
            lossless=True,
            quality=60,
            method=2,
        )
    elif image_format == "gif":
        first.save(output, "GIF", save_all=True, append_images=rest, duration=durations, loop=0, optimize=False)
    else:
        raise ValueError(f"no animation format {image_format!r}")
    return output.getvalue()


def animation_file(certificate: Mapping[str, Any], image_format: str, directory: Path = ANIMATIONS_DIR) -> Path:
    """The replay image of a certificate, made on first request and then read from disk."""
    reveal = Reveal.from_certificate(certificate)
    if not HEX64.fullmatch(reveal.certificate_hash):
        raise ValueError("the certificate has no certificate_hash")
    path = directory / f"{reveal.certificate_hash}.{image_format}"
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    data = encode_animation(reveal, image_format)
    # Written aside then renamed, so that a reader never sees half a file.
    descriptor, temporary = tempfile.mkstemp(dir=directory, suffix=f".{image_format}.part")
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(temporary, path)
    return path


def reveal_page_data(certificate: Mapping[str, Any]) -> dict[str, Any]:
    """The replay page's context."""
    reveal = Reveal.from_certificate(certificate)
    return {
        "reveal": reveal,
        "cert": certificate,
        "issued_at": _day(str(certificate.get("issued_at") or "")),
    }


def _day(text: str) -> str:
    try:
        return datetime.datetime.fromisoformat(text).strftime("%d %B %Y, %H:%M UTC")
    except ValueError:
        return text
