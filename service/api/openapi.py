"""The OpenAPI 3.1 document of ``/api/v1`` (served at ``/api/v1/openapi.json``).

Written by hand next to the handlers; a test runs schemathesis against the
running server, so the document and the endpoints cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from service.api.subscribe_request import MAX_PUSH_URLS, MAX_SYMBOLS
from service.models import ALERT_KINDS, CONDITIONS, RULE_STATUSES

JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/Error"}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "strykr-alerts",
            "version": "1",
            "description": "Subscriptions to real-time price-level alerts, and the read API "
            "of the levels watched, the alerts fired and the latest articles.",
        },
        "paths": {
            "/api/v1/subscribers": {
                "post": {
                    "summary": "Subscribe an email address, a browser or apprise URLs",
                    "description": "An email subscription is double opt-in: the answer is 202 "
                    "and a confirmation mail is sent; nothing else is sent before its link is "
                    "opened. Apprise URLs need an admin token.",
                    "security": [{}, {"admin": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            JSON: {"schema": {"$ref": "#/components/schemas/NewSubscriber"}}
                        },
                    },
                    "responses": _responses(
                        {
                            "201": _json("Active at once (push only)", "CreatedSubscriber"),
                            "202": _json("Waiting for the confirmation link", "CreatedSubscriber"),
                        },
                        400,
                        403,
                        404,
                        408,
                        413,
                        415,
                        422,
                        429,
                        503,
                    ),
                },
                "get": {
                    "summary": "Every subscriber (admin)",
                    "security": [{"admin": []}],
                    "responses": _responses(
                        {"200": _json("The subscribers", "SubscriberList")}, 401, 403
                    ),
                },
            },
            "/api/v1/subscribers/{id}": {
                "delete": {
                    "summary": "Remove a subscriber added through the API (admin)",
                    "security": [{"admin": []}],
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": _responses(
                        {"204": {"description": "Removed"}}, 401, 403, 404, 409
                    ),
                },
            },
            "/api/v1/manage": {
                "get": {
                    "summary": "The subscription a manage token manages, and its limits",
                    "security": [{"manage": []}],
                    "responses": _responses({"200": _json("The subscriber", "Manager")}, 401),
                },
            },
            "/api/v1/manage/rotate": {
                "post": {
                    "summary": "A new manage link; the one used and every older one stop working",
                    "security": [{"manage": []}],
                    "responses": _responses(
                        {"200": _json("The new link", "ManageLink")}, 401, 409, 429
                    ),
                },
            },
            "/api/v1/rules": {
                "get": {
                    "summary": "Your rules (a manage token), or every rule (admin)",
                    "security": [{"manage": []}, {"admin": []}],
                    "responses": _responses({"200": _json("The rules", "RuleList")}, 401),
                },
                "post": {
                    "summary": "Set a rule: the keys of an alerts.toml [[rules]] table",
                    "description": "Read by the config's reader: the same conditions, "
                    "frequencies, expiry and errors by key. A subscriber's rules get ids from "
                    "the service and alert that subscriber alone, within the limits of "
                    "[http] max_rules_per_subscriber and max_symbols_per_subscriber.",
                    "security": [{"manage": []}, {"admin": []}],
                    "requestBody": _body("NewRule"),
                    "responses": _responses(
                        {"201": _json("Stored and watched", "Rule")},
                        400,
                        401,
                        408,
                        409,
                        413,
                        415,
                        429,
                        503,
                    ),
                },
            },
            "/api/v1/rules/{rule}": {
                "parameters": [_rule_id()],
                "get": {
                    "summary": "One of your rules (any, for the admin)",
                    "security": [{"manage": []}, {"admin": []}],
                    "responses": _responses({"200": _json("The rule", "Rule")}, 401, 404, 409),
                },
                "put": {
                    "summary": "Replace a rule's definition (a changed rule starts afresh)",
                    "security": [{"manage": []}, {"admin": []}],
                    "requestBody": _body("NewRule"),
                    "responses": _responses(
                        {"200": _json("The rule now", "Rule")}, 400, 401, 404, 408, 409, 413, 415
                    ),
                },
                "patch": {
                    "summary": "Change some keys of a rule (null removes one): drag a level",
                    "security": [{"manage": []}, {"admin": []}],
                    "requestBody": _body("RuleChanges"),
                    "responses": _responses(
                        {"200": _json("The rule now", "Rule")}, 400, 401, 404, 408, 409, 413, 415
                    ),
                },
                "delete": {
                    "summary": "Delete a rule",
                    "security": [{"manage": []}, {"admin": []}],
                    "responses": _responses(
                        {"204": {"description": "Deleted"}}, 401, 404, 409, 503
                    ),
                },
            },
            "/api/v1/rules/{rule}/pause": _rule_action(
                "Pause a rule: it looks at no tick until resumed (its owner, or admin)"
            ),
            "/api/v1/rules/{rule}/resume": _rule_action(
                "Resume a paused rule (or one done after firing once): it starts afresh "
                "(its owner, or admin)"
            ),
            "/api/v1/confirm": {
                "get": {
                    "summary": "Confirm an email subscription (the link of the confirmation mail)",
                    "parameters": [_token()],
                    "responses": _responses(
                        {"200": _json_or_html("Confirmed", "SubscriberStatus")}, 400, 404, 429
                    ),
                },
            },
            "/api/v1/unsubscribe": {
                "get": {
                    "summary": "The unsubscribe link opened in a browser: a page with a button",
                    "parameters": [_token()],
                    "responses": _responses(
                        {"200": {"description": "A page", "content": {"text/html": {}}}}, 400, 429
                    ),
                },
                "post": {
                    "summary": "One-click unsubscribe (RFC 8058), no login",
                    "parameters": [_token()],
                    "responses": _responses(
                        {"200": _json_or_html("Unsubscribed", "SubscriberStatus")}, 400, 429
                    ),
                },
            },
            "/api/v1/levels": {
                "get": {
                    "summary": "The levels being watched, from alerts.toml and from articles",
                    "parameters": [_symbol()],
                    "responses": _responses({"200": _json("The levels", "LevelList")}, 400),
                },
            },
            "/api/v1/alerts": {
                "get": {
                    "summary": "Alerts from the journal, oldest first",
                    "description": "With since (an alert id): the alerts recorded after it; with "
                    "since (a time): those fired from then; without: the latest.",
                    "parameters": [
                        _symbol(),
                        {"name": "since", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": _responses({"200": _json("The alerts", "AlertList")}, 400, 404),
                },
            },
            "/api/v1/history": {
                "get": {
                    "summary": "A symbol's recent bars, and the alerts fired since the first",
                    "description": "For a chart opened mid-session. The bars of interval (one "
                    "of [history] bars; the dashboard settings list them), oldest first, the "
                    "bar in progress last; with since, those that end after it.",
                    "parameters": [
                        {**_symbol(), "required": True},
                        {"name": "interval", "in": "query", "schema": {"type": "string"}},
                        {"name": "since", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": _responses({"200": _json("The bars", "History")}, 400, 401, 404),
                },
            },
            "/api/v1/articles/latest": {
                "get": {
                    "summary": "The latest article per symbol, or of one symbol",
                    "parameters": [_symbol()],
                    "responses": _responses(
                        {"200": _json("The article(s)", "LatestArticles")}, 400, 404
                    ),
                },
            },
            "/api/v1/dashboard": {
                "get": {
                    "summary": "What the dashboard needs to start",
                    "responses": _responses({"200": _json("Settings", "DashboardSettings")}),
                },
            },
        },
        "components": {
            "securitySchemes": {
                "admin": {"type": "http", "scheme": "bearer"},
                "manage": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token of a subscriber's manage link",
                },
            },
            "schemas": _schemas(),
        },
    }


def _schemas() -> dict[str, Any]:
    nullable_string = {"type": ["string", "null"]}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "NewSubscriber": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "email": {"type": "string", "format": "email", "maxLength": 254},
                "webpush": {
                    "type": "object",
                    "description": "PushSubscription.toJSON() of the browser",
                    "required": ["endpoint", "keys"],
                    "properties": {
                        "endpoint": {"type": "string", "format": "uri"},
                        "keys": {
                            "type": "object",
                            "required": ["p256dh", "auth"],
                            "properties": {
                                "p256dh": {"type": "string"},
                                "auth": {"type": "string"},
                            },
                        },
                    },
                },
                "push": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "maxItems": MAX_PUSH_URLS,
                },
                "symbols": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "maxItems": MAX_SYMBOLS,
                    "description": 'Symbols watched here, or ["*"]',
                },
                "article": {"type": "string", "description": "An article's URL: its symbols"},
                "kinds": {"type": "array", "items": {"enum": list(ALERT_KINDS)}},
            },
        },
        "Subscriber": {
            "type": "object",
            "required": ["id", "status", "symbols", "kinds"],
            "properties": {
                "id": {"type": "string"},
                "status": {"enum": ["active", "pending_confirmation"]},
                "email": nullable_string,
                "push": {"type": "array", "items": {"type": "string"}},
                "webpush": {"type": "array", "items": {"type": "string"}},
                "webhook": nullable_string,
                "symbols": {"type": "array", "items": {"type": "string"}},
                "kinds": {"type": "array", "items": {"type": "string"}},
                "origin": {"enum": ["config", "api"]},
            },
        },
        "CreatedSubscriber": {
            "allOf": [
                {"$ref": "#/components/schemas/Subscriber"},
                {
                    "type": "object",
                    "required": ["unsubscribe_url"],
                    "properties": {
                        "unsubscribe_url": {"type": "string"},
                        "manage_url": {"type": "string"},
                        "manage_token": {"type": "string"},
                    },
                },
            ]
        },
        "SubscriberList": {
            "type": "object",
            "required": ["subscribers"],
            "properties": {
                "subscribers": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Subscriber"},
                }
            },
        },
        "ManageLink": {
            "type": "object",
            "required": ["manage_url", "manage_token"],
            "properties": {"manage_url": {"type": "string"}, "manage_token": {"type": "string"}},
        },
        "Manager": {
            "allOf": [
                {"$ref": "#/components/schemas/Subscriber"},
                {
                    "type": "object",
                    "required": ["limits"],
                    "properties": {"limits": {"$ref": "#/components/schemas/Limits"}},
                },
            ]
        },
        "Limits": {
            "type": "object",
            "required": ["rules", "symbols"],
            "properties": {"rules": {"type": "integer"}, "symbols": {"type": "integer"}},
        },
        "NewRule": {
            "type": "object",
            "description": "The keys of an alerts.toml [[rules]] table (docs/rules.md); id only "
            "with an admin token",
            "required": ["symbol"],
            "properties": _rule_keys(),
        },
        "RuleChanges": {
            "type": "object",
            "description": "Keys of a [[rules]] table to change; null removes one",
            "properties": _rule_keys(),
        },
        "Rule": {
            "type": "object",
            "required": ["id", "origin", "owner", "symbol", "description", "status", "definition"],
            "properties": {
                "id": {"type": "string"},
                "origin": {"enum": ["config", "article", "api"]},
                "owner": {**nullable_string, "description": "The subscriber whose rule it is"},
                "symbol": nullable_string,
                "description": nullable_string,
                "status": {"enum": list(RULE_STATUSES)},
                "definition": {
                    "type": ["object", "null"],
                    "description": "As given; null for the rules of alerts.toml and articles",
                },
                "created": nullable_string,
                "updated": nullable_string,
            },
        },
        "RuleList": {
            "type": "object",
            "required": ["rules", "limits"],
            "properties": {
                "rules": {"type": "array", "items": {"$ref": "#/components/schemas/Rule"}},
                "limits": {
                    "oneOf": [{"$ref": "#/components/schemas/Limits"}, {"type": "null"}],
                    "description": "A subscriber's limits; null for the admin",
                },
            },
        },
        "RuleStatus": {
            "type": "object",
            "required": ["rule", "status"],
            "properties": {
                "rule": {"type": "string"},
                "status": {"enum": list(RULE_STATUSES)},
            },
        },
        "SubscriberStatus": {
            "type": "object",
            "required": ["id", "status"],
            "properties": {"id": {"type": "string"}, "status": {"type": "string"}},
        },
        "Level": {
            "type": "object",
            "required": [
                "rule",
                "symbol",
                "level",
                "direction",
                "side",
                "condition",
                "status",
                "origin",
            ],
            "properties": {
                "rule": {"type": "string"},
                "symbol": {"type": "string"},
                "level": {
                    "type": ["number", "null"],
                    "description": "null when the level moves (an indicator, a move in a window)",
                },
                "direction": {"enum": ["below", "above"]},
                "side": {"enum": ["support", "resistance"]},
                "condition": {"enum": list(CONDITIONS)},
                "basis": {
                    **nullable_string,
                    "description": "What a moving level is: an indicator, a move",
                },
                "status": {
                    "enum": list(RULE_STATUSES),
                    "description": 'done: fired with frequency = "once"; expired: past expires',
                },
                "origin": {"enum": ["config", "article", "api"]},
                "owner": {
                    **nullable_string,
                    "description": "A subscriber's own level: shown to them and the admin only",
                },
                "article": {
                    "type": ["object", "null"],
                    "description": "For origin article: the article that named the level",
                },
            },
        },
        "LevelList": {
            "type": "object",
            "required": ["levels"],
            "properties": {
                "levels": {"type": "array", "items": {"$ref": "#/components/schemas/Level"}}
            },
        },
        "Alert": {
            "type": "object",
            "required": ["id", "rule", "symbol", "kind", "level", "price", "at", "headline"],
            "properties": {
                "id": {"type": "string"},
                "rule": {"type": "string"},
                "symbol": {"type": "string"},
                "kind": {"enum": list(ALERT_KINDS)},
                "level": {"type": "number"},
                "price": {"type": "number"},
                "at": {"type": "string"},
                "trigger": {"type": "string"},
                "bar": nullable_string,
                "article": {"type": ["object", "null"]},
                "basis": {
                    **nullable_string,
                    "description": "What the level is when it is not a fixed price "
                    '(sma(20, "5m"), channel 255.00-265.00, 2 % in 15m)',
                },
                "owner": {
                    **nullable_string,
                    "description": "The subscriber whose own rule fired (only they see it)",
                },
                "headline": {"type": "string"},
            },
        },
        "AlertList": {
            "type": "object",
            "required": ["alerts"],
            "properties": {
                "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}
            },
        },
        "History": {
            "type": "object",
            "required": ["symbol", "interval", "bars", "alerts"],
            "properties": {
                "symbol": {"type": "string"},
                "interval": {"type": "string"},
                "bars": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["time", "open", "high", "low", "close", "volume"],
                        "properties": {
                            "time": {"type": "number", "description": "its start, epoch s"},
                            "open": {"type": "number"},
                            "high": {"type": "number"},
                            "low": {"type": "number"},
                            "close": {"type": "number"},
                            "volume": {"type": "number"},
                        },
                    },
                },
                "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
            },
        },
        "LatestArticles": {
            "type": "object",
            "description": "Without symbol: {articles: {SYMBOL: article}}; with: {symbol, article}",
            "properties": {
                "articles": {"type": "object"},
                "symbol": {"type": "string"},
                "article": {"type": "object"},
            },
        },
        "DashboardSettings": {
            "type": "object",
            "required": ["symbols", "hub_port", "email", "webpush_key", "history"],
            "properties": {
                "symbols": {"type": "array", "items": {"type": "string"}},
                "history": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The bar intervals /api/v1/history keeps",
                },
                "hub_port": {"type": ["integer", "null"]},
                "email": {"type": "boolean"},
                "webpush_key": nullable_string,
            },
        },
    }


_STATUS_TEXT = {
    400: "The request is invalid; error says what and where",
    401: "No valid token (an admin token, or a current manage link's)",
    403: "Not allowed (admin API off, or apprise URLs without an admin token)",
    404: "Not found",
    408: "The body did not arrive within [http] body_timeout_seconds",
    409: "Defined in alerts.toml or by an article (change it there), an id taken, or a "
    "subscriber's limit reached",
    413: "Body too large",
    415: "Not JSON",
    422: "A channel this service does not offer",
    429: "Too many requests from this address; see Retry-After",
    503: "The confirmation mail could not be sent, or a push endpoint's host not resolved; "
    "try again later",
}


def _responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    responses = dict(ok)
    for status in (*errors, 405, 500):
        text = _STATUS_TEXT.get(status, "Error")
        responses[str(status)] = {"description": text, "content": {JSON: {"schema": ERROR}}}
    return responses


def _json(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _json_or_html(description: str, schema: str) -> dict[str, Any]:
    response = _json(description, schema)
    response["content"]["text/html"] = {}
    return response


def _token() -> dict[str, Any]:
    return {"name": "token", "in": "query", "required": True, "schema": {"type": "string"}}


def _symbol() -> dict[str, Any]:
    return {"name": "symbol", "in": "query", "schema": {"type": "string"}}


def _rule_id() -> dict[str, Any]:
    return {"name": "rule", "in": "path", "required": True, "schema": {"type": "string"}}


def _body(schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _rule_keys() -> dict[str, Any]:
    """The keys of a [[rules]] table; their values are checked by the config's reader."""
    operand = {"type": ["number", "string"], "description": 'A price, or sma(20, "5m") ...'}
    string = {"type": "string"}
    number = {"type": "number"}
    return {
        "id": {**string, "description": "Admin only: the service names subscribers' rules"},
        "symbol": string,
        "condition": {"enum": list(CONDITIONS)},
        "type": {"enum": ["level", "range"]},
        "direction": {"enum": ["below", "above"]},
        "level": operand,
        "low": operand,
        "high": operand,
        "source": string,
        "percent": number,
        "amount": number,
        "window": string,
        "confirm_ticks": {"type": "integer"},
        "confirm_seconds": number,
        "hysteresis": number,
        "cooldown_seconds": number,
        "frequency": {"enum": ["every_time", "once", "once_per_bar", "once_per_bar_close"]},
        "trigger": {"enum": ["tick", "bar_close"]},
        "bar": string,
        "expires": {**string, "description": "2026-03-01T21:00:00Z"},
        "paused": {"type": "boolean"},
        "session": {"enum": ["any", "regular", "extended"]},
        "confirm_volume": string,
    }


def _rule_action(summary: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"manage": []}, {"admin": []}],
            "parameters": [_rule_id()],
            "responses": _responses(
                {"200": _json("The rule's status now", "RuleStatus")}, 401, 403, 404, 503
            ),
        }
    }
