"""Sample draws made with the fairness core: their entries, certificate, signing key and files."""

from __future__ import annotations

import datetime
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from web.fairness import (
    DrawFacts,
    Entry,
    EntryRow,
    MerkleBuilder,
    Pick,
    build_certificate,
    generate_signing_key,
    key_record,
    key_set,
    new_secret,
    select_winners,
    sort_canonically,
    write_entries_csv,
)

KEY_CREATED_AT = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
CONFIG = {
    "filters": {"min_followers": 100, "exclude_suspicious": True, "exclude_businesses": False},
    "rules": {"require_comment": True, "comment_keywords": ["win"], "one_entry_per_user": True},
    "winners_count": 3,
    "alternates_count": 2,
}


@dataclass
class SampleDraw:
    entries: list[Entry]
    rows: list[EntryRow]
    certificate: dict[str, Any]
    key: Ed25519PrivateKey
    key_set: dict[str, Any]

    def write(self, folder: Path) -> tuple[Path, Path, Path]:
        """certificate.json, entries.csv and keys.json in `folder`."""
        certificate = folder / "certificate.json"
        certificate.write_text(json.dumps(self.certificate, ensure_ascii=False), encoding="utf-8")
        entries = folder / "entries.csv"
        with entries.open("w", encoding="utf-8", newline="") as file:
            write_entries_csv(file, self.rows)
        keys = folder / "keys.json"
        keys.write_text(json.dumps(self.key_set), encoding="utf-8")
        return certificate, entries, keys


def collected_entries(count: int, offset: int = 0) -> list[Entry]:
    """Entries as a platform returns them: newest first, names with commas, quotes and accents among them."""
    names = ["ana", 'jo "jj"', "zoë, the 2nd", "bob\nsmith", "李"]
    return [
        Entry(
            "instagram" if number % 3 else "x",
            str(1000 + number * 7919 % 997),
            f"{names[number % len(names)]}_{number}",
            f"c{number + offset}",
        )
        for number in reversed(range(count))
    ]


def make_draw(
    count: int = 40,
    *,
    key: Ed25519PrivateKey | None = None,
    previous_certificate_hash: str | None = None,
    issued_at: datetime.datetime | None = None,
) -> SampleDraw:
    key = key or generate_signing_key()
    entries = sort_canonically(collected_entries(count))
    excluded = [Entry("x", "bot-1", "spam_bot", "c-bot"), Entry("instagram", "42", "no_keyword", "c-nokw")]
    builder = MerkleBuilder()
    builder.add_rows([entry.fields for entry in entries])
    draw_id, secret, root = uuid.uuid4(), new_secret(), builder.root()
    selection = select_winners(
        secret=secret, merkle_root=root, draw_id=draw_id, eligible=len(entries), winners_count=3, alternates_count=2
    )
    moment = datetime.datetime(2026, 11, 22, 18, 0, tzinfo=datetime.UTC)
    certificate = build_certificate(
        draw=DrawFacts(
            draw_id,
            "Giveaway",
            ["instagram", "x"],
            [{"platform": "instagram", "post_id": "p1"}],
            moment,
            moment,
            moment,
        ),
        config=CONFIG,
        participants=len(entries) + len(excluded),
        excluded={"suspicious": 1, "keyword_missing": 1},
        eligible=len(entries),
        merkle_root=root,
        secret=secret,
        winners=[Pick(index, entries[index]) for index in selection.winner_indices],
        alternates=[Pick(index, entries[index]) for index in selection.alternate_indices],
        signing_key=key,
        issued_at=issued_at or moment,
        previous_certificate_hash=previous_certificate_hash,
    )
    rows = [EntryRow(entry, True, comment=f"I want to win, {entry.username}!") for entry in entries]
    rows[1:1] = [EntryRow(excluded[0], False, "suspicious"), EntryRow(excluded[1], False, "keyword_missing")]
    return SampleDraw(entries, rows, certificate, key, key_set([key_record(key, KEY_CREATED_AT)]))
