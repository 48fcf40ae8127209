"""The signed links of mails and sign-ups: confirm a subscription, unsubscribe in one click."""

from __future__ import annotations

from service.delivery.tokens import CONFIRM, UNSUBSCRIBE, sign_token, verify_token
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

    def subject(self, purpose: str, token: str) -> str | None:
        """Whose link ``token`` is, if we signed it for ``purpose``."""
        return verify_token(self._key(), purpose, token)
