"""Time of the fairness core on a large draw: Merkle root, selection, certificate, for 1,000,000 eligible entries.

    .venv/bin/python bench/fairness.py [--entries 1000000] [--repeat 3]

The entries are tuples, as the draw engine streams them from SQL in canonical order. It prints the best of
`--repeat` runs for each step and their total against the target (at most 2 s), then, outside the target,
the time of one participant's inclusion proof and of re-verifying the certificate from the entries.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
# Run as a script, this file's folder heads the path and `import web` would find bench/web.py.
sys.path[:] = [entry for entry in sys.path if Path(entry or os.curdir).resolve() != BENCH_DIR]
sys.path.insert(0, str(BENCH_DIR.parent))

from web.fairness import (  # noqa: E402
    DrawFacts,
    Entry,
    InclusionProofBuilder,
    MerkleBuilder,
    Pick,
    build_certificate,
    generate_signing_key,
    new_secret,
    select_winners,
    verify_certificate,
)

TARGET_SECONDS = 2.0
CONFIG: dict[str, Any] = {
    "filters": {"min_followers": 100, "exclude_suspicious": True, "exclude_businesses": False},
    "rules": {
        "require_like": True,
        "require_comment": True,
        "require_follow": False,
        "comment_keywords": ["amazing", "win"],
        "min_mentions": 0,
        "one_entry_per_user": True,
    },
    "winners_count": 3,
    "alternates_count": 2,
}


def rows(count: int) -> list[tuple[str, str, str, str]]:
    """Entries in canonical order: user ids and comment ids of fixed width sort as they are generated."""
    return [("sandbox", f"{10_000_000 + i}", f"fan_{i}", f"17{i:015d}") for i in range(count)]


def best(repeat: int, step: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    entries = rows(args.entries)
    draw_id = uuid.uuid4()
    secret = new_secret()
    key = generate_signing_key()
    now = datetime.datetime.now(datetime.UTC)

    def root() -> bytes:
        builder = MerkleBuilder()
        builder.add_rows(entries)
        return builder.root()

    root_seconds, merkle_root = best(args.repeat, root)

    def select() -> Any:
        return select_winners(
            secret=secret,
            merkle_root=merkle_root,
            draw_id=draw_id,
            eligible=len(entries),
            winners_count=CONFIG["winners_count"],
            alternates_count=CONFIG["alternates_count"],
        )

    select_seconds, selection = best(args.repeat, select)

    def certify() -> dict[str, Any]:
        def picks(indices: list[int]) -> list[Pick]:
            return [Pick(index, Entry(*entries[index])) for index in indices]

        return build_certificate(
            draw=DrawFacts(draw_id, "Benchmark giveaway", ["sandbox"], [{"platform": "sandbox"}], now, now, now),
            config=CONFIG,
            participants=len(entries),
            excluded={},
            eligible=len(entries),
            merkle_root=merkle_root,
            secret=secret,
            winners=picks(selection.winner_indices),
            alternates=picks(selection.alternate_indices),
            signing_key=key,
            issued_at=now,
        )

    certify_seconds, certificate = best(args.repeat, certify)
    total = root_seconds + select_seconds + certify_seconds
    print(f"eligible entries:            {len(entries):>12,}")
    print(f"Merkle root:                 {root_seconds:>10.3f} s")
    print(f"selection (3 + 2):           {select_seconds * 1000:>10.3f} ms")
    print(f"certificate build+hash+sign: {certify_seconds * 1000:>10.3f} ms")
    verdict = "meets" if total <= TARGET_SECONDS else "MISSES"
    print(f"total:                       {total:>10.3f} s  ({verdict} the {TARGET_SECONDS:.0f} s target)")

    def prove() -> bytes:
        builder = InclusionProofBuilder(selection.winner_indices[0])
        builder.add_rows(entries)
        return builder.root()

    prove_seconds, proven_root = best(1, prove)
    assert proven_root == merkle_root
    print(f"inclusion proof (1 entry):   {prove_seconds:>10.3f} s")
    verify_seconds, report = best(1, lambda: verify_certificate(certificate, entries=(Entry(*row) for row in entries)))
    assert report.ok, report.first_failure
    print(f"verify with every entry:     {verify_seconds:>10.3f} s")


if __name__ == "__main__":
    main()
