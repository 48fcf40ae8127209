"""Who is asking: the operator (an admin token), a subscriber (their manage token), or anyone.

Both kinds of token come as ``Authorization: Bearer <token>``. A manage
token is signed for one subscriber and one generation of their link: it
stops working when they rotate it, unsubscribe, or are deleted.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from aiohttp import web

from service.api.context import ApiContext
from service.api.responses import ApiError
from service.delivery.managers import ManageTokens
from service.journal.records import Subscriber
from service.models import Viewer

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="strykr-alerts"'}


@dataclass(frozen=True, slots=True)
class Caller:
    admin: bool = False
    subscriber: Subscriber | None = None

    @property
    def viewer(self) -> Viewer | None:
        """What this caller may read: everything (``None``) for the operator."""
        if self.admin:
            return None
        return Viewer(None if self.subscriber is None else self.subscriber.id)

    def may_manage(self, owner: str | None) -> bool:
        """Whether this caller may change a rule of ``owner`` (``None``: the operator's)."""
        if self.admin:
            return True
        return owner is not None and self.subscriber is not None and self.subscriber.id == owner


def bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def is_admin_token(context: ApiContext, offered: str) -> bool:
    return any(
        hmac.compare_digest(offered.encode(), token.encode()) for token in context.http.admin_tokens
    )


def manager_of(context: ApiContext, token: str) -> Subscriber | None:
    """The confirmed subscriber whose current manage token ``token`` is (``None``: nobody's)."""
    return ManageTokens(context.links, context.audience).subscriber(token)


def identify(context: ApiContext, request: web.Request) -> Caller:
    """The caller of ``request``; a token that is neither kind is refused (401)."""
    offered = bearer(request)
    if offered is None:
        return Caller()
    if context.http.admin_tokens and is_admin_token(context, offered):
        return Caller(admin=True)
    subscriber = manager_of(context, offered)
    if subscriber is None:
        raise ApiError(
            401,
            "the token is neither an admin token nor a current manage link's token "
            "(a rotated link stops working; use the newest one)",
            headers=_CHALLENGE,
        )
    return Caller(subscriber=subscriber)


def require_caller(context: ApiContext, request: web.Request) -> Caller:
    """The caller, who must have a token (an admin's or a subscriber's manage token)."""
    caller = identify(context, request)
    if not caller.admin and caller.subscriber is None:
        raise ApiError(
            401,
            "expected Authorization: Bearer <token>: your manage link's token "
            "(in your confirmation mail, or shown after browser-push sign-up), or an admin token",
            headers=_CHALLENGE,
        )
    return caller
