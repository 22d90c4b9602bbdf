"""The provider registry: every platform is honest about what it can do, and lives where configuration says."""

from __future__ import annotations

import pytest

from web.settings import Settings, load_settings
from web.social.providers import PROVIDERS, available_platforms, provider_config
from web.social.providers.base import Capability

REAL_PLATFORMS = ("instagram", "facebook", "x", "tiktok")


def test_the_four_platforms_and_the_sandbox_are_registered() -> None:
    assert set(PROVIDERS) == {"sandbox", *REAL_PLATFORMS}
    assert all(PROVIDERS[platform].id == platform for platform in PROVIDERS)


@pytest.mark.parametrize("platform", list(PROVIDERS))
def test_each_capability_a_platform_lacks_has_its_own_reason(platform: str) -> None:
    provider = PROVIDERS[platform]
    assert provider.capabilities and provider.capabilities <= set(Capability)
    lacking = set(Capability) - provider.capabilities
    assert set(provider.unavailable) == lacking
    for capability in lacking:
        reason = provider.why_not(capability)
        assert reason.startswith(provider.name) or provider.name in reason
        assert reason.endswith(".") and len(reason) > 30


def test_what_the_official_apis_allow() -> None:
    can = {platform: PROVIDERS[platform].capabilities for platform in REAL_PLATFORMS}
    assert Capability.COMMENTS in set.intersection(*(set(capabilities) for capabilities in can.values()))
    assert Capability.LIKERS not in can["instagram"] and Capability.FOLLOWERS not in can["instagram"]
    assert Capability.LIKERS in can["facebook"] and Capability.FOLLOWERS not in can["facebook"]
    assert {Capability.LIKERS, Capability.FOLLOWERS, Capability.AUTHOR_FOLLOWERS} <= can["x"]
    assert Capability.LIKERS not in can["tiktok"] and Capability.FOLLOWERS not in can["tiktok"]
    assert PROVIDERS["x"].uses_pkce and PROVIDERS["tiktok"].uses_pkce


def test_a_platform_without_credentials_is_not_offered() -> None:
    settings = Settings(secret_key="k" * 40, sandbox=False)
    assert available_platforms(settings) == []
    assert provider_config(settings, "instagram") is None


def test_configured_platforms_use_the_production_addresses_by_default() -> None:
    settings = Settings(
        secret_key="k" * 40,
        base_url="https://cleack.example",
        sandbox=False,
        platform_credentials={platform: (f"{platform}-id", f"{platform}-secret") for platform in REAL_PLATFORMS},
    )
    assert available_platforms(settings) == list(REAL_PLATFORMS)
    x = provider_config(settings, "x")
    assert x is not None
    assert (x.client_id, x.client_secret) == ("x-id", "x-secret")
    assert x.redirect_uri == "https://cleack.example/accounts/callback/x"
    assert (x.auth_base, x.api_base, x.token_base) == ("https://x.com", "https://api.x.com", "https://api.x.com")
    instagram = provider_config(settings, "instagram")
    assert instagram is not None
    assert (instagram.auth_base, instagram.token_base, instagram.api_base) == (
        "https://www.instagram.com",
        "https://api.instagram.com",
        "https://graph.instagram.com",
    )
    tiktok = provider_config(settings, "tiktok")
    assert tiktok is not None and tiktok.extra_bases == {"business": "https://business-api.tiktok.com"}


def test_base_addresses_come_from_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEACK_ENV", "test")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    for platform in REAL_PLATFORMS:
        monkeypatch.setenv(f"{platform.upper()}_CLIENT_ID", f"{platform}-id")
        monkeypatch.setenv(f"{platform.upper()}_CLIENT_SECRET", f"{platform}-secret")
    monkeypatch.setenv("INSTAGRAM_AUTH_URL", "http://127.0.0.1:9001/")
    monkeypatch.setenv("INSTAGRAM_API_URL", "http://127.0.0.1:9002")
    monkeypatch.setenv("INSTAGRAM_TOKEN_URL", "http://127.0.0.1:9003")
    monkeypatch.setenv("TIKTOK_API_URL", "http://127.0.0.1:9004")
    monkeypatch.setenv("TIKTOK_BUSINESS_URL", "http://127.0.0.1:9005")
    settings = load_settings()

    instagram = provider_config(settings, "instagram")
    assert instagram is not None
    assert (instagram.auth_base, instagram.api_base, instagram.token_base) == (
        "http://127.0.0.1:9001",
        "http://127.0.0.1:9002",
        "http://127.0.0.1:9003",
    )
    tiktok = provider_config(settings, "tiktok")
    assert tiktok is not None
    assert (tiktok.auth_base, tiktok.api_base) == ("https://www.tiktok.com", "http://127.0.0.1:9004")
    assert tiktok.token_base == "https://open.tiktokapis.com"
    assert tiktok.extra_bases == {"business": "http://127.0.0.1:9005"}
    facebook = provider_config(settings, "facebook")
    assert facebook is not None and facebook.api_base == "https://graph.facebook.com"
