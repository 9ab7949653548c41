"""Message batches in Anthropic's shapes: the status and counts as Anthropic gives them (every request
``processing`` until the batch ends), and one result line per request of each kind."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson

from domain.batches.model import (
    CANCELLED_RESULT,
    EXPIRED_RESULT,
    Batch,
    BatchKind,
    BatchLine,
    BatchStatus,
    LineCounts,
    LineResult,
    LineStatus,
)
from domain.usage.errors import BudgetExceeded
from interfaces.http.compat.message_batch_lines import MessageBatchResults, MessageLines
from interfaces.http.compat.message_batches_wire import message_batch_body

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def batch(status: BatchStatus, **times: datetime) -> Batch:
    return Batch(
        id=uuid.UUID(int=1),
        owner_id=uuid.uuid4(),
        api_key_id=None,
        kind=BatchKind.ANTHROPIC,
        endpoint="/v1/messages",
        completion_window="24h",
        status=status,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=24),
        counts=LineCounts(pending=1, running=1, succeeded=3, failed=1, cancelled=0, expired=0)
        if not status.ended
        else LineCounts(succeeded=4, failed=1, cancelled=2, expired=1),
        **times,
    )


def test_counts_stay_processing_until_the_batch_ends() -> None:
    running = message_batch_body(batch(BatchStatus.IN_PROGRESS), base_url="https://sb.example/v1")
    assert running["id"] == "msgbatch_" + uuid.UUID(int=1).hex
    assert (running["type"], running["processing_status"]) == ("message_batch", "in_progress")
    assert running["request_counts"] == {"processing": 6, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    assert running["results_url"] is running["ended_at"] is running["cancel_initiated_at"] is None
    assert (running["created_at"], running["expires_at"]) == ("2026-12-07T12:00:00Z", "2026-12-08T12:00:00Z")

    canceling = batch(BatchStatus.CANCELLING, cancelling_at=NOW + timedelta(minutes=1))
    body = message_batch_body(canceling, base_url="https://sb.example/v1")
    assert (body["processing_status"], body["cancel_initiated_at"]) == ("canceling", "2026-12-07T12:01:00Z")

    ended = batch(BatchStatus.CANCELLED, cancelling_at=NOW, cancelled_at=NOW + timedelta(minutes=2))
    body = message_batch_body(ended, base_url="https://sb.example/v1")
    assert body["processing_status"] == "ended"
    assert body["ended_at"] == "2026-12-07T12:02:00Z"
    assert body["request_counts"] == {"processing": 0, "succeeded": 4, "errored": 1, "canceled": 2, "expired": 1}
    assert body["results_url"] == f"https://sb.example/v1/messages/batches/{body['id']}/results"


def line(result: LineResult) -> BatchLine:
    done = BatchLine(id=uuid.uuid4(), batch_id=uuid.UUID(int=1), index=0, custom_id="q-1", url="/v1/messages",
                     body_json="{}")  # fmt: skip
    done.apply(result, NOW)
    return done


def test_each_kind_of_result_renders_as_anthropic_does() -> None:
    render = MessageBatchResults().render
    message = '{"type":"message","content":[]}'
    succeeded = orjson.loads(render(line(LineResult(status=LineStatus.SUCCEEDED, status_code=200, body_json=message))))
    assert succeeded == {"custom_id": "q-1", "result": {"type": "succeeded", "message": orjson.loads(message)}}
    failure = MessageLines().failure(BudgetExceeded("spent", budget="user", limit_micros=1, spent_micros=1))
    assert failure.status_code == 402
    failed = LineResult(status=LineStatus.FAILED, status_code=402, body_json=orjson.dumps(failure.body).decode())
    errored = orjson.loads(render(line(failed)))["result"]
    assert errored["type"] == "errored"
    assert errored["error"]["type"] == "error"
    assert errored["error"]["error"]["type"] == "billing_error"
    assert orjson.loads(render(line(CANCELLED_RESULT)))["result"] == {"type": "canceled"}
    assert orjson.loads(render(line(EXPIRED_RESULT)))["result"] == {"type": "expired"}
