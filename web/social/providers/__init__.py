"""The registry of platform providers, by id."""

from __future__ import annotations

import httpx

from web.settings import Settings
from web.social.providers.base import Provider, ProviderConfig
from web.social.providers.facebook import FacebookProvider
from web.social.providers.instagram import InstagramProvider
from web.social.providers.sandbox import SandboxProvider
from web.social.providers.tiktok import TikTokProvider
from web.social.providers.x import XProvider

PROVIDERS: dict[str, type[Provider]] = {
    provider.id: provider
    for provider in (SandboxProvider, InstagramProvider, FacebookProvider, XProvider, TikTokProvider)
}
SANDBOX_CLIENT_ID = "cleack-sandbox"


def provider_class(platform: str) -> type[Provider]:
    try:
        return PROVIDERS[platform]
    except KeyError:
        raise LookupError(f"no provider for {platform!r}") from None


def available_platforms(settings: Settings) -> list[str]:
    """Platforms a creator can connect here: configured ones, and the sandbox where it runs."""
    return [platform for platform in PROVIDERS if provider_config(settings, platform) is not None]


def provider_config(settings: Settings, platform: str) -> ProviderConfig | None:
    redirect_uri = f"{settings.base_url}/accounts/callback/{platform}"
    if platform == "sandbox":
        if not settings.sandbox_enabled:
            return None
        return ProviderConfig(
            client_id=SANDBOX_CLIENT_ID,
            client_secret=sandbox_client_secret(settings),
            redirect_uri=redirect_uri,
            auth_base=settings.base_url,
            api_base=settings.sandbox_api_base or settings.base_url,
        )
    credentials = settings.platform_credentials.get(platform)
    if credentials is None:
        return None
    urls = settings.platform_urls.get(platform, {})
    defaults = provider_class(platform).default_urls
    return ProviderConfig(
        client_id=credentials[0],
        client_secret=credentials[1],
        redirect_uri=redirect_uri,
        auth_base=urls.get("auth") or defaults["auth"],
        api_base=urls.get("api") or defaults["api"],
        token_base=urls.get("token") or defaults.get("token") or urls.get("api") or defaults["api"],
        extra_bases={
            key: urls.get(key) or default for key, default in defaults.items() if key not in {"auth", "api", "token"}
        },
    )


def provider_for(settings: Settings, platform: str, http: httpx.AsyncClient) -> Provider:
    config = provider_config(settings, platform)
    if config is None:
        raise LookupError(f"{platform} is not configured here")
    return provider_class(platform)(config, http)


def sandbox_client_secret(settings: Settings) -> str:
    """The sandbox's client secret, derived from the secret key so every process agrees on it."""
    import hashlib
    import hmac

    return hmac.new(settings.secret_key.encode(), b"cleack-sandbox-client", hashlib.sha256).hexdigest()
