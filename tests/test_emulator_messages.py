"""The emulator's reading of client messages: sizes, nesting and prompt lengths have limits."""

from __future__ import annotations

import json

import pytest

from warmrtc._protocol.limits import MAX_DEPTH, MAX_MESSAGE_BYTES, MAX_PROMPT_CHARS
from warmrtc.emulator.incoming import (
    BadMessage,
    check_prompt,
    nesting_depth,
    parse,
)


def test_a_deeply_nested_message_is_refused_without_recursion() -> None:
    for text in (
        "[" * 100_000,
        "{" * 100_000,
        '{"type": "x", "a": ' + "[" * 5000 + "]" * 5000 + "}",
    ):
        with pytest.raises(BadMessage, match="nests deeper"):
            parse(text)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"type": "prompt", "prompt": "[[[{{{" * 100 + '\\"[[['})
    assert nesting_depth(text) == 1
    assert parse(text)["type"] == "prompt"
    assert nesting_depth(json.dumps([[["\\"]]])) == 3
    assert nesting_depth("[" * (MAX_DEPTH + 5)) == MAX_DEPTH + 1  # stops reading early


def test_an_oversized_message_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(BadMessage, match="over the limit"):
        parse('{"type": "prompt", "prompt": "' + "a" * MAX_MESSAGE_BYTES + '"}')


@pytest.mark.parametrize("text", ["{not json", "[]", '{"type": 3}', "null"])
def test_what_is_no_message_is_refused(text: str) -> None:
    with pytest.raises(BadMessage):
        parse(text)


def test_a_long_prompt_is_refused_without_being_quoted() -> None:
    check_prompt("a" * MAX_PROMPT_CHARS)
    with pytest.raises(BadMessage) as caught:
        check_prompt("secret " * MAX_PROMPT_CHARS)
    assert "secret" not in str(caught.value) and len(str(caught.value)) < 200
