"""The draw's entries in canonical order: the two Merkle roots its seal commits to, then the picked entries."""

from __future__ import annotations

import datetime
import uuid
from array import array
from collections import Counter
from dataclasses import dataclass
from typing import Any

from web.draws.rules import CANONICAL_ORDER, CANONICAL_ORDER_ONE_PLATFORM, has_list
from web.fairness import Entry, MerkleBuilder, Pick

# Leaf hashes read per round trip.
STREAM_BATCH = 8192
# Sorting a million eligible entries in memory instead of on disk.
SORT_MEMORY = "256MB"
CURSOR = "entries_in_canonical_order"


def eligible_leaves(order: str = CANONICAL_ORDER) -> str:
    """The eligible entries' leaves (and ids) in canonical order; the full order is the entry key's."""
    return f"SELECT leaf_hash, id FROM draw_participants WHERE draw_id = $1 AND is_eligible ORDER BY {order}"  # noqa: S608


ELIGIBLE_LEAVES = eligible_leaves()
PICKED_ROW = """
    SELECT platform, platform_user_id, username, comment_id, comment, commented_at
    FROM draw_participants WHERE id = $1
"""


def one_platform(sources: list[dict[str, Any]]) -> bool:
    """Whether every entry is on the same platform: posts of one platform only (a list's rows name their own)."""
    return not has_list(sources) and len({source.get("platform") for source in sources}) == 1


@dataclass(frozen=True)
class PickedEntry:
    pick: Pick
    comment: str | None
    commented_at: datetime.datetime | None
    # The salted leaf stored with the entry.
    leaf: bytes

    def record(self, position: int, selected_at: datetime.datetime) -> dict[str, Any]:
        """A winner or alternate as Draw.winners / Draw.alternates keep it."""
        entry = self.pick.entry
        return {
            "position": position,
            "username": entry.username,
            "platform": entry.platform,
            "platform_user_id": entry.platform_user_id,
            "entry_id": entry.entry_id,
            "comment": self.comment,
            "commented_at": self.commented_at.isoformat() if self.commented_at else None,
            "leaf_index": self.pick.index,
            "selected_at": selected_at.isoformat(),
        }


def collected_leaves(order: str = CANONICAL_ORDER) -> str:
    """Every collected entry in canonical order: its verdict's leaf (SHA-256(0x02 ‖ leaf ‖ verdict), computed by
    PostgreSQL beside the reading), then, for an eligible entry, its salted leaf and row id, and for an excluded one
    its reason (what is not needed is not sent)."""
    return f"""
        SELECT sha256('\\x02'::bytea || leaf_hash || convert_to(coalesce(exclusion_reason, 'eligible'), 'UTF8')),
               CASE WHEN is_eligible THEN leaf_hash END,
               CASE WHEN is_eligible THEN id END,
               CASE WHEN NOT is_eligible THEN exclusion_reason END
        FROM draw_participants WHERE draw_id = $1 ORDER BY {order}
    """  # noqa: S608


@dataclass(frozen=True)
class Roots:
    """What the seal commits to: the eligible entries' root and every collected entry's, with their counts."""

    merkle_root: bytes
    eligible: int
    collected_root: bytes
    participants: int
    # Excluded entries by reason, counted as they streamed.
    excluded: dict[str, int]


class SealedEntries:
    """The draw's entries read once in canonical order, in a read-only snapshot held until the winners are picked.

    `roots` are computed as the rows stream; the snapshot then stays open (the seal, the witness and the beacon
    take a few seconds) so that each pick is read back by its position without sorting again. Only the position of
    each eligible entry is kept (4 bytes each), never the entries.
    """

    def __init__(self, connection: Any, draw_id: uuid.UUID, *, one_platform: bool) -> None:
        self.connection = connection
        self.draw_id = draw_id
        self.order = CANONICAL_ORDER_ONE_PLATFORM if one_platform else CANONICAL_ORDER
        self.positions = array("I")
        self._transaction: Any = None
        self.roots: Roots | None = None

    async def __aenter__(self) -> SealedEntries:
        self._transaction = self.connection.transaction(isolation="repeatable_read", readonly=True)
        await self._transaction.start()
        try:
            await self._stream()
        except BaseException:
            await self._transaction.rollback()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._transaction.rollback()

    async def _stream(self) -> None:
        connection = self.connection
        await connection.execute(f"SET LOCAL work_mem = '{SORT_MEMORY}'")
        await connection.execute("SET LOCAL jit = off")
        # The whole result is read: plan for all of it, not for the first rows as cursors otherwise do.
        await connection.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        # DECLARE takes no parameters: the draw id goes in as a UUID's own text.
        declare = f"DECLARE {CURSOR} SCROLL CURSOR FOR {collected_leaves(self.order)}"
        await connection.execute(declare.replace("$1", f"'{uuid.UUID(str(self.draw_id))}'"))
        eligible, collected = MerkleBuilder(), MerkleBuilder()
        excluded: Counter[str] = Counter()
        position = 0
        while rows := await connection.fetch(f"FETCH FORWARD {STREAM_BATCH} FROM {CURSOR}"):
            leaves = [row[0] for row in rows]
            if None in leaves:
                raise RuntimeError(f"draw {self.draw_id}: an entry was stored without its leaf")
            collected.add_leaf_hashes(leaves)
            chosen = [(number, row[1]) for number, row in enumerate(rows, start=position) if row[1] is not None]
            eligible.add_leaf_hashes([leaf for _, leaf in chosen])
            self.positions.extend(number for number, _ in chosen)
            excluded.update(row[3] for row in rows if row[3] is not None)
            position += len(rows)
        self.roots = Roots(eligible.root(), eligible.count, collected.root(), collected.count, dict(excluded))

    async def pick(self, index: int) -> PickedEntry:
        """The eligible entry at leaf `index`, read back from the snapshot and checked against its leaf."""
        _, leaf, row_id, _ = await self.connection.fetchrow(f"FETCH ABSOLUTE {self.positions[index] + 1} FROM {CURSOR}")
        row = await self.connection.fetchrow(PICKED_ROW, row_id)
        entry = Entry(row["platform"], row["platform_user_id"], row["username"], row["comment_id"])
        return PickedEntry(Pick(index, entry), row["comment"], row["commented_at"], leaf)
