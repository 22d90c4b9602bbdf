"""One Settings object, read from the environment (and a `.env` file)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Machine-local state (embedded database, development secret); git-ignored.
VAR_DIR = Path(os.environ.get("CLEACK_VAR_DIR") or PROJECT_ROOT / "var").resolve()
ENVIRONMENTS = ("development", "test", "production")


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
    stripe_webhook_secret: str | None = None
    session_idle_minutes: int = 60 * 24 * 3
    session_absolute_hours: int = 24 * 30
    rate_limits_enabled: bool = True
    log_level: str = "INFO"
    # Addresses of reverse proxies whose X-Forwarded-For is believed (rate limits key on the client's address).
    trusted_proxies: str | None = None
    platform_credentials: dict[str, tuple[str, str]] = field(default_factory=dict)

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
    if environment == "production":
        missing = [
            name
            for name, value in (
                ("SECRET_KEY", secret_key),
                ("DATABASE_URL", database_url),
                ("SMTP_URL", os.environ.get("SMTP_URL")),
                ("BASE_URL", os.environ.get("BASE_URL")),
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
        rate_limits_enabled=_flag("RATE_LIMITS", True),
        log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        trusted_proxies=os.environ.get("TRUSTED_PROXIES") or None,
        platform_credentials=credentials,
    )
