"""The draw rules and filters, and which platform capability each one needs to be checked."""

from __future__ import annotations

from dataclasses import dataclass

from web.social.providers.base import Capability, Provider


@dataclass(frozen=True)
class DrawRule:
    key: str
    label: str
    needs: Capability


@dataclass(frozen=True)
class RuleSupport:
    rule: DrawRule
    available: bool
    reason: str | None


DRAW_RULES = (
    DrawRule("require_comment", "Commented on the post", Capability.COMMENTS),
    DrawRule("comment_keywords", "Comment contains keywords", Capability.COMMENTS),
    DrawRule("min_mentions", "Mentions friends", Capability.COMMENTS),
    DrawRule("one_entry_per_user", "One entry per person", Capability.COMMENTS),
    DrawRule("exclude_suspicious", "Leave out suspicious accounts", Capability.COMMENTS),
    DrawRule("require_like", "Liked the post", Capability.LIKERS),
    DrawRule("require_follow", "Follows you", Capability.FOLLOWERS),
    DrawRule("min_followers", "Has at least N followers", Capability.AUTHOR_FOLLOWERS),
    DrawRule("exclude_businesses", "Leave out business accounts", Capability.AUTHOR_ACCOUNT_TYPE),
)
RULES_BY_KEY = {rule.key: rule for rule in DRAW_RULES}


def rule_support(provider: type[Provider]) -> list[RuleSupport]:
    return [
        RuleSupport(
            rule,
            rule.needs in provider.capabilities,
            None if rule.needs in provider.capabilities else provider.why_not(rule.needs),
        )
        for rule in DRAW_RULES
    ]
