"""From the eligible entries to the Merkle root and the picked winners and alternates, in canonical order."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from web.draws.rules import CANONICAL_ORDER, CANONICAL_ORDER_ONE_PLATFORM, has_list
from web.fairness import Entry, MerkleBuilder, Pick, select_winners

# Leaf hashes read per round trip.
STREAM_BATCH = 8192
# Sorting a million eligible entries in memory instead of on disk.
SORT_MEMORY = "256MB"
CURSOR = "eligible_in_canonical_order"


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


@dataclass(frozen=True)
class Drawn:
    merkle_root: bytes
    eligible: int
    winners: list[PickedEntry]
    alternates: list[PickedEntry]


async def draw_winners(
    connection: Any,
    draw_id: uuid.UUID,
    secret: bytes,
    eligible: int,
    winners_count: int,
    alternates_count: int,
    *,
    one_platform: bool,
) -> Drawn:
    """Hash the eligible entries in canonical order into the Merkle root, then pick; memory stays flat.

    One scrollable cursor over the sorted entries serves both passes: its rows stream through the
    Merkle builder, then the picked positions are read back from it without sorting again. With
    `one_platform` (every entry on the same platform), the sort leaves the platform out.
    """
    builder = MerkleBuilder()
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        await connection.execute(f"SET LOCAL work_mem = '{SORT_MEMORY}'")
        await connection.execute("SET LOCAL jit = off")
        # The whole result is read: plan for all of it, not for the first rows as cursors otherwise do.
        await connection.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        leaves = eligible_leaves(CANONICAL_ORDER_ONE_PLATFORM if one_platform else CANONICAL_ORDER)
        # DECLARE takes no parameters: the draw id goes in as a UUID's own text.
        declare = f"DECLARE {CURSOR} SCROLL CURSOR FOR {leaves}"
        await connection.execute(declare.replace("$1", f"'{uuid.UUID(str(draw_id))}'"))
        while rows := await connection.fetch(f"FETCH FORWARD {STREAM_BATCH} FROM {CURSOR}"):
            builder.add_leaf_hashes([row[0] for row in rows])
        if builder.count != eligible:
            raise RuntimeError(f"{builder.count} eligible entries streamed, {eligible} expected")
        root = builder.root()
        selection = select_winners(
            secret=secret,
            merkle_root=root,
            draw_id=draw_id,
            eligible=eligible,
            winners_count=winners_count,
            alternates_count=alternates_count,
        )

        async def picked(index: int) -> PickedEntry:
            leaf, row_id = await connection.fetchrow(f"FETCH ABSOLUTE {index + 1} FROM {CURSOR}")
            row = await connection.fetchrow(PICKED_ROW, row_id)
            entry = Entry(row["platform"], row["platform_user_id"], row["username"], row["comment_id"])
            if entry.leaf_hash != leaf:
                raise RuntimeError(f"entry {index} was stored with a leaf the fairness core does not compute")
            return PickedEntry(Pick(index, entry), row["comment"], row["commented_at"])

        winners = [await picked(index) for index in selection.winner_indices]
        alternates = [await picked(index) for index in selection.alternate_indices]
    return Drawn(merkle_root=root, eligible=eligible, winners=winners, alternates=alternates)
