"""Fixtures shared by the fault tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.upstream import FakeUpstream, UpstreamThread


@pytest.fixture
def steady_upstream() -> Iterator[UpstreamThread]:
    """A fake upstream answering every call after 50 ms, recording nothing: the batch cut tests' upstream."""
    with FakeUpstream.run_in_thread(latency=0.05, record=False) as running:
        yield running
