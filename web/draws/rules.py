"""The draw's rules in SQL, decided as entries are stored so that no pass rewrites every entry.

Each excluded entry gets exactly one reason, the first that applies in the order of
EXCLUSION_ORDER. Likers and followers are fetched before the comments, so every rule is
decided when a page of comments is stored, `duplicate` (one entry per person) included: a
comment is a duplicate when the same person has an earlier entry, on this page or stored
before it (found through the entry key, which leads with the person). A platform that serves
newest first sends a person's earlier comment after the later one: that page then turns the
entry stored before into the duplicate (STORE_OVERTAKEN). A duplicate outranks every reason
but `blacklisted`. An uploaded list's rows are stored without a verdict and get theirs when
the rules run, with one statement that re-ranks every person's entries (MARK_DUPLICATES);
entries of people blacklisted while the draw ran are settled then too.

The blacklist is the one frozen for the draw when it was created (`draw_blacklists`): a change made later does
not apply to it. Every entry, eligible or not, gets its salted Merkle leaf as it is stored, so that the seal
commits to each collected entry with its verdict (docs/fairness.md).

Parameters of the statements: $1 draw id, $2 the draw's salt key, then `rule_arguments` (except STORE_OVERTAKEN).
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
# The same order when every entry is on one platform: a constant first key only slows the sort down.
CANONICAL_ORDER_ONE_PLATFORM = 'platform_user_id COLLATE "C", comment_id COLLATE "C"'
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


def encoded_entry(row: str) -> str:
    """The canonical JSON of [platform, platform_user_id, username, entry_id] as UTF-8, as web.fairness.entries
    encodes it: PostgreSQL's to_json escapes a string exactly as the canonical encoding does."""
    fields = " || ',' || ".join(
        f"to_json({row}.{column}::text)::text" for column in ("platform", "platform_user_id", "username", "comment_id")
    )
    return f"convert_to('[' || {fields} || ']', 'UTF8')"


def salt_of(encoded: str, salt_key: str) -> str:
    """The entry's 16-byte salt: SHA-256(salt key ‖ encoded entry), first 16 bytes (web.fairness.derive_salt)."""
    return f"substring(sha256({salt_key} || {encoded}) FROM 1 FOR 16)"


def entry_salt(row: str, salt_key: str) -> str:
    return salt_of(encoded_entry(row), salt_key)


def _leaf_hash(encoded: str) -> str:
    """SHA-256(0x00 ‖ salt ‖ encoded entry): the salted leaf of web.fairness.entries, from the entry's encoding
    (built once per row by `_encoded`, which the statement joins as `enc`) and the salt key ($2)."""
    return f"sha256('\\x00'::bytea || {salt_of(encoded, '$2::bytea')} || {encoded})"


def _encoded(row: str) -> str:
    """The row's encoding as a lateral join `enc(encoded)`: hashed twice (salt, then leaf), built once."""
    return f"CROSS JOIN LATERAL (SELECT {encoded_entry(row)} AS encoded OFFSET 0) enc"


def _person_order(row: str) -> str:
    """Which of a person's entries counts: the earliest by time; without a time, the first stored (an uploaded
    list's rows in file order); then by entry id. Three values, compared as a row with < and sorted on."""
    return (
        f"coalesce({row}.commented_at, 'infinity'), "
        f"CASE WHEN {row}.commented_at IS NULL THEN {row}.id ELSE '00000000-0000-0000-0000-000000000000'::uuid END, "
        f"coalesce({row}.comment_id, '') COLLATE \"C\""
    )


def _turns_duplicate(row: str) -> str:
    """Whether `row`, a person's entry but not their first, becomes a duplicate: unless it is one already, or
    blacklisted, the one reason a duplicate does not outrank."""
    return f"coalesce({row}.exclusion_reason, '') NOT IN ('blacklisted', 'duplicate')"


