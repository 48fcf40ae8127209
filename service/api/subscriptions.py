"""``/api/v1/subscribers``, ``/confirm`` and ``/unsubscribe``: who gets alerts, with consent.

An email subscription is double opt-in: it is stored unconfirmed, a mail with
a signed link goes to the address, and nothing else is sent to it until the
link is opened. A browser push subscription is active at once (the browser
asked its user). Apprise URLs make this server call other hosts, so only an
admin may add them. Every mail carries a one-click unsubscribe link (RFC 8058)
that works without login.
"""

from __future__ import annotations

import dataclasses
import html
import math
import secrets
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from service.api.callers import bearer, is_admin_token, manager_of
from service.api.context import ApiContext
from service.api.responses import ApiError, json_response, read_json
from service.api.subscribe_request import SubscriptionRequest, parse_subscription
from service.delivery.apprise_urls import push_url_problem
from service.delivery.destinations import redact_url, resolved_problem, url_problem
from service.delivery.tokens import CONFIRM, UNSUBSCRIBE
from service.errors import DeliveryError, RequestError
from service.journal.records import Subscriber
from service.timestamps import NS_PER_SECOND

log = structlog.get_logger("service.api")

MAX_ID_CHARS = 64


class SubscriptionsApi:
    def __init__(self, context: ApiContext) -> None:
        self.context = context

    # -- public ---------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        context = self.context
        body = await read_json(request, timeout_s=context.http.body_timeout_seconds)
        try:
            wanted = parse_subscription(body, known_symbols=context.view.known_symbols())
        except RequestError as error:
            raise ApiError(400, str(error)) from None
        if wanted.push and not self.is_admin(request):
            raise ApiError(
                403,
                "push: apprise URLs make this server call other hosts; they need an admin token",
            )
        for index, url in enumerate(wanted.push):
            problem = push_url_problem(url)
            if problem is not None:
                raise ApiError(400, f"push[{index}]: {problem}")
        if wanted.email is not None and context.confirmations is None:
            raise ApiError(422, "email: this service does not send email; use browser push")
        if wanted.webpush is not None and context.push.vapid_private_key is None:
            raise ApiError(
                422, "webpush: this service has no Web Push key ([push] vapid_private_key)"
            )
        if wanted.webpush is not None:
            await self._check_endpoint(wanted.webpush.endpoint)
        if wanted.email is not None:
            self._check_pending(wanted.email)
        subscriber = Subscriber(
            id=f"sub_{secrets.token_urlsafe(12)}",
            email=wanted.email,
            push=wanted.push,
            webpush=() if wanted.webpush is None else (wanted.webpush,),
            symbols=self._symbols(wanted),
            kinds=wanted.kinds,
            confirmed=wanted.email is None,
        )
        context.subscribers.put_subscriber(subscriber, now_ns=context.clock_ns())
        if subscriber.email is not None:
            await self._send_confirmation(subscriber)
        context.audience.reload()
        log.info(
            "subscriber_added",
            subscriber=subscriber.id,
            channels=sorted({channel for channel, _ in subscriber.targets()}),
            symbols=list(subscriber.symbols),
            confirmed=subscriber.confirmed,
        )
        body = self._describe(subscriber)
        body["unsubscribe_url"], _ = context.links.unsubscribe(subscriber.id)
        if subscriber.confirmed:
            # Active at once (a browser asked): its manage link now; an email sign-up's
            # comes in its confirmation mail, to the address only.
            body.update(self._manage_link(subscriber))
        return json_response(body, status=201 if subscriber.confirmed else 202)

    async def confirm(self, request: web.Request) -> web.Response:
        context = self.context
        subscriber_id = self._token_subject(request, CONFIRM)
        self.expire_pending()
        subscriber = self._stored(subscriber_id)
        if subscriber is None:
            hours = context.http.pending_signup_hours
            raise ApiError(
                404,
                f"this subscription no longer exists (a sign-up not confirmed within "
                f"{hours:g} h is forgotten); subscribe again",
            )
        if not subscriber.confirmed:
            confirmed = dataclasses.replace(subscriber, confirmed=True)
            # The newest confirmed request for an address replaces the older ones.
            for other in context.subscribers.subscribers():
                if other.id != subscriber.id and other.email == subscriber.email:
                    context.subscribers.remove_subscriber(other.id)
                    self._move_rules(other.id, subscriber.id)
            context.subscribers.put_subscriber(confirmed, now_ns=context.clock_ns())
            context.audience.reload()
            log.info("subscriber_confirmed", subscriber=subscriber.id)
        watched = ", ".join(subscriber.symbols).replace("*", "every symbol")
        return _reply(
            request,
            {"id": subscriber.id, "status": "active"},
            title="Alerts on",
            text=f"Your real-time alerts on {watched} are on. Every mail has a link to stop them.",
        )

    async def unsubscribe_page(self, request: web.Request) -> web.Response:
        """The mail's link opened in a browser: a button, so link scanners unsubscribe no one."""
        token = request.query.get("token", "")
        self._token_subject(request, UNSUBSCRIBE)
        page = _page(
            "Stop alerts",
            '<p>Stop every Strykr alert to this address?</p><form method="post" action="'
            f'/api/v1/unsubscribe?token={html.escape(token, quote=True)}">'
            '<button type="submit">Unsubscribe</button></form>',
        )
        return web.Response(text=page, content_type="text/html")

    async def unsubscribe(self, request: web.Request) -> web.Response:
        context = self.context
        subscriber_id = self._token_subject(request, UNSUBSCRIBE)
        if subscriber_id in context.audience.static_ids:
            context.subscribers.opt_out(subscriber_id, now_ns=context.clock_ns())
            removed = True
        else:
            removed = context.subscribers.remove_subscriber(subscriber_id)
        context.audience.reload()
        self._move_rules(subscriber_id, None)
        if removed:
            log.info("subscriber_unsubscribed", subscriber=subscriber_id)
        # Opening the link twice is not an error: the result is the same.
        return _reply(
            request,
            {"id": subscriber_id, "status": "unsubscribed"},
            title="Unsubscribed",
            text="You will get no more alerts.",
        )

    # -- a subscriber's own, with their manage link ---------------------------------

    async def manage(self, request: web.Request) -> web.Response:
        """Whose manage token this is: the subscription it manages, and its limits."""
        subscriber = self._manager(request)
        http = self.context.http
        return json_response(
            {
                **self._describe(subscriber),
                "limits": {
                    "rules": http.max_rules_per_subscriber,
                    "symbols": http.max_symbols_per_subscriber,
                },
            }
        )

    async def rotate_manage(self, request: web.Request) -> web.Response:
        """A new manage link; the one used here, and every older one, stop working."""
        context = self.context
        subscriber = self._manager(request)
        if subscriber.id in context.audience.static_ids:
            raise ApiError(409, f"{subscriber.id} is defined in alerts.toml; its link is fixed")
        rotated = dataclasses.replace(
            subscriber, manage_generation=subscriber.manage_generation + 1
        )
        context.subscribers.put_subscriber(rotated, now_ns=context.clock_ns())
        context.audience.reload()
        log.info("manage_link_rotated", subscriber=subscriber.id)
        return json_response(self._manage_link(rotated))

    def _manager(self, request: web.Request) -> Subscriber:
        offered = bearer(request)
        subscriber = None if offered is None else manager_of(self.context, offered)
        if subscriber is None:
            raise ApiError(
                401,
                "expected Authorization: Bearer <the token of your newest manage link>",
                headers={"WWW-Authenticate": 'Bearer realm="strykr-alerts"'},
            )
        return subscriber

    def _move_rules(self, old_owner: str, new_owner: str | None) -> None:
        """``old_owner``'s own rules go to ``new_owner`` (a newer sign-up of the same
        address), or with ``None`` go away with the subscriber."""
        context = self.context
        store = context.rules
        if store is None:
            return
        theirs = [rule for rule in store.stored_rules() if rule.owner == old_owner]
        if not theirs:
            return
        for rule in theirs:
            if new_owner is None:
                store.remove_rule(rule.id)
            else:
                store.put_rule(dataclasses.replace(rule, owner=new_owner))
        context.watch_stored_rules()
        log.info("subscriber_rules_moved", subscriber=old_owner, to=new_owner, rules=len(theirs))

    def _manage_link(self, subscriber: Subscriber) -> dict[str, str]:
        url, token = self.context.links.manage(subscriber.id, subscriber.manage_generation)
        return {"manage_url": url, "manage_token": token}

    # -- admin ----------------------------------------------------------------

    async def list_all(self, request: web.Request) -> web.Response:
        """Every subscriber the pipeline knows: alerts.toml's and the API's, pending ones too."""
        self.require_admin(request)
        static_ids = self.context.audience.static_ids
        subscribers = [
            {
                **self._describe(subscriber),
                "origin": "config" if subscriber.id in static_ids else "api",
            }
            for subscriber in self.context.audience.subscribers.values()
        ]
        return json_response({"subscribers": subscribers})

    async def delete_one(self, request: web.Request) -> web.Response:
        self.require_admin(request)
        subscriber_id = request.match_info["id"]
        if subscriber_id in self.context.audience.static_ids:
            raise ApiError(409, f"{subscriber_id} is defined in alerts.toml; remove it there")
        if not self.context.subscribers.remove_subscriber(subscriber_id):
            raise ApiError(404, "no subscriber with this id")
        self.context.audience.reload()
        self._move_rules(subscriber_id, None)
        log.info("subscriber_deleted", subscriber=subscriber_id)
        return web.Response(status=204)

    def is_admin(self, request: web.Request) -> bool:
        offered = bearer(request)
        return offered is not None and is_admin_token(self.context, offered)

    def require_admin(self, request: web.Request) -> None:
        if not self.context.http.admin_tokens:
            raise ApiError(403, "the admin API is off: set [http] admin_tokens")
        if not self.is_admin(request):
            raise ApiError(
                401,
                "expected an admin token: Authorization: Bearer <token>",
                headers={"WWW-Authenticate": 'Bearer realm="strykr-alerts"'},
            )

    # -- sign-ups waiting for confirmation -------------------------------------------

    def expire_pending(self) -> int:
        """Forget the email sign-ups not confirmed within ``pending_signup_hours``."""
        context = self.context
        ttl_ns = round(context.http.pending_signup_hours * 3600 * NS_PER_SECOND)
        expired = context.subscribers.expire_pending(before_ns=context.clock_ns() - ttl_ns)
        if expired:
            context.audience.reload()
            log.info("signups_expired", count=len(expired))
        return len(expired)

    def _check_pending(self, email: str) -> None:
        """Refuse one more sign-up for ``email`` while as many as allowed wait already."""
        context = self.context
        self.expire_pending()
        waiting = sorted(
            created for subscriber, created in context.subscribers.pending_signups()
            if subscriber.email == email
        )  # fmt: skip
        allowed = context.http.max_pending_per_address
        if len(waiting) < allowed:
            return
        ttl_ns = context.http.pending_signup_hours * 3600 * NS_PER_SECOND
        wait_s = max(1, math.ceil((waiting[0] + ttl_ns - context.clock_ns()) / NS_PER_SECOND))
        raise ApiError(
            429,
            f"email: {len(waiting)} confirmation mails to this address are waiting to be "
            "opened; open the link in one of them, or try again once they expire",
            headers={"Retry-After": str(wait_s)},
        )

    # -- helpers ----------------------------------------------------------------

    def _symbols(self, wanted: SubscriptionRequest) -> tuple[str, ...]:
        if wanted.article is None:
            return wanted.symbols
        symbols = self.context.view.article_symbols(wanted.article)
        if not symbols:
            raise ApiError(404, "article: no article with this URL names levels to watch")
        return symbols

    async def _check_endpoint(self, url: str) -> None:
        """Refuse a push endpoint the server must not connect to (see ``destinations``)."""
        push = self.context.push
        if push.allow_private_endpoints:
            return
        problem = url_problem(url, allowed_hosts=push.endpoint_hosts)
        if problem is None:
            try:
                problem = await resolved_problem(url, self.context.resolve_host)
            except TimeoutError:
                raise ApiError(
                    503,
                    "webpush.endpoint: its host cannot be resolved just now; try again later",
                    headers={"Retry-After": "30"},
                ) from None
        if problem is not None:
            log.warning("webpush_endpoint_refused", host=_host(url), problem=problem)
            raise ApiError(400, f"webpush.endpoint: {problem}")

    async def _send_confirmation(self, subscriber: Subscriber) -> None:
        context = self.context
        assert context.confirmations is not None
        try:
            await context.confirmations.send_confirmation(
                subscriber,
                confirm_url=context.links.confirm(subscriber.id),
                service_url=context.public_url,
                manage_url=context.links.manage(subscriber.id, subscriber.manage_generation)[0],
            )
        except DeliveryError as error:
            context.subscribers.remove_subscriber(subscriber.id)
            log.warning("confirmation_mail_failed", subscriber=subscriber.id, error=error.detail)
            status = 503 if error.retryable else 400
            hint = "try again later" if error.retryable else "check the address"
            raise ApiError(
                status,
                f"email: the confirmation mail could not be sent ({error.detail}); {hint}",
                headers={"Retry-After": "60"} if error.retryable else None,
            ) from None

    def _token_subject(self, request: web.Request, purpose: str) -> str:
        token = request.query.get("token", "")
        subject = None
        if 0 < len(token) <= 256:
            subject = self.context.links.subject(purpose, token)
        if subject is None or len(subject) > MAX_ID_CHARS:
            raise ApiError(
                400, f"token: not a valid {purpose} link; use the link of the mail as is"
            )
        return subject

    def _stored(self, subscriber_id: str) -> Subscriber | None:
        for subscriber in self.context.subscribers.subscribers():
            if subscriber.id == subscriber_id:
                return subscriber
        return None

    @staticmethod
    def _describe(subscriber: Subscriber) -> dict[str, object]:
        return {
            "id": subscriber.id,
            "status": "active" if subscriber.confirmed else "pending_confirmation",
            "email": subscriber.email,
            "push": [redact_url(url) for url in subscriber.push],
            "webpush": [_host(sub.endpoint) for sub in subscriber.webpush],
            "webhook": None if subscriber.webhook is None else redact_url(subscriber.webhook),
            "symbols": list(subscriber.symbols),
            "kinds": list(subscriber.kinds),
        }


def _host(url: str) -> str:
    return urlsplit(url).hostname or "?"


def _reply(request: web.Request, body: dict[str, object], *, title: str, text: str) -> web.Response:
    """JSON for programs; a small page for a person who opened a link from a mail."""
    if "text/html" in request.headers.get("Accept", ""):
        return web.Response(
            text=_page(title, f"<p>{html.escape(text)}</p>"), content_type="text/html"
        )
    return json_response(body)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        '<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto">'
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
