"""The usage writer alone: records per second into PostgreSQL (part of ``make bench``).

    python -m bench.usage_writer [--records 100000] [--batch-size 1000]

A throwaway database ``sb_bench_<random>``, migrated; ``LedgerWriter`` (what the Redis stream's consumer and the
journal hand their batches to) writes ``--records`` records in batches of ``--batch-size`` on a pool of its own the
size the server gives it (``USAGE_POOL_SIZE``). Printed: records/s of the whole run, and the target (10,000).
Without PostgreSQL there is nothing to measure and it says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.storage import open_storage

REPO = Path(__file__).resolve().parents[1]
TARGET_PER_SECOND = 10_000


async def _write(url: str, records: int, batch_size: int) -> float:
    from domain.usage.model import UsageRecord
    from infrastructure.db.engine import create_engine, create_session_factory
    from infrastructure.db.unit_of_work import SqlAlchemyUnitOfWorkFactory
    from infrastructure.usage.ledger_writer import LedgerWriter
    from interfaces.container import USAGE_POOL_SIZE

    now = datetime.now(UTC)
    user, key = uuid.uuid4(), uuid.uuid4()
    batch = [
        UsageRecord(
            id=uuid.uuid4(),
            created_at=now,
            request_id=uuid.uuid4().hex,
            user_id=user,
            api_key_id=key,
            conversation_id=None,
            model="bench-openai",
            served_model="bench-openai",
            provider="openai",
            upstream_model="gpt-4o-mini",
            variant=None,
            input_tokens=120,
            output_tokens=300,
            cost_micros=198,
            latency_ms=900,
        )
        for _ in range(records)
    ]
    engine = create_engine(url, pool_size=USAGE_POOL_SIZE, max_overflow=0)
    try:
        writer = LedgerWriter(uow=SqlAlchemyUnitOfWorkFactory(create_session_factory(engine)), batch_size=batch_size)
        await writer.store(batch[:batch_size])  # connects and prepares, outside the window
        started = time.perf_counter()
        assert await writer.store(batch[batch_size:])
        return (records - batch_size) / (time.perf_counter() - started)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.usage_writer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args(argv)
    storage = open_storage(Path(tempfile.mkdtemp(prefix="sb-usage-writer-")), want_redis=False)
    try:
        if storage.kind != "postgresql":
            print("usage writer: PostgreSQL is not reachable, nothing measured")
            return 0
        env = {"SWITCHBOARD_DATABASE_URL": storage.database_url, "PYTHONPATH": str(REPO)}
        migrate = [sys.executable, "-m", "interfaces.cli", "migrate"]
        subprocess.run(migrate, cwd=REPO, env={**_base_env(), **env}, check=True, capture_output=True)
        rate = asyncio.run(_write(storage.database_url, args.records, args.batch_size))
    finally:
        storage.drop()
    verdict = "met" if rate >= TARGET_PER_SECOND else "NOT met"
    print(
        f"usage writer: {rate:,.0f} records/s into PostgreSQL ({args.records:,} records, batches of "
        f"{args.batch_size}; target {TARGET_PER_SECOND:,}/s: {verdict})"
    )
    return 0


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}


if __name__ == "__main__":
    sys.exit(main())
