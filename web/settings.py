"""One Settings object, read from the environment (and a `.env` file)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv

from web.fairness.note import parse_verifier_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Machine-local state (embedded database, development secret); git-ignored.
VAR_DIR = Path(os.environ.get("CLEACK_VAR_DIR") or PROJECT_ROOT / "var").resolve()
ENVIRONMENTS = ("development", "test", "production")
# drand's own relay: where rounds come from when BEACON_URL is unset and no sandbox beacon runs (production).
DRAND_URL = "https://api.drand.sh"
# A log's name is the first line of its checkpoints and the name of its key in signed notes.
LOG_ORIGIN_FORM = re.compile(r"[A-Za-z0-9._:/-]{1,200}")


class ConfigurationError(RuntimeError):
    """The environment does not describe a runnable configuration."""


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _development_secret() -> str:
    """A secret kept in var/ so that sessions survive restarts in development."""
    path = VAR_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


@dataclass(frozen=True)
class Settings:
    environment: str = "development"
    secret_key: str = ""
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    base_url: str = "http://127.0.0.1:8000"
    smtp_url: str | None = None
    mail_from: str = "Cleack <no-reply@cleack.local>"
    stripe_secret_key: str | None = None
    # One secret, or several separated by commas while the endpoint's secret is being rotated.
    stripe_webhook_secret: str | None = None
    # Where the Stripe API is reached; unset: Stripe itself, or the payments sandbox in development.
    stripe_api_base: str | None = None
    # Who receives the enterprise plan's contact form.
    sales_email: str = "sales@cleack.local"
    # App Store Server Notifications: the app's bundle id, Production or Sandbox, the numeric app id (Production)
    # and Apple's root certificates (DER or PEM files).
    apple_bundle_id: str | None = None
    apple_environment: str = "Production"
    apple_app_id: int | None = None
    apple_root_certificates: tuple[str, ...] = ()
    # App Store product id -> plan (monthly or annual).
    apple_product_plans: dict[str, str] = field(default_factory=dict)
    session_idle_minutes: int = 60 * 24 * 3
    session_absolute_hours: int = 24 * 30
    rate_limits_enabled: bool = True
    log_level: str = "INFO"
    # Addresses of reverse proxies whose X-Forwarded-For is believed (rate limits key on the client's address).
    trusted_proxies: str | None = None
    platform_credentials: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Per platform, overrides of its "auth", "api", "token" (and TikTok's "business") base addresses.
    platform_urls: dict[str, dict[str, str]] = field(default_factory=dict)
    # The sandbox platform under /sandbox: on outside production unless SANDBOX=off.
    sandbox: bool = True
    # Where the app reaches the sandbox API (its own address by default).
    sandbox_api_base: str | None = None
    # Keys for tokens at rest, newest first: new rows use the first, every one of them still reads.
    token_keys: tuple[str, ...] = ()
    # Certificate signing keys, newest first, each `key` or `key@start time` (web/certificates/keys.py).
    signing_keys: tuple[str, ...] = ()
    # The public randomness beacon (drand's HTTP API); unset: the app's own sandbox beacon where the sandbox runs,
    # else drand's relay and quicknet (always in production: randomness nobody holds).
    beacon_url: str | None = None
    beacon_chain_hash: str | None = None
    # The sandbox beacon's round period, in whole seconds.
    sandbox_beacon_period: int = 3
    # A draw's deciding round is the first one published strictly after the seal's time plus this margin.
    beacon_margin_seconds: float = 6.0
    # The public log's name (its checkpoints' origin); unset: BASE_URL's host and port, then "/log".
    log_origin: str | None = None
    # The log's witnesses, each "URL VERIFIER-KEY" (docs/fairness.md); `cleack run` starts a local one when unset.
    witnesses: tuple[str, ...] = ()

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def secure_cookies(self) -> bool:
        return self.is_production or self.base_url.startswith("https://")

    @property
    def log_name(self) -> str:
        """The origin line of the log's checkpoints: LOG_ORIGIN, else e.g. `cleack.example/log`."""
        return self.log_origin or f"{urlsplit(self.base_url).netloc or 'cleack.local'}/log"

    @property
    def sandbox_enabled(self) -> bool:
        return self.sandbox and not self.is_production

    @property
    def beacon_relay(self) -> str:
        """Where drand rounds are fetched: BEACON_URL, else the sandbox beacon where it runs, else drand's relay."""
        if self.beacon_url:
            return self.beacon_url
        return f"{self.base_url}/sandbox/beacon" if self.sandbox_enabled else DRAND_URL

    @property
    def beacon_margin(self) -> datetime.timedelta:
        return datetime.timedelta(seconds=self.beacon_margin_seconds)

    @property
    def payments_sandbox_enabled(self) -> bool:
        """The Stripe emulator under /sandbox/stripe: without Stripe keys, and never in production."""
        return not self.stripe_secret_key and not self.is_production

    @property
    def payments_enabled(self) -> bool:
        return bool(self.stripe_secret_key) or self.payments_sandbox_enabled

    @property
    def stripe_api_key(self) -> str:
        if self.stripe_secret_key:
            return self.stripe_secret_key
        return "sk_test_sandbox_" + self._derived("stripe-sandbox-api-key")

    @property
    def stripe_api_url(self) -> str | None:
        if self.stripe_api_base:
            return self.stripe_api_base
        return f"{self.base_url}/sandbox/stripe" if self.payments_sandbox_enabled else None

    @property
    def stripe_webhook_secrets(self) -> tuple[str, ...]:
        configured = tuple(part.strip() for part in (self.stripe_webhook_secret or "").split(",") if part.strip())
        if configured or not self.payments_sandbox_enabled:
            return configured
        # Generated per install, so that no two sandboxes accept each other's events.
        return ("whsec_" + self._derived("stripe-sandbox-webhook-secret"),)

    def _derived(self, purpose: str) -> str:
        return hmac.new(self.secret_key.encode(), purpose.encode(), hashlib.sha256).hexdigest()[:40]

    @property
    def dev_outbox_enabled(self) -> bool:
        return not self.is_production

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


