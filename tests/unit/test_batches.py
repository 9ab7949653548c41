"""Batches on in-memory adapters: the lines' checks, a spent budget ending a batch with the API's quota error,
expiry, cancellation, the interactive share of rate limits, and the usage records naming the batch."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

from application.batches.admission import check_lines, read_jsonl
from application.batches.cancel_batch import CancelBatch
from application.batches.config import BatchLimits
from application.batches.finalize_batch import FinalizeBatch
from application.batches.get_batch import BatchQuery
from application.batches.prepare_batch import PrepareBatch
from application.batches.rate_share import BatchRateShare
from application.batches.run_batch import RunBatch
from application.batches.start import start_batch
from application.llm.model_call import ModelCall
from application.unit_of_work import UnitOfWork, UnitOfWorkFactory
from application.usage.budgets import Budgets
from application.usage.check_request_rate import CheckRequestRate
from application.usage.metering import Meter
from application.usage.rate_limits import RateLimitDefaults
from domain.auth.model import ApiKey, Principal, Role, Scope, User
from domain.batches.model import (
    COMPLETION_WINDOWS,
    Batch,
    BatchKind,
    BatchNotCancellable,
    BatchStatus,
    LineResult,
    LineStatus,
)
from domain.files.model import FilePurpose, StoredFile
from domain.llm.model import ModelSpec
from domain.shared.errors import ServiceUnavailable
from domain.usage.errors import LimitExceeded
from domain.usage.model import Limits
from infrastructure.jobs.in_process import InProcessJobQueue
from infrastructure.llm.catalog import StaticModelCatalog
from infrastructure.memory.files import InMemoryBlobStore
from infrastructure.memory.rate_limiter import InMemoryRateLimiter
from infrastructure.memory.spend_counter import InMemorySpendCounter
from infrastructure.memory.unit_of_work import InMemoryUnitOfWorkFactory
from interfaces.http.compat.batch_lines import OpenAIBatchOutput, openai_line_codecs
from tests.fakes.clock import FakeClock
from tests.fakes.llm import OneModel, ScriptedProvider
from tests.fakes.usage import ListRecorder
from tests.unit.conftest import local_spec

pytestmark = pytest.mark.unit
# ScriptedProvider: 3 input tokens and 3 output tokens per answer: (3 * 2 + 3 * 10) = 36 micro-dollars a call.
PRICED = local_spec("scripted", input_price_per_mtok_micros=2_000_000, output_price_per_mtok_micros=10_000_000)
CHAT = "/v1/chat/completions"


def line(custom_id: str, **body: Any) -> dict[str, Any]:
    body = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10} | body
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}


@dataclass
class Rig:
    uow: InMemoryUnitOfWorkFactory
    clock: FakeClock
    recorder: ListRecorder
    provider: ScriptedProvider
    run: RunBatch
    prepare: PrepareBatch
    blobs: InMemoryBlobStore
    user: User

    async def batch(self, lines: list[dict[str, Any]], api_key_id: uuid.UUID | None = None) -> Batch:
        """A batch of ``lines``, checked and started as the prepare job does it."""
        now = self.clock.now()
        file = StoredFile(
            id=uuid.uuid4(),
            owner_id=self.user.id,
            filename="in.jsonl",
            purpose=FilePurpose.BATCH,
            size_bytes=0,
            created_at=now,
        )
        await self.blobs.put(str(file.id), b"".join(json.dumps(x).encode() + b"\n" for x in lines))
        batch = Batch(
            id=uuid.uuid4(),
            owner_id=self.user.id,
            api_key_id=api_key_id,
            kind=BatchKind.OPENAI,
            endpoint=CHAT,
            completion_window="24h",
            status=BatchStatus.VALIDATING,
            created_at=now,
            expires_at=now + COMPLETION_WINDOWS["24h"],
            input_file_id=file.id,
        )
        async with self.uow() as uow:
            await uow.files.add(file)
            await uow.batches.add(batch)
            await uow.commit()
        await self.prepare.execute(batch.id)
        return await self.get(batch.id)

    async def get(self, batch_id: uuid.UUID) -> Batch:
        async with self.uow() as uow:
            return await uow.batches.get(batch_id)

    async def output(self, batch: Batch) -> list[dict[str, Any]]:
        items = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id is not None:
                items += [json.loads(x) for x in (await self.blobs.get(str(file_id))).splitlines()]
        return items


class _Unreachable(UnitOfWork):
    async def _begin(self) -> None:
        raise ServiceUnavailable("the database is unavailable; try again shortly")

    async def _end(self) -> None:
        pass

    async def commit(self) -> None:
        pass

    async def rollback(self) -> None:
        pass


class Outage(UnitOfWorkFactory):
    """The database away for some units of work (by their 1-based order): opening those raises."""

    def __init__(self, inner: UnitOfWorkFactory, failing: frozenset[int]) -> None:
        self._inner = inner
        self.failing = set(failing)
        self.opened = 0

    def __call__(self) -> UnitOfWork:
        self.opened += 1
        if self.opened in self.failing:
            self.failing.discard(self.opened)
            return _Unreachable()
        return self._inner()


def rig(
    *,
    budget_micros: int | None = None,
    concurrency: int = 1,
    spec: ModelSpec = PRICED,
    outage: frozenset[int] = frozenset(),
) -> Rig:
    clock, recorder = FakeClock(), ListRecorder()
    uow = InMemoryUnitOfWorkFactory(job_queue=InProcessJobQueue())
    catalog = StaticModelCatalog([spec], default_model="scripted")
    budgets = Budgets(counter=InMemorySpendCounter(), uow=uow, clock=clock, fail_open=True)
    meter = Meter(
        catalog=catalog,
        recorder=recorder,
        budgets=budgets,
        limiter=InMemoryRateLimiter(),
        defaults=RateLimitDefaults(),
        clock=clock,
        fail_open=True,
    )
    provider = ScriptedProvider(["a", "b", "c"])
    model_call = ModelCall(models=OneModel(provider), catalog=catalog, meter=meter)
    blobs = InMemoryBlobStore()
    limits = BatchLimits(line_concurrency=concurrency, max_lines=10, poll_seconds=0.01)
    codecs = openai_line_codecs()
    finalize = FinalizeBatch(uow=uow, blobs=blobs, clock=clock, formats={BatchKind.OPENAI: OpenAIBatchOutput()})
    run_uow = Outage(uow, outage) if outage else uow  # the run job's units of work only
    run = RunBatch(uow=run_uow, model_call=model_call, codecs=codecs, finalize=finalize, clock=clock, limits=limits)
    prepare = PrepareBatch(uow=uow, blobs=blobs, model_call=model_call, codecs=codecs, clock=clock, limits=limits)
    now = clock.now()
    user = User(
        id=uuid.uuid4(),
        email="batch@example.com",
        password_hash="-",
        role=Role.MEMBER,
        is_active=True,
        created_at=now,
        updated_at=now,
        limits=Limits(monthly_budget_micros=budget_micros),
    )
    uow.store.users[user.id] = user
    return Rig(uow, clock, recorder, provider, run, prepare, blobs, user)


async def test_a_batch_runs_each_line_once_and_records_usage_with_the_batch_id() -> None:
    r = rig(concurrency=3)
    batch = await r.batch([line(f"l{i}") for i in range(7)])
    assert batch.status is BatchStatus.IN_PROGRESS
    assert batch.counts.pending == 7
    await r.run.execute(batch.id)
    done = await r.get(batch.id)
    assert done.status is BatchStatus.COMPLETED
    assert done.counts.succeeded == 7
    assert r.provider.calls == 7
    assert {record.batch_id for record in r.recorder.records} == {batch.id}
    assert sorted(item["custom_id"] for item in await r.output(done)) == [f"l{i}" for i in range(7)]
    await r.run.execute(batch.id)  # a job run again changes nothing
    assert r.provider.calls == 7


async def test_a_spent_budget_fails_the_remaining_lines_with_the_quota_error_and_ends_the_batch() -> None:
    # Each call holds its most possible cost (3 * 2 + 10 * 10 = 106) and costs 36: three fit in 200.
    r = rig(budget_micros=200)
    batch = await r.batch([line(f"l{i}") for i in range(6)])
    await r.run.execute(batch.id)
    done = await r.get(batch.id)
    assert done.status is BatchStatus.COMPLETED
    assert (done.counts.succeeded, done.counts.failed) == (3, 3)
    assert [e.code for e in done.errors] == ["budget_exceeded"]
    assert r.provider.calls == 3
    failed = [item for item in await r.output(done) if item["response"]["status_code"] != 200]
    assert {item["response"]["status_code"] for item in failed} == {429}
    assert {item["response"]["body"]["error"]["code"] for item in failed} == {"insufficient_quota"}


async def test_past_its_completion_window_a_batch_expires_with_what_never_ran() -> None:
    r = rig()
    batch = await r.batch([line("a"), line("b")])
    r.clock.advance(hours=25)
    await r.run.execute(batch.id)
    done = await r.get(batch.id)
    assert done.status is BatchStatus.EXPIRED
    assert done.expired_at is not None
    assert done.counts.expired == 2
    assert r.provider.calls == 0
    assert {item["error"]["code"] for item in await r.output(done)} == {"batch_expired"}


async def test_a_cancelled_batch_ends_cancelled_and_cannot_be_cancelled_twice() -> None:
    r = rig()
    batch = await r.batch([line("a"), line("b")])
    principal = Principal(user_id=r.user.id, role=Role.MEMBER, scopes=Scope.for_role(Role.MEMBER))
    cancel = CancelBatch(uow=r.uow, clock=r.clock)
    cancelling = await cancel.execute(BatchQuery(principal, batch.id))
    assert cancelling.status is BatchStatus.CANCELLING
    assert cancelling.counts.cancelled == 2
    await r.run.execute(batch.id)
    done = await r.get(batch.id)
    assert done.status is BatchStatus.CANCELLED
    assert r.provider.calls == 0
    with pytest.raises(BatchNotCancellable):
        await cancel.execute(BatchQuery(principal, batch.id))


async def test_a_killed_workers_lines_run_again_after_the_lease_and_its_late_result_is_ignored() -> None:
    r = rig()
    batch = await r.batch([line("a")])
    now = r.clock.now()
    dead, alive = uuid.uuid4(), uuid.uuid4()
    async with r.uow() as uow:
        [held] = await uow.batches.claim_lines(
            batch.id, now=now, until=now + timedelta(seconds=60), claim_id=dead, limit=5
        )
        assert await uow.batches.claim_lines(batch.id, now=now, until=now, claim_id=alive, limit=5) == []
        await uow.commit()
    r.clock.advance(seconds=61)
    await r.run.execute(batch.id)
    done = await r.get(batch.id)
    assert done.status is BatchStatus.COMPLETED
    assert r.provider.calls == 1
    async with r.uow() as uow:  # the dead claim's answer arrives late: not written
        late = LineResult(status=LineStatus.FAILED, status_code=500, body_json="{}")
        assert not await uow.batches.finish_line(held.id, dead, late, r.clock.now())


async def test_a_database_outage_ends_no_job_and_loses_no_answer() -> None:
    # Units of work of the run job: 1 claim (refused: the job waits), 2 claim, 3 store (refused: retried), 4 store.
    r = rig(outage=frozenset({1, 3}))
    batch = await r.batch([line("a"), line("b")])
    await r.run.execute(batch.id)
    done = await r.get(batch.id)
    assert done.status is BatchStatus.COMPLETED
    assert done.counts.succeeded == 2
    assert r.provider.calls == 2  # the answer whose write was refused was kept, not asked again
    assert sorted(item["custom_id"] for item in await r.output(done)) == ["a", "b"]


def test_a_line_holding_a_nul_fails_the_batch_naming_it() -> None:
    """An uploaded file is not checked for NUL at the edge (its bytes are data): its lines are, as text."""
    text = b"".join(json.dumps(x).encode() + b"\n" for x in (line("a"), line("b\x00"), line("c", user="x\x00")))
    raw, errors = read_jsonl(text)
    codec = openai_line_codecs()[CHAT]
    checked, errors = check_lines(raw, endpoint=CHAT, codec=codec, check_call=lambda _: None, max_lines=10)
    assert checked == []
    assert [(e.code, e.line) for e in errors] == [("invalid_json_line", 2), ("invalid_json_line", 3)]


def test_the_lines_are_checked_before_any_call() -> None:
    r = rig()
    raw, errors = read_jsonl(
        b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "scripted"}}\n'
        b"[1, 2]\n"
        b'{"custom_id": "b", "method": "GET", "url": "/v1/chat/completions", "body": {}}\n'
    )
    _, found = check_lines(
        raw, endpoint=CHAT, codec=openai_line_codecs()[CHAT], check_call=r.prepare.check_call, max_lines=10,
        earlier_errors=errors,
    )  # fmt: skip
    assert [(e.code, e.line) for e in found] == [
        ("invalid_request", 1),
        ("invalid_json_line", 2),
        ("invalid_method", 3),
    ]
    too_many, _ = read_jsonl(b"".join(json.dumps(line(f"l{i}")).encode() + b"\n" for i in range(11)))
    _, refused = check_lines(
        too_many, endpoint=CHAT, codec=openai_line_codecs()[CHAT], check_call=r.prepare.check_call, max_lines=10
    )
    assert [e.code for e in refused] == ["too_many_requests"]


async def test_batch_lines_take_only_their_share_of_what_rate_limits_leave() -> None:
    limiter, defaults = InMemoryRateLimiter(), RateLimitDefaults(key_requests_per_minute=10)
    share = BatchRateShare(limiter=limiter, defaults=defaults, share=0.5, fail_open=False)
    principal = Principal(user_id=uuid.uuid4(), role=Role.MEMBER, scopes=frozenset(), api_key_id=uuid.uuid4())
    for _ in range(5):
        await share.admit(principal)
    with pytest.raises(LimitExceeded):
        await share.admit(principal)
    interactive = CheckRequestRate(limiter=limiter, defaults=defaults, fail_open=False)
    for _ in range(5):  # the other half is the interactive calls'
        await interactive.execute(principal)
    with pytest.raises(LimitExceeded):
        await interactive.execute(principal)


async def test_start_batch_enqueues_its_jobs_in_the_same_commit() -> None:
    r = rig()
    batch = await r.batch([line("a")])
    assert batch.status is BatchStatus.IN_PROGRESS
    async with r.uow() as uow:
        fresh = Batch(**{**batch.__dict__, "id": uuid.uuid4(), "status": BatchStatus.VALIDATING})
        await uow.batches.add(fresh)
        await start_batch(uow, fresh, [], now=r.clock.now(), limits=BatchLimits())
        assert [job.args["batch_id"] for job in uow.jobs.jobs] == [str(fresh.id)]  # type: ignore[attr-defined]
        # not committed: rolled back with the rows


@pytest.mark.parametrize(
    ("prices", "cost"),
    [
        ({"batch_discount_percent": 50}, 18),  # (3 * 1 + 3 * 5)
        ({"batch_input_price_per_mtok_micros": 1_000_000}, 33),  # (3 * 1 + 3 * 10): output at its plain price
        ({}, 36),  # no batch price: the plain one, and the record says so
    ],
)
async def test_batch_lines_are_billed_at_the_batch_price_and_say_so(prices: dict[str, int], cost: int) -> None:
    r = rig(spec=replace(PRICED, **prices))
    batch = await r.batch([line("a")])
    await r.run.execute(batch.id)
    [record] = r.recorder.records
    assert record.cost_micros == cost
    assert record.batch_priced is bool(prices)
    assert record.batch_id == batch.id


async def test_a_revoked_key_fails_the_lines_not_run_with_a_401() -> None:
    r = rig()
    key = ApiKey(
        id=uuid.uuid4(),
        owner_id=r.user.id,
        name="k",
        scopes=Scope.for_role(Role.MEMBER),
        prefix="sk-sb-x",
        key_hash="-",
        created_at=r.clock.now(),
        revoked_at=r.clock.now(),
    )
    r.uow.store.api_keys[key.id] = key
    batch = await r.batch([line("a"), line("b")], api_key_id=key.id)
    await r.run.execute(batch.id)
    done = await r.get(batch.id)
    assert done.status is BatchStatus.COMPLETED
    assert done.counts.failed == 2
    assert r.provider.calls == 0
    assert {item["response"]["status_code"] for item in await r.output(done)} == {401}
    assert [e.code for e in done.errors] == ["unauthenticated"]
