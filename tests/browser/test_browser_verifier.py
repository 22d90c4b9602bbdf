"""The certificate checks itself in the visitor's browser (static/js/verify.js), online or from a saved copy.

Each test renders templates/certificates/_browser_check.html around a certificate made by the fairness core,
writes it with the two scripts beside it, and opens it in Chromium either from file:// with the network cut
(a copy saved to disk, offline) or from a stand-in origin served with the app's Content-Security-Policy.
What the browser finds is compared with what `cleack verify` (web.fairness.verify_certificate) finds.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jinja2 import Environment, FileSystemLoader, select_autoescape
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Route, expect

from tests.fairness.draws import KEY_CREATED_AT, collected_entries, make_draw
from web.fairness import (
    DrawFacts,
    Entry,
    certificate_hash,
    generate_signing_key,
    key_record,
    key_set,
    parse_key_set,
    sign_certificate_hash,
    sort_canonically,
    verify_certificate,
)
from web.fairness.certificate_v2 import LogProof, SaltedPick, build_certificate_v2, opened_draw, select_winners_v2
from web.fairness.drand import (
    BLS_UNCHAINED_G1,
    QUICKNET,
    BeaconRound,
    ChainInfo,
    beacon_record,
    bls_public_key,
    bls_secret_from_seed,
    randomness_of,
    sign_round,
)
from web.fairness.entries import derive_salt
from web.fairness.log import blacklist_digest, build_record, next_head, sign_checkpoint, subjects
from web.fairness.merkle import DrawTreesBuilder
from web.fairness.note import COSIGNATURE_V1, cosign, parse_verifier_key, split_note, verifier_key
from web.fairness.signing import key_id, public_key_bytes
from web.fairness.timestamps import rfc3339
from web.security import content_security_policy

pytestmark = pytest.mark.browser

PROJECT = Path(__file__).resolve().parents[2]
SCRIPTS = (PROJECT / "static/js/vendor/noble-curves-2.4.0.min.js", PROJECT / "static/js/verify.js")
ORIGIN = "cleack.test/log"
WITNESS = "witness.test"
SERVED_AT = "http://cleack.test"
PASSED = "Checked in your browser: every check passed"
CONFIG = {
    "filters": {"min_followers": 100, "exclude_suspicious": True, "exclude_businesses": False},
    "rules": {"require_comment": True, "comment_keywords": ["win"], "one_entry_per_user": True},
    "winners_count": 3,
    "alternates_count": 2,
}
SOURCES = [{"platform": "instagram", "post_id": "p1"}, {"platform": "x", "post_id": "1790000000000000000"}]
# Text that needs every escape of canonical JSON, HTML that must stay text, and keys whose code-point order is
# not their UTF-16 order (U+FF71 before U+1F389): the browser must hash what the server hashed.
TITLE = 'Giveaway 🌷 "quoted" \\ tab\there\u2028\u007f é </script><b>bold</b>'
NOTES = {"ｱ": 1, "🎉": 2, "a\u0001": "x\u001f/", "z": [-9007199254740991, 9007199254740991]}
# A BLS chain of the tests' own, the same scheme as quicknet (as the sandbox beacon has).
TEST_CHAIN_SECRET = bls_secret_from_seed(b"cleack browser verifier test chain, 32+ bytes")
TEST_CHAIN_KEY = bls_public_key(TEST_CHAIN_SECRET).hex()
TEST_CHAIN = ChainInfo(
    chain_hash=hashlib.sha256(
        bytes.fromhex(TEST_CHAIN_KEY) + (1767225600).to_bytes(8, "big") + (3).to_bytes(8, "big")
    ).hexdigest(),
    public_key=TEST_CHAIN_KEY,
    period=3,
    genesis_time=1767225600,
    scheme=BLS_UNCHAINED_G1,
    beacon_id="cleack-sandbox",
)
# quicknet's real round 1000 (docs/fairness.md §17.1), published at 2023-08-23T15:59:24Z.
QUICKNET_ROUND_1000 = BeaconRound(
    1000,
    "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39",
    "fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd",
)


@dataclass
class Issued:
    """A certificate and what its page shows with it: the published key set and the witness keys."""

    certificate: dict[str, Any]
    key: Ed25519PrivateKey
    key_set: dict[str, Any]
    witness_keys: list[str] = field(default_factory=list)


def draw_v2(
    eligible: int = 40,
    *,
    winners_count: int = 3,
    alternates_count: int = 2,
    created_at: datetime.datetime = datetime.datetime(2026, 11, 22, 18, 0, tzinfo=datetime.UTC),
    chain: ChainInfo = TEST_CHAIN,
    published: BeaconRound | None = None,
    signed_round: int | None = None,
    cosigned_after_round: bool = False,
) -> Issued:
    """A cleack-draw-v2 draw as the server runs it: opened, sealed, logged, witnessed, drawn and certified.

    `published` is a real round of `chain` (else the round the seal fixes, signed with the tests' chain key);
    `signed_round` puts another round's signature in its place; `cosigned_after_round` dates the witness's
    cosignature after the round was published.
    """
    key, witness = generate_signing_key(), Ed25519PrivateKey.generate()
    keys_since = min(KEY_CREATED_AT, created_at - datetime.timedelta(days=1))
    draw_id = uuid.uuid4()
    sealed_at = created_at + datetime.timedelta(seconds=2)
    certified_at = sealed_at + datetime.timedelta(seconds=30)
    draw = DrawFacts(draw_id, TITLE, ["instagram", "x"], SOURCES, created_at, created_at, certified_at)
    config = {**CONFIG, "notes": NOTES, "winners_count": winners_count, "alternates_count": alternates_count}

    salt_key = hashlib.sha256(draw_id.bytes).digest()
    eligible_entries = sort_canonically(collected_entries(eligible))
    excluded = [
        (Entry("x", "bot-1", "spam_bot", "c-bot"), "suspicious"),
        (Entry("instagram", "42", "no_kw", "c-nokw"), "keyword_missing"),
    ]
    rows = sorted([(entry, "eligible") for entry in eligible_entries] + excluded, key=lambda row: row[0].key)
    trees = DrawTreesBuilder()
    trees.add_rows([(*entry.fields, derive_salt(salt_key, entry), verdict) for entry, verdict in rows])

    opened = build_record(
        "opened",
        origin=ORIGIN,
        seq=1,
        draw_id=draw_id,
        at=created_at,
        signing_key=key,
        draw=opened_draw(
            {"title": draw.title, "platforms": draw.platforms, "sources": SOURCES, "created_at": rfc3339(created_at)}
        ),
        config=config,
        blacklist=dict(zip(("sha256", "count"), blacklist_digest([]), strict=True)),
        scheduled_at=None,
        subjects=subjects(SOURCES),
        beacon={"chain_hash": chain.chain_hash},
    )
    other_draw = build_record(
        "cancelled", origin=ORIGIN, seq=2, draw_id=uuid.uuid4(), at=created_at, signing_key=key, stage="queued"
    )
    round_ = published.round if published else chain.round_at(sealed_at + datetime.timedelta(seconds=6)) + 1
    sealed = build_record(
        "sealed",
        origin=ORIGIN,
        seq=3,
        draw_id=draw_id,
        at=sealed_at,
        signing_key=key,
        opened=opened["record_hash"],
        counts=trees.counts(),
        merkle_root=trees.merkle_root().hex(),
        collected_root=trees.collected_root().hex(),
        beacon={"chain_hash": chain.chain_hash, "round": round_},
    )
    later = build_record(
        "cancelled", origin=ORIGIN, seq=4, draw_id=uuid.uuid4(), at=sealed_at, signing_key=key, stage="queued"
    )
    head_before_seal = next_head(
        next_head(bytes(32), bytes.fromhex(opened["record_hash"])), bytes.fromhex(other_draw["record_hash"])
    )
    head = next_head(
        next_head(head_before_seal, bytes.fromhex(sealed["record_hash"])), bytes.fromhex(later["record_hash"])
    )
    checkpoint = sign_checkpoint(ORIGIN, 4, head, key)
    text, _ = split_note(checkpoint)
    cosigned = chain.seconds_of(round_) + 1 if cosigned_after_round else int(sealed_at.timestamp()) + 1
    witness_key = verifier_key(WITNESS, COSIGNATURE_V1, public_key_bytes(witness)).text
    log = LogProof(
        ORIGIN,
        head_before_seal,
        [bytes.fromhex(later["record_hash"])],
        checkpoint,
        [cosign(text, WITNESS, witness, cosigned)],
        [witness_key],
    )

    if published is None:
        signature = sign_round(TEST_CHAIN_SECRET, signed_round or round_)
        published = BeaconRound(round_, signature.hex(), randomness_of(signature).hex())
    beacon = beacon_record(chain, published)
    selection = select_winners_v2(
        sealed_record_hash=bytes.fromhex(sealed["record_hash"]),
        randomness=bytes.fromhex(beacon["randomness"]),
        eligible=eligible,
        winners_count=winners_count,
        alternates_count=alternates_count,
    )

    def picks(indices: list[int]) -> list[SaltedPick]:
        return [
            SaltedPick(index, eligible_entries[index], derive_salt(salt_key, eligible_entries[index]))
            for index in indices
        ]

    # A cheating operator does not use the builder's own checks: they are skipped for the cheats made here.
    cheating = signed_round is not None or cosigned_after_round
    with mock.patch("web.fairness.certificate_v2._input_problems", return_value=[]) if cheating else nullcontext():
        certificate = build_certificate_v2(
            draw=draw,
            config=config,
            counts=trees.counts(),
            merkle_root=trees.merkle_root(),
            collected_root=trees.collected_root(),
            opened=opened,
            sealed=sealed,
            log=log,
            beacon=beacon,
            winners=picks(selection.winner_indices),
            alternates=picks(selection.alternate_indices),
            signing_key=key,
            issued_at=certified_at,
        )
    return Issued(certificate, key, key_set([key_record(key, keys_since)]), [witness_key])


def draw_v1() -> Issued:
    draw = make_draw(40)
    return Issued(draw.certificate, draw.key, draw.key_set)


def copied(issued: Issued) -> dict[str, Any]:
    """The certificate as a page holds it: JSON, with no Python object shared between its parts."""
    cert: dict[str, Any] = json.loads(json.dumps(issued.certificate))
    return cert


def resigned_by_another_key(issued: Issued) -> dict[str, Any]:
    """The same content, hashed again and signed by a key the key set does not publish."""
    intruder = generate_signing_key()
    cert = {**copied(issued), "key_id": key_id(intruder)}
    cert["certificate_hash"] = certificate_hash(cert)
    cert["signature"] = sign_certificate_hash(intruder, cert["certificate_hash"])
    return cert


def with_non_canonical_signature(issued: Issued) -> dict[str, Any]:
    """The same 64 signature bytes spelled another way: the last character's unused bits set."""
    cert = copied(issued)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(cert["signature"][-1])
    cert["signature"] = cert["signature"][:-1] + alphabet[last | 0b0011]
    assert cert["signature"] != issued.certificate["signature"]
    return cert


def with_changed_winner(issued: Issued) -> dict[str, Any]:
    cert = copied(issued)
    cert["winners"][0]["username"] = "the_organisers_cousin"
    return cert


def with_changed_count(issued: Issued) -> dict[str, Any]:
    """One eligible entry counted as excluded instead: the sum still holds, the seal disagrees."""
    cert = copied(issued)
    cert["counts"]["eligible"] -= 1
    cert["counts"]["excluded"]["suspicious"] += 1
    return cert


def with_fractional_number(issued: Issued) -> dict[str, Any]:
    """2.0 has no canonical form (integers only), though a lax reader would take it for 2."""
    cert = copied(issued)
    cert["config"]["notes"]["ｱ"] = 1.0
    return cert


def with_changed_seal_byte(issued: Issued) -> dict[str, Any]:
    cert = copied(issued)
    root = cert["sealed"]["collected_root"]
    cert["sealed"]["collected_root"] = root[:10] + ("0" if root[10] != "0" else "1") + root[11:]
    return cert


def python_failures(cert: dict[str, Any], issued: Issued) -> set[str]:
    """The checks `cleack verify` fails for the same certificate, key set and witness keys."""
    witnesses = [parse_verifier_key(text) for text in issued.witness_keys] or None
    report = verify_certificate(cert, keys=parse_key_set(issued.key_set), witnesses=witnesses)
    return {check.name for check in report.checks if not check.ok}


# The page, saved to disk or served


def write_page(folder: Path, cert: dict[str, Any], issued: Issued) -> Path:
    """The partial rendered in a bare page, with the two scripts beside it: what "save page" keeps."""
    environment = Environment(loader=FileSystemLoader(PROJECT / "templates"), autoescape=select_autoescape())
    environment.globals["static"] = lambda path: Path(path).name
    page = environment.from_string(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Certificate</title>'
        '<link rel="icon" href="data:,"></head>'
        '<body><main>{% include "certificates/_browser_check.html" %}</main></body></html>'
    )
    html = page.render(cert=cert, key_set=issued.key_set, witness_keys=issued.witness_keys)
    folder.mkdir(parents=True, exist_ok=True)
    for script in SCRIPTS:
        shutil.copy(script, folder / script.name)
    path = folder / "certificate.html"
    path.write_text(html, encoding="utf-8")
    return path


@dataclass
class Visit:
    page: Page
    errors: list[str]

    @property
    def section(self) -> Locator:
        return self.page.locator("#browser-check")

    def headline(self) -> str:
        headline = self.page.get_by_test_id("browser-check-headline")
        expect(headline).to_be_visible()
        return headline.inner_text()

    def failed_checks(self) -> set[str]:
        self.headline()
        items = self.page.locator("[data-testid=browser-check-item][data-ok=false]")
        return {items.nth(i).get_attribute("data-check") or "" for i in range(items.count())}

    def check_names(self) -> list[str]:
        self.headline()
        items = self.page.get_by_test_id("browser-check-item")
        return [items.nth(i).get_attribute("data-check") or "" for i in range(items.count())]


@pytest.fixture
def offline_context(browser: Browser) -> Iterator[BrowserContext]:
    """A browser with no network: only file:// loads."""
    context = browser.new_context(locale="en-GB")
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    context.set_offline(True)
    yield context
    context.close()


def watch(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


@pytest.fixture
def open_saved_copy(offline_context: BrowserContext, tmp_path: Path) -> Callable[..., Visit]:
    """`open_saved_copy(cert, issued)`: the page saved to disk, opened from file:// offline."""
    opened = 0

    def open_copy(cert: dict[str, Any], issued: Issued) -> Visit:
        nonlocal opened
        opened += 1
        path = write_page(tmp_path / f"copy-{opened}", cert, issued)
        page = offline_context.new_page()
        errors = watch(page)
        page.goto(path.as_uri())
        return Visit(page, errors)

    return open_copy


# A saved copy, offline


def test_a_saved_v2_certificate_checks_itself_offline_and_every_check_passes(
    open_saved_copy: Callable[..., Visit],
) -> None:
    issued = draw_v2()

    visit = open_saved_copy(issued.certificate, issued)

    assert visit.headline() == PASSED
    assert visit.check_names() == [
        "format",
        "certificate hash",
        "opened record",
        "sealed record",
        "log",
        "witness",
        "beacon",
        "seed",
        "selection",
        "winner leaves",
        "signature",
    ]
    not_checked = visit.page.get_by_test_id("browser-check-not-checked")
    expect(not_checked).to_contain_text("the entries list")
    expect(visit.section).to_have_attribute("data-crypto", "webcrypto")
    expect(visit.page.get_by_test_id("browser-check-warning")).to_contain_text("a development sandbox")
    assert visit.page.locator("b").count() == 0
    assert python_failures(issued.certificate, issued) == set()
    assert visit.errors == []


def test_a_saved_v1_certificate_checks_itself_offline_and_every_check_passes(
    open_saved_copy: Callable[..., Visit],
) -> None:
    issued = draw_v1()

    visit = open_saved_copy(issued.certificate, issued)

    assert visit.headline() == PASSED
    assert visit.check_names() == [
        "format",
        "certificate hash",
        "commitment",
        "counts",
        "seed",
        "selection",
        "winner leaves",
        "signature",
    ]
    expect(visit.page.get_by_test_id("browser-check-not-checked")).to_contain_text("the entries list")
    assert visit.errors == []


def test_a_certificate_on_drand_quicknet_verifies_under_the_pinned_key(open_saved_copy: Callable[..., Visit]) -> None:
    # Sealed 14 s before quicknet published round 1000, with that round's real BLS signature.
    issued = draw_v2(
        created_at=datetime.datetime(2023, 8, 23, 15, 59, 8, tzinfo=datetime.UTC),
        chain=QUICKNET,
        published=QUICKNET_ROUND_1000,
    )

    visit = open_saved_copy(issued.certificate, issued)

    assert visit.headline() == PASSED
    expect(visit.page.locator("[data-check=beacon]")).to_contain_text("the pinned key of drand:quicknet")
    assert python_failures(issued.certificate, issued) == set()
    assert visit.errors == []


TAMPERINGS_V2 = {
    "a changed winner": (with_changed_winner, {"certificate hash", "winner leaves"}),
    "a changed count": (with_changed_count, {"certificate hash", "sealed record"}),
    "a re-signed certificate with another key": (resigned_by_another_key, {"signature"}),
    "a changed byte in the seal": (with_changed_seal_byte, {"certificate hash", "sealed record"}),
    "a non-canonical base64url signature": (with_non_canonical_signature, {"signature"}),
    "a fractional number": (with_fractional_number, {"certificate hash"}),
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS_V2))
def test_a_tampered_v2_certificate_fails_the_checks_that_name_it(
    open_saved_copy: Callable[..., Visit], tampering: str
) -> None:
    issued = draw_v2()
    alter, expected = TAMPERINGS_V2[tampering]
    cert = alter(issued)

    visit = open_saved_copy(cert, issued)

    failed = visit.failed_checks()
    assert expected <= failed
    assert failed == python_failures(cert, issued)
    assert visit.headline() == f"Checked in your browser: {len(failed)} check(s) failed"
    assert visit.errors == []


def test_a_beacon_signature_from_another_round_fails_the_beacon_check(open_saved_copy: Callable[..., Visit]) -> None:
    # The server took the next round's output (a valid signature, of round R + 1) and drew from it.
    honest = draw_v2()
    round_ = honest.certificate["beacon"]["round"]
    issued = draw_v2(signed_round=round_ + 1)

    visit = open_saved_copy(issued.certificate, issued)

    assert visit.failed_checks() == {"beacon"} == python_failures(issued.certificate, issued)
    expect(visit.page.locator("[data-check=beacon]")).to_contain_text(f"not the chain's signature of round {round_}")
    assert visit.headline() == "Checked in your browser: 1 check(s) failed"
    assert visit.errors == []


def test_a_cosignature_dated_after_the_round_fails_the_witness_check(open_saved_copy: Callable[..., Visit]) -> None:
    issued = draw_v2(cosigned_after_round=True)

    visit = open_saved_copy(issued.certificate, issued)

    assert visit.failed_checks() == {"witness"} == python_failures(issued.certificate, issued)
    expect(visit.page.locator("[data-check=witness]")).to_contain_text("not before round")
    assert visit.errors == []


TAMPERINGS_V1 = {
    "a changed winner": (with_changed_winner, {"certificate hash", "winner leaves"}),
    "a re-signed certificate with another key": (resigned_by_another_key, {"signature"}),
    "a non-canonical base64url signature": (with_non_canonical_signature, {"signature"}),
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS_V1))
def test_a_tampered_v1_certificate_fails_the_checks_that_name_it(
    open_saved_copy: Callable[..., Visit], tampering: str
) -> None:
    issued = draw_v1()
    alter, expected = TAMPERINGS_V1[tampering]
    cert = alter(issued)

    visit = open_saved_copy(cert, issued)

    failed = visit.failed_checks()
    assert expected <= failed
    assert failed == python_failures(cert, issued)
    assert visit.errors == []