PLATFORMS_WITH_CREDENTIALS = ("instagram", "facebook", "x", "tiktok")


def load_settings() -> Settings:
    load_dotenv(PROJECT_ROOT / ".env", override=False)
    environment = os.environ.get("CLEACK_ENV", "development").strip().lower()
    if environment not in ENVIRONMENTS:
        raise ConfigurationError(f"CLEACK_ENV must be one of {', '.join(ENVIRONMENTS)}, not {environment!r}")
    host = os.environ.get("HOST", "127.0.0.1")
    try:
        port = int(os.environ.get("PORT", "8000"))
    except ValueError as exc:
        raise ConfigurationError("PORT must be a number") from exc
    display_host = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104
    base_url = os.environ.get("BASE_URL", f"http://{display_host}:{port}").rstrip("/")

    secret_key = os.environ.get("SECRET_KEY", "")
    database_url = os.environ.get("DATABASE_URL") or None
    credentials = {
        platform: (
            os.environ[f"{platform.upper()}_CLIENT_ID"],
            os.environ[f"{platform.upper()}_CLIENT_SECRET"],
        )
        for platform in PLATFORMS_WITH_CREDENTIALS
        if os.environ.get(f"{platform.upper()}_CLIENT_ID") and os.environ.get(f"{platform.upper()}_CLIENT_SECRET")
    }
    platform_urls = {
        platform: {
            part: os.environ[f"{platform.upper()}_{part.upper()}_URL"].rstrip("/")
            for part in ("auth", "api", "token", "business")
            if os.environ.get(f"{platform.upper()}_{part.upper()}_URL")
        }
        for platform in PLATFORMS_WITH_CREDENTIALS
    }
    token_keys = tuple(key.strip() for key in os.environ.get("TOKEN_KEYS", "").split(",") if key.strip())
    apple_app_id = os.environ.get("APPLE_APP_ID", "").strip()
    if apple_app_id and not apple_app_id.isdigit():
        raise ConfigurationError("APPLE_APP_ID is the app's numeric Apple id")
    apple_product_plans = dict(
        pair.strip().split("=", 1) for pair in os.environ.get("APPLE_PRODUCT_PLANS", "").split(",") if "=" in pair
    )
    if any(plan not in ("monthly", "annual") for plan in apple_product_plans.values()):
        raise ConfigurationError("APPLE_PRODUCT_PLANS maps product ids to monthly or annual: id=monthly,id2=annual")
    for key in token_keys:
        try:
            valid = len(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))) == 32
        except ValueError:
            valid = False
        if not valid:
            raise ConfigurationError(
                "each TOKEN_KEYS entry is 32 bytes in URL-safe base64 (cleack rotate-keys --new-key)"
            )
    signing_keys = tuple(key.strip() for key in os.environ.get("SIGNING_KEYS", "").split(",") if key.strip())
    if signing_keys:
        from web.certificates.keys import SigningKeysError, parse_signing_keys

        try:
            parse_signing_keys(signing_keys)
        except SigningKeysError as exc:
            raise ConfigurationError(f"SIGNING_KEYS: {exc}") from exc
    log_origin = (os.environ.get("LOG_ORIGIN") or "").strip() or None
    if log_origin is not None and not LOG_ORIGIN_FORM.fullmatch(log_origin):
        raise ConfigurationError(
            "LOG_ORIGIN names the log in its checkpoints: letters, digits and . _ - / : only (cleack.example/log)"
        )
    witnesses = tuple(entry.strip() for entry in os.environ.get("WITNESSES", "").split(",") if entry.strip())
    for entry in witnesses:
        url, _, key = entry.partition(" ")
        if not url.startswith(("http://", "https://")) or not key.strip():
            raise ConfigurationError('each WITNESSES entry is "URL VERIFIER-KEY", e.g. "https://w.example w.example+…"')
        try:
            parse_verifier_key(key.strip())
        except ValueError as exc:
            raise ConfigurationError(f"WITNESSES: the key of {url}: {exc}") from exc
    beacon_url = (os.environ.get("BEACON_URL") or "").strip().rstrip("/") or None
    if beacon_url and not beacon_url.startswith(("http://", "https://")):
        raise ConfigurationError("BEACON_URL is a drand relay's address, e.g. https://api.drand.sh")
    beacon_chain_hash = (os.environ.get("BEACON_CHAIN_HASH") or "").strip().lower() or None
    if beacon_chain_hash and not re.fullmatch(r"[0-9a-f]{64}", beacon_chain_hash):
        raise ConfigurationError("BEACON_CHAIN_HASH is a drand chain hash: 64 hexadecimal digits")
    if environment == "production" and beacon_chain_hash:
        from web.fairness.drand import KNOWN_CHAINS

        if beacon_chain_hash not in KNOWN_CHAINS:
            raise ConfigurationError(
                "production draws only on a chain whose public key Cleack pins (quicknet): unset BEACON_CHAIN_HASH"
            )
    period = os.environ.get("SANDBOX_BEACON_PERIOD", "").strip() or "3"
    if not (period.isascii() and period.isdigit() and 1 <= int(period) <= 86400):
        raise ConfigurationError("SANDBOX_BEACON_PERIOD is the sandbox beacon's period in whole seconds (1 to 86400)")
    try:
        beacon_margin_seconds = float(os.environ.get("BEACON_MARGIN_SECONDS", "").strip() or "6")
    except ValueError:
        beacon_margin_seconds = -1.0
    if not 0 <= beacon_margin_seconds <= 3600:
        raise ConfigurationError("BEACON_MARGIN_SECONDS is a number of seconds from 0 to 3600 (default 6)")
    sandbox = _flag("SANDBOX", True)
    if environment == "production" and os.environ.get("SANDBOX") and sandbox:
        raise ConfigurationError("the sandbox platforms are refused in production: unset SANDBOX")
    if environment == "production":
        missing = [
            name
            for name, value in (
                ("SECRET_KEY", secret_key),
                ("DATABASE_URL", database_url),
                ("SMTP_URL", os.environ.get("SMTP_URL")),
                ("BASE_URL", os.environ.get("BASE_URL")),
                ("TOKEN_KEYS", token_keys),
                ("SIGNING_KEYS", signing_keys),
                ("WITNESSES", witnesses),
            )
            if not value
        ]
        if missing:
            raise ConfigurationError(f"production refuses to start without {', '.join(missing)}")
        if len(secret_key) < 32:
            raise ConfigurationError("SECRET_KEY must be at least 32 characters in production")
    elif not secret_key:
        secret_key = _development_secret()

    return Settings(
        environment=environment,
        secret_key=secret_key,
        database_url=database_url,
        host=host,
        port=port,
        base_url=base_url,
        smtp_url=os.environ.get("SMTP_URL") or None,
        mail_from=os.environ.get("MAIL_FROM", "Cleack <no-reply@cleack.local>"),
        stripe_secret_key=os.environ.get("STRIPE_SECRET_KEY") or None,
        stripe_webhook_secret=os.environ.get("STRIPE_WEBHOOK_SECRET") or None,
        stripe_api_base=(os.environ.get("STRIPE_API_BASE") or "").rstrip("/") or None,
        sales_email=os.environ.get("SALES_EMAIL", "sales@cleack.local"),
        apple_bundle_id=os.environ.get("APPLE_BUNDLE_ID") or None,
        apple_environment=os.environ.get("APPLE_ENVIRONMENT", "Production"),
        apple_app_id=int(apple_app_id) if apple_app_id else None,
        apple_root_certificates=tuple(
            path.strip() for path in os.environ.get("APPLE_ROOT_CERTIFICATES", "").split(",") if path.strip()
        ),
        apple_product_plans={key.strip(): value.strip() for key, value in apple_product_plans.items()},
        rate_limits_enabled=_flag("RATE_LIMITS", True),
        log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        trusted_proxies=os.environ.get("TRUSTED_PROXIES") or None,
        platform_credentials=credentials,
        platform_urls={platform: urls for platform, urls in platform_urls.items() if urls},
        sandbox=sandbox,
        sandbox_api_base=(os.environ.get("SANDBOX_API_URL") or "").rstrip("/") or None,
        token_keys=token_keys,
        signing_keys=signing_keys,
        beacon_url=beacon_url,
        beacon_chain_hash=beacon_chain_hash,
        sandbox_beacon_period=int(period),
        beacon_margin_seconds=beacon_margin_seconds,
        log_origin=log_origin,
        witnesses=witnesses,
    )
