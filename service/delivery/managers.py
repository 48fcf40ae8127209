"""Whose manage link a token is: the one check the rules API and the hub share."""

from __future__ import annotations

from service.delivery.audience import Audience
from service.delivery.links import Links
from service.journal.records import Subscriber

MAX_TOKEN_CHARS = 512


class ManageTokens:
    """A token names its subscriber only while they are confirmed and it is their newest link."""

    def __init__(self, links: Links, audience: Audience) -> None:
        self.links = links
        self.audience = audience

    def subscriber(self, token: str) -> Subscriber | None:
        """The subscriber whose current manage token ``token`` is (``None``: nobody's)."""
        if len(token) > MAX_TOKEN_CHARS:
            return None
        found = self.links.manager(token)
        if found is None:
            return None
        subscriber_id, generation = found
        subscriber = self.audience.subscribers.get(subscriber_id)
        if (
            subscriber is None
            or not subscriber.confirmed
            or subscriber.manage_generation != generation
        ):
            return None
        return subscriber

    def owner(self, token: str) -> str | None:
        """The id of :meth:`subscriber` (what the hub needs)."""
        subscriber = self.subscriber(token)
        return None if subscriber is None else subscriber.id
