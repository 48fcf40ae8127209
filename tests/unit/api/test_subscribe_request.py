from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.api.subscribe_request import parse_subscription
from service.errors import RequestError

KNOWN = {"IWM", "SPX"}
P256DH = "BCIb8MyNfyUdKgJbuyX5buLfLIHFAu9VMCqUGw3y79ar2Ui091Swbyri3bsWsIlMXGTpD8RwRfmN4KQf366NnDY"
WEBPUSH = {"endpoint": "https://push.example/x", "keys": {"p256dh": P256DH, "auth": "A" * 22}}


def test_a_valid_request_is_normalised() -> None:
    request = parse_subscription(
        {"email": " a@b.co ", "symbols": ["iwm", "IWM", "spx"], "kinds": ["break_below"]},
        known_symbols=KNOWN,
    )
    assert request.email == "a@b.co"
    assert request.symbols == ("IWM", "SPX")
    assert request.kinds == ("break_below",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "webpush": {**WEBPUSH, "keys": {"p256dh": "AAAA", "auth": "A" * 22}},
                "symbols": ["*"],
            },
            "webpush.keys.p256dh: expected 65 bytes, got 3",
        ),
        (
            {"webpush": {**WEBPUSH, "keys": {"p256dh": P256DH}}, "symbols": ["*"]},
            "webpush.keys.auth: expected a base64url string",
        ),
        (
            {"email": "a@b.co", "symbols": ["IWM"], "article": "https://x.test/a"},
            "give symbols or an article, not both",
        ),
        ({"email": "a@b.co", "symbols": ["bad symbol!"]}, "symbols[0]: expected a symbol"),
        ({"email": "a@b.co", "symbols": ["IWM"], "kinds": "break_below"}, "kinds: expected a list"),
        ({"push": "ntfy://x", "symbols": ["IWM"]}, "push: expected a list of 1 to 8"),
    ],
)
def test_each_problem_names_its_field(body: object, message: str) -> None:
    with pytest.raises(RequestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_subscription(body, known_symbols=KNOWN)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "email": st.sampled_from(["a@b.co", "x", ""]) | json_values,
        "webpush": st.just(WEBPUSH) | json_values,
        "push": st.just(["ntfy://n/t"]) | json_values,
        "symbols": st.sampled_from([["IWM"], ["*"], ["NOPE"], []]) | json_values,
        "article": st.just("https://x.test/a") | json_values,
        "kinds": st.just(["stale_feed"]) | json_values,
    },
)


@given(body=fields | json_values)
def test_any_json_gives_a_request_or_a_request_error_never_anything_else(body: object) -> None:
    try:
        request = parse_subscription(body, known_symbols=KNOWN)
    except RequestError as error:
        message = str(error)
        assert message  # every refusal says why
        return
    assert request.email or request.webpush or request.push
    assert bool(request.symbols) != bool(request.article)
    assert set(request.symbols) <= KNOWN | {"*"}
