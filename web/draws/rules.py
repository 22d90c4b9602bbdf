"""The draw's rules in SQL, decided as entries are stored so that no pass rewrites every entry.

Each excluded entry gets exactly one reason, the first that applies in the order of
EXCLUSION_ORDER. Likers and followers are fetched before the comments, so every rule but one
is decided when a page of comments is stored. The exception is `duplicate` (one entry per
person), which depends on entries still to come: it is settled when the rules run, by one
statement that turns every person's later entries into duplicates (a duplicate outranks every
reason but `blacklisted`). Rows stored without a verdict (an uploaded list's) get theirs then
too, and so do entries of people blacklisted while the draw ran.

Parameters of the statements: $1 draw id, $2 creator's user id, then `rule_arguments`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXCLUSION_ORDER = (
    "blacklisted",
    "duplicate",
    "keyword_missing",
    "too_few_mentions",
    "too_few_followers",
    "suspicious",
    "business_account",
    "not_liked",
    "not_following",
)

# A username is suspicious when it pairs a giveaway-hunting word with a trailing number,
# or carries a long run of digits (generated handles); an account with no followers at all is too.
SUSPICIOUS_WORDS = ("giveaway", "sweep", "contest", "prize", "freebie", "promo", "bonus", "win")
SUSPICIOUS_WORD_PATTERN = "(" + "|".join(SUSPICIOUS_WORDS) + ")"
SUSPICIOUS_TRAILING_NUMBER = "[0-9]{2,}$"
SUSPICIOUS_DIGIT_RUN = "[0-9]{6,}"

CANONICAL_ORDER = 'platform COLLATE "C", platform_user_id COLLATE "C", comment_id COLLATE "C"'
ENTRY_COLUMNS = (
    "id",
    "draw_id",
    "platform",
    "platform_user_id",
    "username",
    "comment_id",
    "comment",
    "commented_at",
    "mentions_count",
    "followers_count",
    "is_business",
    "source_index",
)


def _leaf_hash(row: str) -> str:
    """SHA-256(0x00 ‖ canonical JSON of [platform, platform_user_id, username, entry_id]) as web.fairness.entries
    computes it: PostgreSQL's to_json escapes a string exactly as the canonical encoding does."""
    fields = " || ',' || ".join(
        f"to_json({row}.{column}::text)::text" for column in ("platform", "platform_user_id", "username", "comment_id")
    )
    return f"sha256('\\x00'::bytea || convert_to('[' || {fields} || ']', 'UTF8'))"


def _verdict(row: str, duplicate: str) -> str:
    """The first reason that excludes `row` (NULL when it is eligible); `duplicate` says whether it repeats a person."""
    return f"""
        CASE
            WHEN $3::boolean AND EXISTS (
                SELECT 1 FROM blacklist b
                WHERE b.user_id = $2 AND b.is_active AND b.platform IN ({row}.platform, 'all')
                  AND b.username = lower(btrim(ltrim(btrim(normalize({row}.username, NFKC)), '@')))
            ) THEN 'blacklisted'
            WHEN $4::boolean AND {duplicate} THEN 'duplicate'
            WHEN cardinality($5::text[]) > 0 AND NOT (lower(coalesce({row}.comment, '')) LIKE ANY ($5::text[]))
                THEN 'keyword_missing'
            WHEN {row}.mentions_count < $6::integer THEN 'too_few_mentions'
            WHEN $7::bigint > 0 AND coalesce({row}.followers_count, 0) < $7::bigint THEN 'too_few_followers'
            WHEN $8::boolean AND (
                (lower({row}.username) ~ '{SUSPICIOUS_WORD_PATTERN}'
                 AND {row}.username ~ '{SUSPICIOUS_TRAILING_NUMBER}')
                OR {row}.username ~ '{SUSPICIOUS_DIGIT_RUN}'
                OR {row}.followers_count = 0
            ) THEN 'suspicious'
            WHEN $9::boolean AND {row}.is_business IS TRUE THEN 'business_account'
            WHEN $10::boolean AND NOT EXISTS (
                SELECT 1 FROM draw_engagements e
                WHERE e.draw_id = $1 AND e.kind = 'like' AND e.source_index = {row}.source_index
                  AND e.platform_user_id = {row}.platform_user_id
            ) THEN 'not_liked'
            WHEN $11::boolean AND NOT EXISTS (
                SELECT 1 FROM draw_engagements e
                WHERE e.draw_id = $1 AND e.kind = 'follow'
                  AND e.source_index = ($12::integer[])[{row}.source_index + 1]
                  AND e.platform_user_id = {row}.platform_user_id
            ) THEN 'not_following'
        END"""  # noqa: S608 - the row alias and this module's constants only


