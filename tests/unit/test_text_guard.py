"""NUL characters: the edge's byte-level check of bodies and the domain's rule for stored text."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.chat.model import check_message_content, check_system_prompt, clean_title
from domain.shared.errors import RuleViolation
from domain.shared.text import storable
from interfaces.http.text_guard import body_has_nul, json_has_nul

pytestmark = pytest.mark.unit
FORM = b"application/x-www-form-urlencoded"


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(_holds_nul(item) for item in value)


@given(st.recursive(st.text(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=8))
def test_json_has_nul_exactly_when_a_decoded_string_holds_one(value: object) -> None:
    assert json_has_nul(orjson.dumps(value)) is _holds_nul(value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": "\\u0000"}', True),
        (b'{"a": "\\\\\\u0000"}', True),  # an escaped backslash, then a NUL
        (b'{"a": "\\\\u0000"}', False),  # an escaped backslash, then the text u0000
        (b'{"a": "x\x00"}', True),
        (b'{"a": "%00"}', False),
    ],
)
def test_json_bodies(body: bytes, expected: bool) -> None:
    assert body_has_nul(body, b"application/json") is expected


def test_form_bodies() -> None:
    assert body_has_nul(b"username=a%00b&password=x", FORM)
    assert not body_has_nul(b"username=a%2500b&password=\\u0000", FORM)


def test_the_domain_refuses_nul_in_what_it_stores() -> None:
    for check in (clean_title, check_system_prompt, check_message_content):
        with pytest.raises(RuleViolation, match="NUL"):
            check("a\x00b")
    assert storable("a\x00b\x00") == "a\ufffdb\ufffd"
    assert storable("plain") == "plain"