def _verdict(row: str, duplicate: str) -> str:
    """The first reason that excludes `row` (NULL when it is eligible); `duplicate` says whether it repeats a person."""
    return f"""
        CASE
            WHEN $3::boolean AND EXISTS (
                SELECT 1 FROM draw_blacklists b
                WHERE b.draw_id = $1 AND b.platform IN ({row}.platform, 'all')
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


# The columns a page of comments brings, COPYed into the connection's staging table (typed as draw_participants
# types them); the draw, the platform and the source are the same for the whole page and come in as parameters.
PAGE_CONSTANTS = ("draw_id", "platform", "source_index")
STAGED_COLUMNS = tuple(column for column in ENTRY_COLUMNS if column not in PAGE_CONSTANTS)
STAGING_TABLE = f"""
CREATE TEMP TABLE IF NOT EXISTS incoming_entries ON COMMIT DELETE ROWS
AS SELECT {", ".join(STAGED_COLUMNS)} FROM draw_participants WITH NO DATA
"""  # noqa: S608 - only this module's constants are interpolated


def _store_staged(*, skip_stored: bool) -> str:
    """A page of comments, from `incoming_entries`, stored with each entry's verdict and its salted Merkle leaf;
    $13 is the platform and $14 the source's index. A comment repeats its author when an earlier one of theirs
    is on the page or already stored (with one_entry_per_user, $4). The answer says how many were stored and
    whether the page holds someone's earliest entry so far, ahead of one stored before (then STORE_OVERTAKEN runs).

    A comment already stored breaks the entry key: the page is then stored again skipping such comments
    (`skip_stored`), which costs every row more than the rare repeat is worth checking for."""
    on_conflict = "ON CONFLICT DO NOTHING" if skip_stored else ""
    duplicate = "(s.nth > 1 OR s.earlier_stored)"
    return f"""
WITH staged AS (
    SELECT {", ".join("s." + column for column in STAGED_COLUMNS)},
           $1::uuid AS draw_id, $13::varchar COLLATE "C" AS platform, $14::smallint AS source_index,
           coalesce(stored.earlier, false) AS earlier_stored, coalesce(stored.later, false) AS later_stored,
           row_number() OVER (PARTITION BY s.platform_user_id ORDER BY {_person_order("s")}) AS nth
    FROM incoming_entries s
    LEFT JOIN LATERAL (
        SELECT bool_or(({_person_order("e")}) < ({_person_order("s")})) AS earlier,
               bool_or(({_person_order("s")}) < ({_person_order("e")}))
                   FILTER (WHERE e.exclusion_reason IS DISTINCT FROM 'duplicate') AS later
        FROM draw_participants e
        WHERE e.draw_id = $1 AND e.platform = $13 AND e.platform_user_id = s.platform_user_id
    ) stored ON $4::boolean
),
stored AS (
    INSERT INTO draw_participants ({", ".join(ENTRY_COLUMNS)}, is_eligible, exclusion_reason, leaf_hash)
    SELECT {", ".join("s." + column for column in ENTRY_COLUMNS)}, v.reason IS NULL, v.reason,
           {_leaf_hash("enc.encoded")}
    FROM staged s
    -- OFFSET 0 keeps the verdict computed once per row, though it is read three times.
    CROSS JOIN LATERAL (SELECT {_verdict("s", duplicate)} AS reason OFFSET 0) v
    {_encoded("s")}
    {on_conflict}
    RETURNING 1
)
SELECT (SELECT count(*) FROM stored) AS stored,
       EXISTS (SELECT 1 FROM staged s WHERE s.nth = 1 AND s.later_stored) AS overtakes