# A page of comments, COPYed into `incoming_entries`, stored with each entry's verdict and Merkle leaf.
STORE_STAGED = f"""
INSERT INTO draw_participants ({", ".join(ENTRY_COLUMNS)}, is_eligible, exclusion_reason, leaf_hash)
SELECT {", ".join("s." + column for column in ENTRY_COLUMNS)}, v.reason IS NULL, v.reason, {_leaf_hash("s")}
FROM incoming_entries s
-- OFFSET 0 keeps the verdict computed once per row, though it is read twice.
CROSS JOIN LATERAL (SELECT {_verdict("s", "false")} AS reason OFFSET 0) v
ON CONFLICT DO NOTHING
"""  # noqa: S608 - only this module's constants are interpolated

# Rows stored without a verdict or leaf: an uploaded list's.
DECIDE_UNDECIDED = f"""
UPDATE draw_participants p
SET is_eligible = v.reason IS NULL, exclusion_reason = v.reason, leaf_hash = {_leaf_hash("s")}
FROM draw_participants s
CROSS JOIN LATERAL (SELECT {_verdict("s", "false")} AS reason OFFSET 0) v
WHERE s.draw_id = $1 AND s.is_eligible IS NULL AND p.id = s.id
"""  # noqa: S608 - only this module's constants are interpolated

# Everyone's entries but their first: earliest by time, then by comment id; an uploaded list's rows in file order.
MARK_DUPLICATES = """
WITH ranked AS (
    SELECT id, exclusion_reason, row_number() OVER (
        PARTITION BY platform, platform_user_id
        ORDER BY coalesce(commented_at, 'infinity'), CASE WHEN source_index IS NULL THEN id END,
                 comment_id COLLATE "C"
    ) AS nth
    FROM draw_participants WHERE draw_id = $1
)
UPDATE draw_participants p SET is_eligible = false, exclusion_reason = 'duplicate'
FROM ranked r
WHERE p.id = r.id AND r.nth > 1
  AND r.exclusion_reason IS DISTINCT FROM 'blacklisted' AND r.exclusion_reason IS DISTINCT FROM 'duplicate'
"""

BLACKLIST_LATECOMERS = """
UPDATE draw_participants p SET is_eligible = false, exclusion_reason = 'blacklisted'
WHERE p.draw_id = $1 AND p.exclusion_reason IS DISTINCT FROM 'blacklisted' AND EXISTS (
    SELECT 1 FROM blacklist b
    WHERE b.user_id = $2 AND b.is_active AND b.platform IN (p.platform, 'all')
      AND b.username = lower(btrim(ltrim(btrim(normalize(p.username, NFKC)), '@')))
)
"""
COUNT_VERDICTS = (
    "SELECT exclusion_reason AS reason, count(*) AS entries FROM draw_participants WHERE draw_id = $1 GROUP BY 1"
)


@dataclass(frozen=True)
class Verdicts:
    participants: int
    eligible: int
    excluded: dict[str, int]


def like_pattern(keyword: str) -> str:
    """`%keyword%`, lower-cased, with LIKE's own wildcards taken literally."""
    escaped = keyword.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def rule_arguments(config: dict[str, Any], *, has_blacklist: bool, follow_scopes: list[int]) -> tuple[Any, ...]:
    """The statements' parameters $3…$12 from the draw's config (absent rules are off)."""
    rules = config.get("rules") or {}
    filters = config.get("filters") or {}
    return (
        has_blacklist,
        bool(rules.get("one_entry_per_user")),
        [like_pattern(keyword) for keyword in rules.get("comment_keywords") or () if keyword],
        int(rules.get("min_mentions") or 0),
        int(filters.get("min_followers") or 0),
        bool(filters.get("exclude_suspicious")),
        bool(filters.get("exclude_businesses")),
        bool(rules.get("require_like")),
        bool(rules.get("require_follow")),
        follow_scopes,
    )


async def has_blacklist(connection: Any, user_id: Any) -> bool:
    return bool(
        await connection.fetchval("SELECT EXISTS (SELECT 1 FROM blacklist WHERE user_id = $1 AND is_active)", user_id)
    )


async def settle_verdicts(
    connection: Any,
    draw_id: Any,
    user_id: Any,
    config: dict[str, Any],
    follow_scopes: list[int],
    *,
    has_undecided: bool,
) -> Verdicts:
    """Decide what is still undecided (an uploaded list's rows), late blacklist entries and duplicates, and count;
    in the caller's transaction. Comments are judged as they are stored: without a list there is nothing undecided."""
    blacklist = await has_blacklist(connection, user_id)
    arguments = rule_arguments(config, has_blacklist=blacklist, follow_scopes=follow_scopes)
    if has_undecided:
        await connection.execute(DECIDE_UNDECIDED, draw_id, user_id, *arguments)
    if blacklist:
        await connection.execute(BLACKLIST_LATECOMERS, draw_id, user_id)
    if (config.get("rules") or {}).get("one_entry_per_user"):
        await connection.execute(MARK_DUPLICATES, draw_id)
    counts = {row["reason"]: int(row["entries"]) for row in await connection.fetch(COUNT_VERDICTS, draw_id)}
    eligible = counts.pop(None, 0)
    excluded = {reason: counts[reason] for reason in EXCLUSION_ORDER if counts.get(reason)}
    return Verdicts(participants=eligible + sum(excluded.values()), eligible=eligible, excluded=excluded)
