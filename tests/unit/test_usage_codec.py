"""A usage record as the journal and the Redis stream hold it: whose key paid survives, older lines still read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest

from domain.llm.model import KeyOwner
from domain.usage.model import UsageRecord
from infrastructure.usage.codec import decode, encode

pytestmark = pytest.mark.unit


def a_record(owner: KeyOwner) -> UsageRecord:
    return UsageRecord(
        id=uuid.uuid4(),
        created_at=datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
        request_id="req-1",
        user_id=uuid.uuid4(),
        api_key_id=None,
        conversation_id=None,
        model="chat",
        served_model="chat",
        provider="openai",
        upstream_model="gpt-4o-mini",
        variant=None,
        input_tokens=10,
        output_tokens=5,
        cost_micros=7,
        key_owner=owner,
    )


@pytest.mark.parametrize("owner", list(KeyOwner))
def test_a_record_round_trips_with_whose_key_paid(owner: KeyOwner) -> None:
    record = a_record(owner)
    assert decode(encode(record)) == record


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_line_written_before_key_owner_reads_as_the_operators(version: int) -> None:
    fields = orjson.loads(encode(a_record(KeyOwner.USER)))[1:-1]  # without key_owner: version 3's columns
    if version <= 2:
        del fields[-2:]  # nor the batch (batch_id, batch_priced)
    if version == 1:
        del fields[14], fields[15]  # nor the prompt cache's writes and savings (columns 14 and 16)
    decoded = decode(orjson.dumps([version, *fields]))
    assert decoded.key_owner is KeyOwner.OPERATOR
    assert decoded.batch_id is None
    assert decoded.cost_micros == 7


def test_an_unknown_owner_is_not_a_record() -> None:
    fields = orjson.loads(encode(a_record(KeyOwner.USER)))
    fields[-1] = "somebody"
    with pytest.raises(ValueError, match="somebody"):
        decode(orjson.dumps(fields))
