"""The sandbox's people, comments, likers and followers, computed from ids rather than stored.

Everything here is a pure function: the same post id and index always give the same comment,
and comment i is computed directly (no walk from the start), so a page cursor is an offset.

The model:
- One population of people shared by every sandbox account, numbered 0, 1, 2, ...; a person's
  id, username, follower count and account type follow from their number.
- A post's commenters are the people `offset .. offset + distinct - 1` (the offset comes from the
  post id). In every period of 1,000 comments, 150 positions (chosen by the post id) are a
  repeat comment by someone who already commented; the other 850 are a new commenter's first.
- Likers of a post: 70% of its commenters (chosen by residue of the person number), then
  people who liked without commenting. Followers of an account: the first `followers_count`
  people whose number falls in the account's six residues out of ten, so that about 60% of
  every post's commenters follow. Both lists are random-access, duplicate-free and sorted.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MAX_COMMENTS = 2_000_000
MAX_TEXT = 2_200
PERIOD = 1_000
REPEATS_PER_PERIOD = 150
FRESH_PER_PERIOD = PERIOD - REPEATS_PER_PERIOD
LIKED_RESIDUES = 7  # of ten commenters like the post
FOLLOWING_RESIDUES = 6  # of ten people in an account's audience follow it
SILENT_LIKERS_PER_TEN_COMMENTERS = 3
PERSON_ID_BASE = 17_000_000_000
# People are numbered below this; usernames are a bijection of [0, USERNAME_SPACE).
USERNAME_SPACE = 10_000_000
MENTIONABLE = 1 << 16
_SCRAMBLE = 7_919_321  # coprime with USERNAME_SPACE, so `person * _SCRAMBLE` permutes it
SECONDS_PER_COMMENT = 0.3
FIRST_COMMENT_AFTER = 60

FIRST_NAMES = (
    "lena", "marco", "sofia", "noah", "amelie", "jules", "maya", "leo", "ines", "hugo", "clara", "oscar", "nina",
    "arthur", "lea", "louis", "emma", "tom", "zoe", "victor", "alice", "sam", "chloe", "adam", "julia", "max",
    "eva", "paul", "rosa", "felix", "mila", "theo", "anna", "liam", "iris", "ethan", "lucie", "matteo", "elena",
    "diego", "hana", "yuki", "omar", "sara", "ravi", "aisha", "kenji", "lara", "nico", "olga", "pablo", "quinn",
    "ruby", "simon", "tara", "uma", "vera", "will", "xena", "yann", "zara", "bruno", "carla", "dario", "elsa",
    "fanny", "gael", "helga", "ivan", "jade", "karim", "luna", "mona", "nora", "otto", "pia", "rafael", "selma",
    "timo", "ulla", "vince", "wendy", "yara", "zack", "anouk", "bea", "cyril", "dana", "enzo", "flora", "gus",
    "hector", "ilse", "jonas", "kira", "lisa", "manon", "nils", "ophelie", "remy",
)  # fmt: skip
SECOND_WORDS = (
    "sunset", "travels", "bakes", "runs", "reads", "paints", "films", "cooks", "style", "fit", "daily", "world",
    "music", "garden", "coffee", "vibes", "stories", "moments", "journal", "life", "adventures", "lens", "beats",
    "wanders", "kitchen", "yoga", "surf", "climbs", "rides", "dreams", "notes", "sketches", "colors", "pixels",
    "waves", "forest", "city", "ocean", "mountain", "studio", "home", "bloom", "light", "sky", "stone", "river",
    "field", "cloud", "spark", "path", "north", "south", "east", "west", "smiles", "plays", "sings", "dances",
    "writes", "knits", "bikes", "hikes", "swims", "skates", "dives", "grows", "makes", "builds", "shoots",
    "crafts", "designs", "codes", "games", "laughs", "roams", "wild", "urban", "retro", "cozy", "sweet", "bold",
    "calm", "happy", "lucky", "sunny", "golden", "little", "big", "blue", "green", "red", "pink", "violet",
    "amber", "jade", "silver", "velvet", "honey", "mint", "berry",
)  # fmt: skip
BUSINESS_WORDS = (
    "boutique", "bakery", "store", "official", "shop", "atelier", "market", "agency", "cafe", "brand",
    "salon", "deals", "outlet", "labs", "goods", "supply", "collective", "company", "wear", "co",
)  # fmt: skip
BOT_FIRST = ("win", "free", "promo", "gift", "cash", "prize", "lucky", "bonus", "crypto", "follow")
BOT_SECOND = ("prizes", "money", "deals", "giveaways", "winner", "rewards", "offers", "cards", "coins", "back")
OPENERS = (
    "This is amazing", "I would love to win this", "Count me in for the giveaway", "Love this so much",
    "Fingers crossed", "What a great giveaway", "Win win win", "Amazing work as always", "So beautiful",
    "I love your content", "Please pick me", "Need this in my life", "Such a generous giveaway",
    "Wow", "This looks so good", "Great post", "Hoping to win this time", "Incredible colours",
    "Been following for years", "Sharing with my friends", "Good luck everyone", "Perfect timing",
    "My sister would love this", "Just entered", "Thanks for the chance", "Dream prize", "Adorable",
    "Yes please", "Best account ever", "Totally in", "Absolutely stunning", "Can't wait for the results",
)  # fmt: skip
CLOSERS = (
    "", "", "", "", " Thank you!", " Good luck all.", " Hope I win!", " Love it.", " Amazing.",
    " Giveaway entered.", " Count me in.", " Keep it up.", " So excited.", " Fingers crossed!",
)  # fmt: skip
EMOJI = ("😍", "🔥", "🙏", "❤️", "🎉", "✨", "🤞", "😊", "👏", "💯", "🍀", "🥳", "😻", "🌟")
LONG_SENTENCES = (
    "I have been following this account for a long time and every single post makes my day better.",
    "The way you put together colours, light and little details is honestly amazing to me.",
    "My whole family watches your stories together in the evening, and we always end up laughing.",
    "If I win this giveaway I would share it with my best friend, who has had a really hard year.",
    "It is rare to find a creator who answers comments and actually cares about the community.",
    "I tried the recipe from your last video and it was the best thing I cooked this month.",
    "Thank you for organising this, it is lovely to see a giveaway done fairly and openly.",
    "I love how you explain everything step by step, it makes me want to try new things.",
)
ACCOUNT_TYPES_BY_KIND = {"bot": "personal", "business": "business", "creator": "creator", "personal": "personal"}
# Follower counts by kind, spread log-uniformly: bots have almost none, creators up to hundreds of thousands.
_FOLLOWERS = {
    "bot": tuple(spread % 40 for spread in range(1_000)),
    "business": tuple(int(200 * 10 ** (spread / 500)) for spread in range(1_000)),
    "creator": tuple(int(1_000 * 10 ** (spread / 400)) for spread in range(1_000)),
    "personal": tuple(int(12 * 10 ** (spread / 380)) for spread in range(1_000)),
}
_MASK64 = (1 << 64) - 1
_KIND_BY_ROLL = ("bot",) * 30 + ("business",) * 50 + ("creator",) * 70 + ("personal",) * 850
_BOT_WORDS = tuple(f"{first}_{second}" for first in BOT_FIRST for second in BOT_SECOND)
# Name and word joined by "_" or "."; the numeric suffix follows the word directly, so the parts read back uniquely.
_PERSONAL_NAMES = tuple(
    f"{name}{'_.'[(index + offset) % 2]}{word}"
    for index, name in enumerate(FIRST_NAMES)
    for offset, word in enumerate(SECOND_WORDS)
)
_BUSINESS_NAMES = tuple(
    f"{name}{'_.'[(index + offset) % 2]}{word}"
    for index, name in enumerate(FIRST_NAMES)
    for offset, word in enumerate(BUSINESS_WORDS)
)
_SUFFIXES = ("", *(str(number) for number in range(1, USERNAME_SPACE // len(_BUSINESS_NAMES) + 1)))
_PHRASES = tuple(opener + closer for opener in OPENERS for closer in CLOSERS)
# By four bits of a comment's hash: half mention nobody, a quarter one person, then two, then three.
_MENTION_SHIFTS = ((),) * 8 + (((4,),) * 4) + (((4, 20),) * 3) + ((4, 20, 36),)
# By eight bits: 60% of comments end without emoji, the others with one to three.
_EMOJI_TAILS = ("",) * 154 + tuple(
    " " + "".join(EMOJI[(tail + slot * 5) % len(EMOJI)] for slot in range(1 + tail // len(EMOJI) % 3))
    for tail in range(102)
)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Layout:
    """What a post id fixes once: where the repeat comments fall and whose comments they are."""

    seed: bytes
    repeats: frozenset[int]
    fresh_before: tuple[int, ...]  # for each position in a period, the new commenters before it
    offset: int  # the first commenter's person number
    liked_shift: int


def _digest(data: bytes, size: int = 16) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=size).digest(), "big")


@lru_cache(maxsize=512)
def layout(post_id: str) -> Layout:
    seed = hashlib.blake2b(post_id.encode(), digest_size=16, person=b"cleack-sandbox").digest()
    # Position 0 is always a first comment, so a repeat always has someone to repeat.
    ranked = sorted(range(1, PERIOD), key=lambda position: _digest(seed + position.to_bytes(2, "big"), 8))
    repeats = frozenset(ranked[:REPEATS_PER_PERIOD])
    fresh_before = []
    count = 0
    for position in range(PERIOD):
        fresh_before.append(count)
        count += position not in repeats
    number = _digest(seed, 8)
    return Layout(seed, repeats, tuple(fresh_before), (number % 50) * 1_000, (number >> 8) % 10)


def distinct_commenters(post_id: str, comments_count: int) -> int:
    periods, rest = divmod(comments_count, PERIOD)
    return periods * FRESH_PER_PERIOD + layout(post_id).fresh_before[rest]


# People


def _traits(number: int) -> int:
    """32 well-mixed bits per person (the murmur3 finaliser): cheaper than a hash, and people need no secrecy."""
    mixed = (number * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF
    mixed = ((mixed ^ (mixed >> 16)) * 0x85EBCA6B) & 0xFFFFFFFF
    mixed = ((mixed ^ (mixed >> 13)) * 0xC2B2AE35) & 0xFFFFFFFF
    return mixed ^ (mixed >> 16)


def person(number: int) -> dict[str, Any]:
    """A person as the API shows them (comment authors, likers, followers)."""
    traits = _traits(number)
    kind = _KIND_BY_ROLL[traits % 1_000]
    return {
        "id": str(PERSON_ID_BASE + number),
        "username": username(number, kind),
        "followers_count": _FOLLOWERS[kind][(traits >> 10) % 1_000],
        "account_type": ACCOUNT_TYPES_BY_KIND[kind],
    }


def username(number: int, kind: str | None = None) -> str:
    """Unique per person: the scrambled number is split into word choices and a numeric suffix."""
    kind = kind or _KIND_BY_ROLL[_traits(number) % 1_000]
    code = (number * _SCRAMBLE + 12_345) % USERNAME_SPACE
    if kind == "bot":
        return f"{_BOT_WORDS[code % 100]}_{code // 100}"
    if kind == "business":
        return f"{_BUSINESS_NAMES[code % len(_BUSINESS_NAMES)]}{_SUFFIXES[code // len(_BUSINESS_NAMES)]}"
    return f"{_PERSONAL_NAMES[code % len(_PERSONAL_NAMES)]}{_SUFFIXES[code // len(_PERSONAL_NAMES)]}"


@lru_cache(maxsize=MENTIONABLE)
def mentionable(number: int) -> str:
    """Comments mention people among the first MENTIONABLE: friends of friends, and quick to name."""
    return username(number)


# Comments


def iso(seconds: float) -> str:
    whole = int(seconds)
    return f"{_minute(whole // 60)}:{whole % 60:02d}Z"


@lru_cache(maxsize=4_096)
def _minute(minutes: int) -> str:
    return datetime.datetime.fromtimestamp(minutes * 60, datetime.UTC).strftime("%Y-%m-%dT%H:%M")


def comment(post_id: str, index: int, posted_at: float) -> dict[str, Any]:
    """Comment `index` of the post (0 is the oldest), as the API sends it."""
    return _comment(post_id, layout(post_id), index, posted_at + FIRST_COMMENT_AFTER)


def comments_page(
    post_id: str, comments_count: int, posted_at: float, start: int, limit: int, *, newest_first: bool = False
) -> list[dict[str, Any]]:
    """The page of `limit` comments from position `start`: oldest first, or newest first as some platforms list."""
    plan = layout(post_id)
    first_at = posted_at + FIRST_COMMENT_AFTER
    end = min(start + limit, comments_count)
    indices = range(comments_count - 1 - start, comments_count - 1 - end, -1) if newest_first else range(start, end)
    return [_comment(post_id, plan, index, first_at) for index in indices]


def _comment(post_id: str, plan: Layout, index: int, first_at: float) -> dict[str, Any]:
    periods, position = divmod(index, PERIOD)
    fresh_before = periods * FRESH_PER_PERIOD + plan.fresh_before[position]
    digest = hashlib.blake2b(plan.seed + index.to_bytes(4, "big"), digest_size=16).digest()
    # Two 64-bit halves: small integers are much cheaper to take apart than one 128-bit one.
    low = int.from_bytes(digest[:8], "big")
    high = int.from_bytes(digest[8:], "big")
    author = plan.offset + (low >> 40) % fresh_before if position in plan.repeats else plan.offset + fresh_before
    mentions = [mentionable(high >> shift & 0xFFFF) for shift in _MENTION_SHIFTS[high & 15]]
    if low & 1023 < 5:
        text = _long_text(low >> 10 & 7, 600 + (low >> 13) % 1_600)
    else:
        text = _PHRASES[(low >> 10) % len(_PHRASES)]
    if mentions:
        text += " @" + " @".join(mentions)
    text += _EMOJI_TAILS[low >> 24 & 255]
    return {
        "id": f"{post_id}_{index}",
        "text": text[:MAX_TEXT],
        "created_at": iso(first_at + index * SECONDS_PER_COMMENT),
        "mentions": mentions,
        "author": person(author),
    }


def _long_text(first: int, length: int) -> str:
    parts: list[str] = []
    while sum(len(part) + 1 for part in parts) < length:
        parts.append(LONG_SENTENCES[(first + len(parts)) % len(LONG_SENTENCES)])
    return " ".join(parts)[:length]


# Likers and followers: the k-th of a residue-filtered run of people, computed directly


def _count_in_residues(upper: int, residues: Sequence[int]) -> int:
    """How many people numbered below `upper` have `number % 10` in `residues` (sorted)."""
    full, rest = divmod(upper, 10)
    return full * len(residues) + sum(1 for residue in residues if residue < rest)


def _nth_in_residues(nth: int, residues: Sequence[int]) -> int:
    full, rest = divmod(nth, len(residues))
    return full * 10 + residues[rest]


def liked_residues(post_id: str) -> tuple[int, ...]:
    shift = layout(post_id).liked_shift
    return tuple(sorted((shift + step) % 10 for step in range(LIKED_RESIDUES)))


@dataclass(frozen=True)
class LikerRuns:
    first_commenter: int
    commenters_end: int
    commenter_likers: int
    silent_likers: int
    residues: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.commenter_likers + self.silent_likers


def liker_runs(post_id: str, comments_count: int) -> LikerRuns:
    plan = layout(post_id)
    distinct = distinct_commenters(post_id, comments_count)
    residues = liked_residues(post_id)
    first, end = plan.offset, plan.offset + distinct
    return LikerRuns(
        first_commenter=first,
        commenters_end=end,
        commenter_likers=_count_in_residues(end, residues) - _count_in_residues(first, residues),
        silent_likers=distinct * SILENT_LIKERS_PER_TEN_COMMENTERS // 10,
        residues=residues,
    )


def likes_count(post_id: str, comments_count: int) -> int:
    return liker_runs(post_id, comments_count).total


def liker(post_id: str, comments_count: int, nth: int) -> int:
    """The person number of the post's nth liker (commenters first, by number; then silent likers)."""
    runs = liker_runs(post_id, comments_count)
    if nth < runs.commenter_likers:
        return _nth_in_residues(_count_in_residues(runs.first_commenter, runs.residues) + nth, runs.residues)
    return runs.commenters_end + nth - runs.commenter_likers


