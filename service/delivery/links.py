"""Signed links of mails and sign-ups: confirm, unsubscribe in one click, manage one's alerts."""

from __future__ import annotations

from service.delivery.tokens import CONFIRM, MANAGE, UNSUBSCRIBE, sign_token, verify_token
from service.journal.roles import Secrets


class Links:
    """Links under ``public_url``, signed with the journal's secret (read once, when first used)."""

    def __init__(self, public_url: str, secrets: Secrets) -> None:
        self.public_url = public_url
        self._secrets = secrets
        self._secret: bytes | None = None

    def _key(self) -> bytes:
        if self._secret is None:
            self._secret = self._secrets.secret()
        return self._secret

    def unsubscribe(self, subscriber_id: str) -> tuple[str, str]:
        """(URL, token) of ``subscriber_id``'s one-click unsubscribe link (RFC 8058)."""
        token = sign_token(self._key(), UNSUBSCRIBE, subscriber_id)
        return f"{self.public_url}/api/v1/unsubscribe?token={token}", token

    def confirm(self, subscriber_id: str) -> str:
        """The URL that confirms ``subscriber_id``'s sign-up (double opt-in)."""
        token = sign_token(self._key(), CONFIRM, subscriber_id)
        return f"{self.public_url}/api/v1/confirm?token={token}"

    def manage(self, subscriber_id: str, generation: int) -> tuple[str, str]:
        """(URL, token) of ``subscriber_id``'s "manage my alerts" link of ``generation``.

        The token is the subscriber's key to the rules API and their own
        alerts: rotating the generation makes every older one useless.
        """
        token = sign_token(self._key(), MANAGE, f"{subscriber_id}.{generation}")
        return f"{self.public_url}/?manage={token}", token

    def manager(self, token: str) -> tuple[str, int] | None:
        """(subscriber id, generation) of a manage token we signed; ``None`` otherwise."""
        subject = verify_token(self._key(), MANAGE, token)
        if subject is None:
            return None
        subscriber_id, _, generation = subject.rpartition(".")
        if not subscriber_id or not generation.isdigit():
            return None
        return subscriber_id, int(generation)

    def subject(self, purpose: str, token: str) -> str | None:
        """Whose link ``token`` is, if we signed it for ``purpose``."""
        return verify_token(self._key(), purpose, token)