def test_a_hundred_winners_are_checked_well_within_a_second(open_saved_copy: Callable[..., Visit]) -> None:
    issued = draw_v2(400, winners_count=100, alternates_count=10)

    visit = open_saved_copy(issued.certificate, issued)

    assert visit.headline() == PASSED
    assert len(issued.certificate["winners"]) == 100
    assert int(visit.section.get_attribute("data-duration-ms") or "1000") < 1000
    assert visit.errors == []


# Online, under the app's Content-Security-Policy


@pytest.fixture
def served_context(browser: Browser) -> Iterator[tuple[BrowserContext, dict[str, Path]]]:
    """A browser whose only website is SERVED_AT, serving the files put in the returned dict, with the app's CSP.

    The crypto bundle comes late (as on a slow line), after verify.js: `defer` must keep them in order.
    """
    files: dict[str, Path] = {}

    def serve(route: Route) -> None:
        url = route.request.url
        path = files.get(url.removeprefix(SERVED_AT + "/").split("?")[0]) if url.startswith(SERVED_AT + "/") else None
        if path is None:
            route.abort()
            return
        if path.name.startswith("noble-curves"):
            time.sleep(0.4)
        content_type = "text/html; charset=utf-8" if path.suffix == ".html" else "text/javascript; charset=utf-8"
        route.fulfill(
            status=200,
            body=path.read_bytes(),
            headers={"content-type": content_type, "content-security-policy": content_security_policy()},
        )

    context = browser.new_context(locale="en-GB")
    context.route("**/*", serve)
    yield context, files
    context.close()


def test_the_page_checks_itself_under_the_content_security_policy_without_webcrypto(
    served_context: tuple[BrowserContext, dict[str, Path]], tmp_path: Path
) -> None:
    # A plain-http origin is not a secure context: WebCrypto is missing and the bundled hashes take over.
    context, files = served_context
    issued = draw_v2()
    folder = write_page(tmp_path, issued.certificate, issued).parent
    files.update({path.name: path for path in folder.iterdir()})
    page = context.new_page()
    errors = watch(page)

    page.goto(f"{SERVED_AT}/certificate.html")

    visit = Visit(page, errors)
    assert visit.headline() == PASSED
    expect(visit.section).to_have_attribute("data-crypto", "noble")
    assert errors == []