def likers_page(post_id: str, comments_count: int, start: int, limit: int) -> list[dict[str, Any]]:
    end = min(start + limit, likes_count(post_id, comments_count))
    return [person(liker(post_id, comments_count, nth)) for nth in range(start, end)]


def following_residues(account_id: str) -> tuple[int, ...]:
    shift = _digest(b"account" + account_id.encode(), 8) % 10
    return tuple(sorted((shift + step) % 10 for step in range(FOLLOWING_RESIDUES)))


def audience_followers(account_id: str, people: int) -> int:
    """How many followers an account has when everyone numbered below `people` saw its posts."""
    return _count_in_residues(people, following_residues(account_id))


def post_audience(post_id: str, comments_count: int) -> int:
    """Everyone below this number may have commented on or liked the post."""
    runs = liker_runs(post_id, comments_count)
    return runs.commenters_end + runs.silent_likers


def followers_page(account_id: str, followers_count: int, start: int, limit: int) -> list[dict[str, Any]]:
    residues = following_residues(account_id)
    end = min(start + limit, followers_count)
    return [person(_nth_in_residues(nth, residues)) for nth in range(start, end)]


def seconds_of(moment: datetime.datetime) -> float:
    return (moment - EPOCH).total_seconds()


def comments_span_seconds(comments_count: int) -> float:
    """How long before now a post must have been published for all its comments to be in the past."""
    return FIRST_COMMENT_AFTER + comments_count * SECONDS_PER_COMMENT + 3_600
