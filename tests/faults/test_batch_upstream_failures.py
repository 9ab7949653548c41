"""A batch against an upstream that fails half the time: every upstream call is, at random (seeded), a 500, a 503,
a connection closed without an answer, or a normal answer. Each line goes through the model-call pipeline's retry
policy (here ``SWITCHBOARD_UPSTREAM_MAX_ATTEMPTS=3`` with the retry budget and circuit breaker out of the way, so
that the policy alone decides): a line is asked again until it gets an answer or has used its attempts, and a line
that failed every attempt ends in the error file with the endpoint's status and OpenAI's error shape.

Checked: the batch completes; every ``custom_id`` exactly once across the output and error files; a line in the
error file was asked exactly ``MAX_ATTEMPTS`` times, a line in the output at most that and its last attempt answered;
one ``success`` usage record per upstream answer and one ``error`` record per failed line, nothing else.

The batch size is ``SB_BATCH_FAULT_LINES`` (the issue's figure is 2,000; the default keeps the suite fast).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_batches_workers_e2e import batch_env
from tests.conftest import DatabaseFactory
from tests.fakes.upstream import FakeUpstream, UpstreamThread
from tests.fakes.upstream.behaviours import Behaviour, disconnect, ok, server_error
from tests.faults.batch_faults import LINES, assert_billed_per_answer, deployment, finished, ledger, start_batch

pytestmark = pytest.mark.integration

MAX_ATTEMPTS = 3
SEED = 14


@pytest.fixture
def upstream() -> Iterator[UpstreamThread]:
    with FakeUpstream.run_in_thread(latency=0.005, record=True) as running:
        yield running


def half_failing(calls: int) -> list[Behaviour]:
    """A script for ``calls`` upstream calls, each failing with probability one half (three kinds of failure)."""
    chance = random.Random(SEED)
    failures = (server_error(500), server_error(503), disconnect())
    return [chance.choice(failures) if chance.random() < 0.5 else ok() for _ in range(calls)]


async def test_an_upstream_failing_half_the_time_loses_and_duplicates_no_line(
    postgres_database_factory: DatabaseFactory, tmp_path: Path, upstream: UpstreamThread
) -> None:
    script = half_failing(MAX_ATTEMPTS * LINES)  # enough for every attempt of every line
    upstream.push(*script)
    async with postgres_database_factory(migrate=True) as database_url:
        env = batch_env(
            tmp_path,
            upstream,
            database_url,
            SWITCHBOARD_WORKER_IN_PROCESS="false",
            SWITCHBOARD_BATCH_LINE_CONCURRENCY="8",
            SWITCHBOARD_UPSTREAM_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
            SWITCHBOARD_UPSTREAM_BACKOFF_BASE_SECONDS="0.01",
            SWITCHBOARD_UPSTREAM_BACKOFF_MAX_SECONDS="0.02",
            SWITCHBOARD_UPSTREAM_RETRY_BUDGET_MIN_RETRIES="10000",
            SWITCHBOARD_BREAKER_FAILURE_THRESHOLD="1000",
            SWITCHBOARD_BREAKER_MIN_CALLS="100000",
            SWITCHBOARD_CACHE_ENABLED="false",
        )
        async with deployment(tmp_path, env, workers=2, email="flaky@example.com") as running:
            batch_id = await start_batch(running.client, LINES)
            outcome = await finished(running.client, batch_id, LINES)
            answers = upstream.completions_served
        records = await ledger(database_url, batch_id, at_least=LINES)

    attempts = Counter(_custom_id(request.json) for request in upstream.requests)
    calls = sum(attempts.values())
    assert calls == len(script) - len(upstream.pending)  # each call took one scripted behaviour
    assert {line: n for line, n in attempts.items() if n > MAX_ATTEMPTS} == {}  # the policy's bound, per line
    assert outcome.errors, "with half the calls failing, some line should have failed three times"
    assert outcome.output, "and some should have been answered"
    for item in outcome.errors:
        assert attempts[item["custom_id"]] == MAX_ATTEMPTS  # retried per the policy before failing
        response = item["response"]
        assert response["status_code"] in (500, 502, 503), item
        error = response["body"]["error"]
        assert set(error) == {"message", "type", "param", "code"}, error  # OpenAI's error shape
        assert isinstance(error["message"], str)
        assert error["message"]
    assert answers == len(outcome.output)  # a line answered once is never asked again
    assert calls > LINES  # failed attempts were retried
    assert_billed_per_answer(records, outcome, answers)
    assert Counter(records.values()) == {"success": answers, "error": len(outcome.errors)}


def _custom_id(body: object) -> str:
    """The line an upstream call was for: its question is ``question <i>`` for line ``line-<i>``."""
    assert isinstance(body, dict)
    content = body["messages"][-1]["content"]
    return "line-" + str(content).removeprefix("question ")
