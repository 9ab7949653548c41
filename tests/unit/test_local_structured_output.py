"""The local model honours structured output: an instance of the JSON schema that validates, deterministic; a JSON
object for json_object; tool arguments with every property."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from enum import Enum
from typing import Any, Literal

import jsonschema_rs
import pytest
from pydantic import BaseModel, Field

from domain.llm.model import (
    ChatMessage,
    ChatRole,
    CompletionRequest,
    ResponseFormat,
    ResponseFormatType,
    StreamEnd,
    TextDelta,
    ToolChoice,
    ToolChoiceMode,
    ToolDefinition,
)
from infrastructure.llm.local import LocalProvider
from infrastructure.llm.local_schema import example_value
from tests.unit.conftest import local_spec

pytestmark = pytest.mark.unit


class Colour(Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str
    city: str = Field(min_length=8)
    zip: str | None = None


class Person(BaseModel):
    name: str
    age: int = Field(ge=18, le=120)
    email: str = Field(json_schema_extra={"format": "email"})
    born: datetime
    id: uuid.UUID
    colour: Colour
    kind: Literal["customer", "staff"]
    tags: list[str] = Field(min_length=2)
    address: Address
    previous: list[Address] = []
    nickname: str | None = None
    score: float | int = 0.5
    friends: list[Person] = []


SCHEMAS: list[dict[str, Any]] = [
    Person.model_json_schema(),
    {
        "type": "object",
        "properties": {"a": {"anyOf": [{"type": "null"}, {"$ref": "#/definitions/X"}]}},
        "definitions": {
            "X": {
                "type": "object",
                "properties": {"n": {"type": "number", "exclusiveMinimum": 5}},
                "required": ["n"],
                "additionalProperties": False,
            }
        },
    },
    {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"properties": {"b": {"const": 3}}}]},
    {"type": "array", "items": {"type": "integer", "maximum": -3}, "minItems": 3},
    {"type": ["string", "null"], "maxLength": 2},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_the_example_validates(schema: dict[str, Any]) -> None:
    value = example_value(schema)
    assert jsonschema_rs.validator_for(schema).is_valid(value), value
    assert example_value(schema) == value


def test_a_pydantic_model_parses_its_example_with_every_field_filled() -> None:
    person = Person.model_validate(example_value(Person.model_json_schema()))
    assert person.nickname is not None
    assert person.previous
    assert person.friends  # recursive, to a bounded depth


def _request(response_format: ResponseFormat | None = None, **kwargs: Any) -> CompletionRequest:
    messages = (ChatMessage(ChatRole.USER, "Describe someone."),)
    return CompletionRequest(model="local", messages=messages, response_format=response_format, **kwargs)


async def test_a_json_schema_answer_is_an_instance_whole_and_streamed() -> None:
    provider = LocalProvider(local_spec())
    schema = json.dumps(Person.model_json_schema())
    request = _request(ResponseFormat(type=ResponseFormatType.JSON_SCHEMA, schema_json=schema, name="person"))
    whole = await provider.complete(request)
    Person.model_validate_json(whole.content)
    events = [event async for event in provider.stream(request)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == whole.content
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].completion.content == whole.content


async def test_a_json_object_answer_is_an_object() -> None:
    provider = LocalProvider(local_spec())
    completion = await provider.complete(_request(ResponseFormat(type=ResponseFormatType.JSON_OBJECT), max_tokens=1))
    value = json.loads(completion.content)
    assert isinstance(value, dict)
    assert "Describe someone." in value["answer"]


async def test_tool_arguments_fill_optional_properties() -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    }
    tool = ToolDefinition(name="forecast", parameters_json=json.dumps(schema))
    request = _request(tools=(tool,), tool_choice=ToolChoice(mode=ToolChoiceMode.REQUIRED))
    completion = await LocalProvider(local_spec()).complete(request)
    assert json.loads(completion.tool_calls[0].arguments) == {"city": "test", "days": 1}