"""  # noqa: S608 - only this module's constants are interpolated


STORE_STAGED = _store_staged(skip_stored=False)
STORE_STAGED_SKIPPING_STORED = _store_staged(skip_stored=True)

# After a page that overtakes ($2 its platform): the entries stored before it that now come after their person's
# earliest. The lateral subquery (kept apart by OFFSET 0) reads each person's entries through the entry key.
STORE_OVERTAKEN = f"""
UPDATE draw_participants p SET is_eligible = false, exclusion_reason = 'duplicate'
FROM (
    SELECT DISTINCT ON (s.platform_user_id) s.platform_user_id, {_person_order("s")}
    FROM incoming_entries s ORDER BY s.platform_user_id, {_person_order("s")}
) earliest (platform_user_id, at, seq, entry)
CROSS JOIN LATERAL (
    SELECT e.id FROM draw_participants e
    WHERE e.draw_id = $1 AND e.platform = $2 AND e.platform_user_id = earliest.platform_user_id
      AND (earliest.at, earliest.seq, earliest.entry) < ({_person_order("e")})
      AND {_turns_duplicate("e")}
    OFFSET 0
) later
WHERE p.id = later.id
"""  # noqa: S608 - only this module's constants are interpolated

# Rows stored without a verdict or leaf: an uploaded list's.
DECIDE_UNDECIDED = f"""
UPDATE draw_participants p
SET is_eligible = v.reason IS NULL, exclusion_reason = v.reason, leaf_hash = {_leaf_hash("enc.encoded")}
FROM draw_participants s
CROSS JOIN LATERAL (SELECT {_verdict("s", "false")} AS reason OFFSET 0) v
{_encoded("s")}
WHERE s.draw_id = $1 AND s.is_eligible IS NULL AND p.id = s.id
"""  # noqa: S608 - only this module's constants are interpolated

# Everyone's entries but their first, over the whole draw: when an uploaded list's rows join the comments.
MARK_DUPLICATES = f"""
WITH ranked AS (
    SELECT id, exclusion_reason,
           row_number() OVER (PARTITION BY p.platform, p.platform_user_id ORDER BY {_person_order("p")}) AS nth
    FROM draw_participants p WHERE draw_id = $1
)
UPDATE draw_participants p SET is_eligible = false, exclusion_reason = 'duplicate'
FROM ranked r
WHERE p.id = r.id AND r.nth > 1
  AND {_turns_duplicate("r")}
"""  # noqa: S608 - only this module's constants are interpolated

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


def has_list(sources: list[dict[str, Any]]) -> bool:
    """Whether an uploaded list is among the draw's sources."""
    return any(source.get("kind") == "list" for source in sources)


def rule_arguments(
    config: dict[str, Any], *, has_blacklist: bool, follow_scopes: list[int], has_list: bool = False
) -> tuple[Any, ...]:
    """The statements' parameters $3…$12 from the draw's config (absent rules are off). With an uploaded list among
    the sources, comments are not judged duplicates as they are stored: MARK_DUPLICATES ranks everything at the end."""
    rules = config.get("rules") or {}
    filters = config.get("filters") or {}
    return (
        has_blacklist,
        bool(rules.get("one_entry_per_user")) and not has_list,
        [like_pattern(keyword) for keyword in rules.get("comment_keywords") or () if keyword],
        int(rules.get("min_mentions") or 0),
        int(filters.get("min_followers") or 0),
        bool(filters.get("exclude_suspicious")),
        bool(filters.get("exclude_businesses")),
        bool(rules.get("require_like")),
        bool(rules.get("require_follow")),
        follow_scopes,
    )


async def has_blacklist(connection: Any, draw_id: Any) -> bool:
    """Whether the blacklist frozen for the draw has anyone on it."""
    return bool(await connection.fetchval("SELECT EXISTS (SELECT 1 FROM draw_blacklists WHERE draw_id = $1)", draw_id))


async def settle_verdicts(
    connection: Any,
    draw_id: Any,
    salt_key: bytes,
    config: dict[str, Any],
    follow_scopes: list[int],
    *,
    has_list: bool,
) -> Verdicts:
    """Decide an uploaded list's rows (stored without a verdict) and everyone's duplicates across the whole draw when
    there is one, and count; in the caller's transaction. Without a list, comments were judged as they were stored,
    duplicates included, and only the counting reads every entry."""
    if has_list:
        blacklist = await has_blacklist(connection, draw_id)
        arguments = rule_arguments(config, has_blacklist=blacklist, follow_scopes=follow_scopes)
        await connection.execute(DECIDE_UNDECIDED, draw_id, salt_key, *arguments)
        if (config.get("rules") or {}).get("one_entry_per_user"):
            await connection.execute(MARK_DUPLICATES, draw_id)
    counts = {row["reason"]: int(row["entries"]) for row in await connection.fetch(COUNT_VERDICTS, draw_id)}
    eligible = counts.pop(None, 0)
    excluded = {reason: counts[reason] for reason in EXCLUSION_ORDER if counts.get(reason)}
    return Verdicts(participants=eligible + sum(excluded.values()), eligible=eligible, excluded=excluded)
