"""``/api/v1/rules``: the rules people set while the service runs, and pausing any rule.

A rule is given as the keys of an alerts.toml ``[[rules]]`` table and read by
the same reader, so it means what the file would and is refused with the
same messages, by key. It is stored in the journal first, then the engine
watches it from its next batch; rules that stay keep their state.

Who may do what: a subscriber, with the token of their manage link, sets,
lists and changes their own rules only (another's answers 404, as a rule
that does not exist); the operator, with an admin token, manages every rule
set through the API and may pause the rules of alerts.toml and the articles.
A subscriber's rules are bounded in count and in symbols
(``[http] max_rules_per_subscriber``, ``max_symbols_per_subscriber``).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from service.api.callers import Caller, identify, require_caller
from service.api.context import ApiContext
from service.api.responses import ApiError, json_response, read_json
from service.errors import JournalError, RequestError
from service.journal.records import StoredRule
from service.journal.roles import RuleStore
from service.journal.stored_rules import rules_of
from service.models import Rule
from service.processing.live_view import RuleSummary
from service.rules.definitions import read_definition
from service.rules.settings import describe_rule
from service.timestamps import format_timestamp

log = structlog.get_logger("service.api")

MAX_RULE_ID_CHARS = 64


class RulesApi:
    def __init__(self, context: ApiContext) -> None:
        self.context = context

    # -- reads ------------------------------------------------------------------

    async def list_rules(self, request: web.Request) -> web.Response:
        """The caller's rules; for the operator, every rule, alerts.toml's and articles' too."""
        caller = require_caller(self.context, request)
        stored = {rule.id: rule for rule in self._store().stored_rules()}
        shown = [
            self._describe(rule, self.context.view.rule(rule.id))
            for rule in stored.values()
            if caller.may_manage(rule.owner)
        ]
        if caller.admin:
            shown += [
                _summary(summary)
                for summary in self.context.view.rules()
                if summary["rule"] not in stored
            ]
        return json_response({"rules": shown, "limits": self._limits(caller)})

    async def get_rule(self, request: web.Request) -> web.Response:
        caller = require_caller(self.context, request)
        stored = self._owned(caller, request.match_info["rule"])
        return json_response(self._describe(stored, self.context.view.rule(stored.id)))

    # -- writes -----------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        caller = require_caller(self.context, request)
        body = await self._body(request)
        definition = dict(body)
        given_id = definition.pop("id", None)
        if given_id is not None and not caller.admin:
            raise ApiError(400, "id: the service names a subscriber's rules; remove id")
        owner = None if caller.subscriber is None else caller.subscriber.id
        store = self._store()
        existing = store.stored_rules()
        if given_id is None:
            rule_id = f"{owner or 'op'}:{secrets.token_urlsafe(6)}"
        elif not isinstance(given_id, str) or not 0 < len(given_id) <= MAX_RULE_ID_CHARS:
            raise ApiError(400, "id: expected a rule id of 1 to 64 letters, digits and . _ : -")
        else:
            rule_id = given_id
            if any(r.id == rule_id for r in existing) or self.context.view.rule(rule_id):
                raise ApiError(409, f"id: a rule {rule_id!r} exists already; pick another id")
        rule = self._read(definition, rule_id, owner)
        self._check_limits(caller, rule, [r for r in existing if r.owner == owner])
        now = self.context.clock_ns()
        stored = StoredRule(
            id=rule_id, owner=owner, definition=definition, created_ns=now, updated_ns=now
        )
        self._save(stored)
        log.info("rule_created", rule=rule_id, owner=owner, description=describe_rule(rule))
        return json_response(self._describe(stored, self.context.view.rule(rule_id)), status=201)

    async def replace(self, request: web.Request) -> web.Response:
        """PUT: the rule becomes the definition given (a changed rule starts afresh)."""
        caller = require_caller(self.context, request)
        stored = self._owned(caller, request.match_info["rule"])
        definition = dict(await self._body(request))
        return self._change(caller, stored, definition)

    async def update(self, request: web.Request) -> web.Response:
        """PATCH: the keys given replace the rule's (``null`` removes one); the rest stay."""
        caller = require_caller(self.context, request)
        stored = self._owned(caller, request.match_info["rule"])
        changes = await self._body(request)
        definition = {**stored.definition, **changes}
        definition = {key: value for key, value in definition.items() if value is not None}
        return self._change(caller, stored, definition)

    async def delete(self, request: web.Request) -> web.Response:
        caller = require_caller(self.context, request)
        stored = self._owned(caller, request.match_info["rule"])
        try:
            self._store().remove_rule(stored.id)
        except JournalError as error:
            raise ApiError(503, f"the rule could not be deleted: {error}") from None
        self.context.watch_stored_rules()
        log.info("rule_deleted", rule=stored.id, owner=stored.owner)
        return web.Response(status=204)

    async def pause(self, request: web.Request) -> web.Response:
        return self._pause(request, paused=True)

    async def resume(self, request: web.Request) -> web.Response:
        return self._pause(request, paused=False)

    def _pause(self, request: web.Request, *, paused: bool) -> web.Response:
        """A stored rule is paused in its definition; another (the file's) in the engine."""
        context = self.context
        caller = identify(context, request)
        rule_id = request.match_info["rule"]
        stored = self._find(rule_id)
        if stored is not None and caller.may_manage(stored.owner):
            definition = {**stored.definition, "paused": paused}
            if stored.definition.get("paused", False) == paused:
                definition = dict(stored.definition)  # nothing changes: the rule keeps its state
            self._change(caller, stored, definition)
            summary = context.view.rule(rule_id)
            return json_response(
                {"rule": rule_id, "status": "paused" if summary is None else summary["status"]}
            )
        if not caller.admin:
            if caller.subscriber is None and not context.http.admin_tokens:
                raise ApiError(403, "the admin API is off: set [http] admin_tokens")
            if caller.subscriber is None:
                raise ApiError(
                    401,
                    "expected Authorization: Bearer <token> (admin, or the rule's manage link)",
                    headers={"WWW-Authenticate": 'Bearer realm="strykr-alerts"'},
                )
            raise _no_rule(rule_id)
        pause = context.pause_rule
        if pause is None:
            raise ApiError(503, "rules cannot be paused here: this process runs no engine")
        if not pause(rule_id, paused):
            raise _no_rule(rule_id)
        summary = context.view.rule(rule_id)
        status = summary["status"] if summary else ("paused" if paused else "active")
        return json_response({"rule": rule_id, "status": status})

    # -- helpers ----------------------------------------------------------------

    def _change(
        self, caller: Caller, stored: StoredRule, definition: dict[str, Any]
    ) -> web.Response:
        if definition.get("id") == stored.id:
            del definition["id"]
        if "id" in definition:
            raise ApiError(400, "id: a rule keeps its id; create another rule for another id")
        rule = self._read(definition, stored.id, stored.owner)
        others = [r for r in self._store().stored_rules() if r.owner == stored.owner]
        self._check_limits(caller, rule, [r for r in others if r.id != stored.id])
        changed = dataclasses.replace(
            stored, definition=definition, updated_ns=self.context.clock_ns()
        )
        if changed.definition != stored.definition:
            self._save(changed)
            log.info("rule_changed", rule=stored.id, owner=stored.owner)
        return json_response(self._describe(changed, self.context.view.rule(stored.id)))

    def _read(self, definition: Mapping[str, Any], rule_id: str, owner: str | None) -> Rule:
        try:
            rule = read_definition(definition, rule_id=rule_id, owner=owner)
        except RequestError as error:
            raise ApiError(400, str(error)) from None
        if owner is not None and rule.symbol not in self.context.view.known_symbols():
            known = ", ".join(sorted(self.context.view.known_symbols())[:20]) or "none yet"
            raise ApiError(
                400, f"symbol: {rule.symbol} is not watched by this service (it watches {known})"
            )
        return rule

    def _check_limits(self, caller: Caller, rule: Rule, others: list[StoredRule]) -> None:
        """A subscriber's rules stay within their bounds; the operator's have none."""
        if caller.admin or rule.owner is None:
            return
        http = self.context.http
        if len(others) >= http.max_rules_per_subscriber:
            raise ApiError(
                409,
                f"limit: {http.max_rules_per_subscriber} rules per subscriber; "
                "delete one before setting another",
            )
        symbols = {other.symbol for other in rules_of(others)[0]}
        if rule.symbol not in symbols and len(symbols) >= http.max_symbols_per_subscriber:
            raise ApiError(
                409,
                f"limit: rules on {http.max_symbols_per_subscriber} symbols per subscriber "
                f"({', '.join(sorted(symbols))}); set this one on one of them, or delete "
                "the rules of another",
            )

    def _save(self, stored: StoredRule) -> None:
        """Store, then watch: a rule the journal refused is not watched either."""
        try:
            self._store().put_rule(stored)
        except JournalError as error:
            raise ApiError(503, f"the rule could not be stored: {error}") from None
        self.context.watch_stored_rules()

    def _owned(self, caller: Caller, rule_id: str) -> StoredRule:
        stored = self._find(rule_id)
        if stored is None or not caller.may_manage(stored.owner):
            summary = self.context.view.rule(rule_id)
            if caller.admin and summary is not None:
                where = "an article" if summary["origin"] == "article" else "alerts.toml"
                raise ApiError(
                    409, f"rule: {rule_id!r} is from {where}; change it there (it can be paused)"
                )
            raise _no_rule(rule_id)
        return stored

    def _find(self, rule_id: str) -> StoredRule | None:
        if len(rule_id) > MAX_RULE_ID_CHARS:
            return None
        for stored in self._store().stored_rules():
            if stored.id == rule_id:
                return stored
        return None

    def _store(self) -> RuleStore:
        store = self.context.rules
        if store is None:
            raise ApiError(503, "rules cannot be set here: this process runs no engine")
        return store

    async def _body(self, request: web.Request) -> Mapping[str, Any]:
        body = await read_json(request, timeout_s=self.context.http.body_timeout_seconds)
        if not isinstance(body, dict):
            raise ApiError(400, "expected a JSON object: the keys of a [[rules]] table")
        return body

    def _limits(self, caller: Caller) -> dict[str, int] | None:
        if caller.admin:
            return None
        http = self.context.http
        return {
            "rules": http.max_rules_per_subscriber,
            "symbols": http.max_symbols_per_subscriber,
        }

    def _describe(self, stored: StoredRule, summary: RuleSummary | None) -> dict[str, object]:
        rules, _ = rules_of([stored])
        rule = rules[0] if rules else None
        return {
            "id": stored.id,
            "origin": "api",
            "owner": stored.owner,
            "symbol": None if rule is None else rule.symbol,
            "description": None if rule is None else describe_rule(rule),
            "status": summary["status"] if summary else _status(stored),
            "definition": dict(stored.definition),
            "created": format_timestamp(stored.created_ns),
            "updated": format_timestamp(stored.updated_ns),
        }


def _summary(summary: RuleSummary) -> dict[str, object]:
    return {
        "id": summary["rule"],
        "origin": summary["origin"],
        "owner": summary["owner"],
        "symbol": summary["symbol"],
        "description": summary["description"],
        "status": summary["status"],
        "definition": None,
        "created": None,
        "updated": None,
    }


def _status(stored: StoredRule) -> str:
    return "paused" if stored.definition.get("paused") is True else "active"


def _no_rule(rule_id: str) -> ApiError:
    return ApiError(404, f"rule: no rule of yours has the id {rule_id[:64]!r}; see /api/v1/rules")
