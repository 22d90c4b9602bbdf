"""The generated comments, likers and followers: deterministic, random-access, with the advertised mix."""

from __future__ import annotations

import re
import time

import msgspec

from web.sandbox import generator

POST = "a1b2c3d4e5f60718"
POSTED_AT = 1_790_000_000.0
BOT = re.compile(r"^[a-z]+_[a-z]+_\d+$")
KEYWORDS = ("amazing", "win", "love", "giveaway")


def test_the_same_post_id_always_gives_the_same_comments_and_each_is_computed_directly() -> None:
    page = generator.comments_page(POST, 2_000_000, POSTED_AT, 1_234_000, 50)
    generator.layout.cache_clear()
    assert generator.comments_page(POST, 2_000_000, POSTED_AT, 1_234_000, 50) == page
    assert generator.comment(POST, 1_234_017, POSTED_AT) == page[17]
    assert page[0]["id"] == f"{POST}_1234000"
    other = generator.comments_page("another-post", 2_000_000, POSTED_AT, 1_234_000, 50)
    assert [item["text"] for item in other] != [item["text"] for item in page]


def test_twenty_thousand_comments_have_the_advertised_mix() -> None:
    comments = generator.comments_page(POST, 20_000, POSTED_AT, 0, 20_000)
    assert len(comments) == 20_000
    authors = [item["author"] for item in comments]
    share = lambda count: count / len(comments)  # noqa: E731
    repeats = len(comments) - len({author["id"] for author in authors})
    assert 0.13 <= share(repeats) <= 0.17, "about 15% are a repeat comment by someone who already commented"
    assert 0.02 <= share(sum(bool(BOT.match(author["username"])) for author in authors)) <= 0.04
    bots = [author for author in authors if BOT.match(author["username"])]
    assert all(bot["followers_count"] < 50 for bot in bots), "bots have very few followers"
    assert 0.035 <= share(sum(author["account_type"] == "business" for author in authors)) <= 0.065
    assert {author["account_type"] for author in authors} == {"business", "personal", "creator"}
    mentions = [len(item["mentions"]) for item in comments]
    assert set(mentions) == {0, 1, 2, 3} and 0.4 <= share(mentions.count(0)) <= 0.6
    for item in comments:
        for name in item["mentions"]:
            assert f"@{name}" in item["text"]
    with_keyword = sum(any(word in item["text"].lower() for word in KEYWORDS) for item in comments)
    assert share(with_keyword) >= 0.3
    assert 0.3 <= share(sum(any(emoji in item["text"] for emoji in generator.EMOJI) for item in comments)) <= 0.5
    long = [item for item in comments if len(item["text"]) > 500]
    assert 0.003 <= share(len(long)) <= 0.008
    assert max(len(item["text"]) for item in comments) <= 2_200
    assert len({item["text"] for item in comments}) > 400, "varied text"


def test_usernames_are_unique_per_person() -> None:
    people = [generator.person(number) for number in range(0, 2_600_000, 7)]
    assert len({person["username"] for person in people}) == len(people)
    assert len({person["id"] for person in people}) == len(people)


def test_likers_and_followers_are_duplicate_free_agree_with_their_counts_and_overlap_the_commenters() -> None:
    count = 25_000
    commenters = {item["author"]["id"] for item in generator.comments_page(POST, count, POSTED_AT, 0, count)}
    total = generator.likes_count(POST, count)
    likers = [
        liker["id"]
        for start in range(0, total + 1_000, 1_000)
        for liker in generator.likers_page(POST, count, start, 1_000)
    ]
    assert len(likers) == total and len(set(likers)) == total
    assert likers == sorted(likers)
    assert 0.65 <= len(commenters & set(likers)) / len(commenters) <= 0.75

    audience = generator.post_audience(POST, count)
    followers_count = generator.audience_followers("4941375931", audience)
    followers = [
        person["id"]
        for start in range(0, followers_count, 1_000)
        for person in generator.followers_page("4941375931", followers_count, start, 1_000)
    ]
    assert len(followers) == followers_count == len(set(followers))
    assert 0.55 <= len(commenters & set(followers)) / len(commenters) <= 0.65


def test_a_page_of_a_thousand_comments_is_made_and_encoded_in_a_few_milliseconds() -> None:
    generator.comments_page(POST, 2_000_000, POSTED_AT, 0, 1_000)
    timings = []
    for start in range(1_000_000, 1_020_000, 1_000):
        began = time.perf_counter()
        msgspec.json.encode({"data": generator.comments_page(POST, 2_000_000, POSTED_AT, start, 1_000)})
        timings.append(time.perf_counter() - began)
    timings.sort()
    print(f"page of 1,000 comments: median {timings[len(timings) // 2] * 1000:.1f} ms")
    assert timings[len(timings) // 2] < 0.025
