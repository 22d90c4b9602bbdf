"""Selection: a seed from secret, root and draw id; then uniform, unbiased picks without replacement."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections import Counter

import pytest

from web.fairness import Beacon, commitment, derive_seed, new_secret, select_indices, selection_sizes
from web.fairness.sampling import sample_without_replacement, stream_block, stream_words, uniform_below

TOP = 2**64
# Chi-square critical values at p = 0.001 (the test fails only when the counts are that unlikely).
CHI2_CRITICAL_0_001 = {6: 22.458, 9: 27.877}


def seed_number(number: int) -> bytes:
    return hashlib.sha256(f"seed {number}".encode()).digest()


def chi_square(counts: Counter[int], categories: int, total: int) -> float:
    expected = total / categories
    return sum((counts[category] - expected) ** 2 / expected for category in range(categories))


def test_one_pick_from_seven_is_uniform_over_20000_draws() -> None:
    counts = Counter(select_indices(seed_number(number), 7, 1)[0] for number in range(20_000))
    assert chi_square(counts, 7, 20_000) < CHI2_CRITICAL_0_001[6], counts


def test_each_of_three_picks_from_ten_is_uniform_over_20000_draws() -> None:
    draws = [select_indices(seed_number(number), 10, 3) for number in range(20_000)]
    for position in range(3):
        counts = Counter(draw[position] for draw in draws)
        assert chi_square(counts, 10, 20_000) < CHI2_CRITICAL_0_001[9], (position, counts)
    assert all(len(set(draw)) == 3 for draw in draws)


def test_rejection_sampling_discards_the_words_that_would_bias_the_result() -> None:
    # 2**64 = 7q + 2: the two top words would make 0 and 1 likelier, so they are drawn again.
    limit = TOP - TOP % 7
    assert limit == TOP - 2
    assert uniform_below(iter([TOP - 1, TOP - 2, 12345]), 7) == 12345 % 7
    assert uniform_below(iter([limit - 1]), 7) == 6
    stream = iter([TOP - 1, 5])
    assert uniform_below(stream, 3) == 2
    assert list(stream) == []


def test_sampling_consumes_one_word_per_pick_unless_it_rejects_one() -> None:
    # Bound 4 divides 2**64 and never rejects; bound 3 rejects the top word.
    assert sample_without_replacement(iter([1, TOP - 1, 4]), 4, 2) == [1, 2]
    assert sample_without_replacement(iter([0, TOP - 1, 1]), 4, 2) == [0, 2]


def test_picks_never_repeat_and_k_at_least_n_is_a_permutation() -> None:
    for number in range(200):
        seed = seed_number(number)
        assert sorted(select_indices(seed, 9, 9)) == list(range(9))
        assert sorted(select_indices(seed, 9, 50)) == list(range(9))
        picks = select_indices(seed, 1000, 60)
        assert len(set(picks)) == 60 and all(0 <= pick < 1000 for pick in picks)
    assert select_indices(seed_number(1), 0, 5) == []
    assert select_indices(seed_number(1), 5, 0) == []
    assert select_indices(seed_number(1), 1, 3) == [0]


def test_selection_is_a_prefix_of_any_longer_selection_from_the_same_seed() -> None:
    seed = seed_number(8)
    assert select_indices(seed, 2_000_000, 5) == select_indices(seed, 2_000_000, 50)[:5]


def test_winners_and_alternates_are_capped_by_the_eligible_entries() -> None:
    assert selection_sizes(100, 3, 2) == (3, 2)
    assert selection_sizes(4, 3, 2) == (3, 1)
    assert selection_sizes(2, 3, 2) == (2, 0)
    assert selection_sizes(0, 3, 2) == (0, 0)


def test_seed_is_hmac_of_root_and_draw_id_and_beacon_changes_it() -> None:
    secret, root, draw_id = new_secret(), hashlib.sha256(b"root").digest(), uuid.uuid4()
    beacon = Beacon("drand:quicknet", 42, hashlib.sha256(b"round 42").hexdigest())

    assert derive_seed(secret, root, draw_id) == hmac.new(secret, root + draw_id.bytes, hashlib.sha256).digest()
    assert (
        derive_seed(secret, root, draw_id, beacon)
        == hmac.new(secret, root + draw_id.bytes + bytes.fromhex(beacon.value_hex), hashlib.sha256).digest()
    )
    assert derive_seed(secret, root, uuid.uuid4()) != derive_seed(secret, root, draw_id)
    assert commitment(secret) == hashlib.sha256(secret).hexdigest()
    assert len(new_secret()) == 32 and new_secret() != secret


def test_stream_blocks_are_hmac_of_the_label_and_counter_read_as_big_endian_words() -> None:
    seed = seed_number(1)
    block = hmac.new(seed, b"cleack-draw-v1" + (1).to_bytes(8, "big"), hashlib.sha256).digest()
    assert stream_block(seed, 1) == block
    words = stream_words(seed)
    first_eight = [next(words) for _ in range(8)]
    assert first_eight[4:] == [int.from_bytes(block[offset : offset + 8], "big") for offset in range(0, 32, 8)]


@pytest.mark.parametrize(
    ("source", "round_", "value"),
    [("", 1, "00" * 32), ("drand", -1, "00" * 32), ("drand", 1, "AB" * 32), ("drand", 1, "00" * 31)],
)
def test_malformed_beacons_are_refused(source: str, round_: int, value: str) -> None:
    with pytest.raises(ValueError, match="beacon"):
        Beacon(source, round_, value)


def test_secret_and_root_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="secret"):
        derive_seed(b"short", bytes(32), uuid.uuid4())
    with pytest.raises(ValueError, match="root"):
        derive_seed(bytes(32), b"short", uuid.uuid4())
