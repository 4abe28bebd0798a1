"""Response bodies lose secrets and URL credentials and stay JSON; the read cache expires
and is emptied by writes."""

from __future__ import annotations

import json

from hypothesis import assume, given
from hypothesis import strategies as st

from reconciler.api.redaction import BodyRedactor
from reconciler.api.state import ReadCache, dumps


def test_known_values_and_url_credentials_are_replaced() -> None:
    secrets = {'pa"ss\\word', "tok-123"}
    redactor = BodyRedactor(lambda: secrets)
    document = {
        "url": "https://user:tok-123@git.example/repo.git",
        "note": 'header was pa"ss\\word',
        "tok-123": ["ssh://git@host/x", "plain"],
    }
    text = redactor.text(dumps(document))
    back = json.loads(text)
    assert back == {
        "url": "https://***@git.example/repo.git",
        "note": "header was ***",
        "***": ["ssh://***@host/x", "plain"],
    }


@given(
    secret=st.text(min_size=1, max_size=20),
    document=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    ),
)
def test_any_document_stays_json_without_the_secret(secret: str, document: object) -> None:
    assume(secret not in "***")
    redactor = BodyRedactor(lambda: {secret})
    planted = {"a": document, "b": f"x{secret}y", "c": [secret]}
    text = redactor.text(dumps(planted))
    json.loads(text)
    for value in _strings(json.loads(text)):
        assert secret not in value


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def test_a_body_without_secrets_is_left_as_encoded() -> None:
    redactor = BodyRedactor(lambda: {"tok-123"})
    text = dumps({"url": "https://git.example/repo.git", "n": 12})
    assert redactor.text(text) is text


def test_read_cache_expires_and_clears() -> None:
    now = [100.0]
    cache = ReadCache(ttl_s=1.0, clock=lambda: now[0])
    cache.put("/a", b"one")
    assert cache.get("/a") == b"one"
    now[0] += 1.5
    assert cache.get("/a") is None
    cache.put("/a", b"two")
    cache.clear()
    assert cache.get("/a") is None
    off = ReadCache(ttl_s=0)
    off.put("/a", b"x")
    assert off.get("/a") is None
