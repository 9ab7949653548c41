"""The benchmark harness's own arithmetic and parsing (the benchmark itself is not run by the test suite)."""

from __future__ import annotations

import asyncio
import copy
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.client import LoadClient, build_request
from bench.loadtest import LoadTestConfig, LoadTestResult, UsageBook, render
from bench.procs import cpu_seconds, parse_stat_cpu_ticks, parse_status_kib, wait_idle
from bench.report import END_MARKER, START_MARKER, render_markdown, replace_between_markers, targets_table
from bench.run import headroom_notes
from bench.soak import Point, leak_verdict, quarter_means
from bench.stats import LoadResult, added, percentile, summarize
from bench.target import feature_settings
from bench.workload import (
    CHAT_MODEL,
    CLAUDE_MODEL,
    EMBED_MODEL,
    KINDS,
    LoadReport,
    Tally,
    answer_is_right,
    kind_of_record,
)
from bench.wrk import WrkError, parse_wrk_output

pytestmark = pytest.mark.unit

# A real line from `wrk -s bench/wrk/post.lua` (4.1.0), with two 500s and one read error added.
WRK_STDOUT = """\
Running 3s test @ http://127.0.0.1:40877/v1/chat/completions
  1 threads and 16 connections
  20524 requests in 3.00s, 15.82MB read
Requests/sec:   6835.57
BENCH_JSON {"duration_us":3002530,"requests":20524,"bytes":16583598,"errors":{"connect":0,"read":1,"write":0,\
"status":2,"timeout":0},"latency_us":{"min":345,"max":9693,"mean":2326.215,"p50":2269,"p90":3056,"p99":3874}}
"""


# ---- percentiles and summaries ---------------------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    assert percentile([7.0], 99) == 7
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2  # the smallest value with at least half at or below it
    assert percentile([1.0, 2.0, 3.0, 4.0], 51) == 3


@pytest.mark.parametrize("p", [-1, 100.5])
def test_percentile_refuses_nonsense(p: float) -> None:
    with pytest.raises(ValueError, match="out of range"):
        percentile([1.0], p)
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_summary_sorts_and_added_latency_subtracts_the_baseline() -> None:
    summary = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert summary == {"p50": 3.0, "p90": 5.0, "p99": 5.0, "max": 5.0, "mean": 3.0}
    assert summarize([]) is None
    baseline = {"p50": 0.5, "p90": 1.0, "p99": 2.0, "max": 9.0, "mean": 1.0}
    assert added(summary, baseline) == {"p50": 2.5, "p90": 4.0, "p99": 3.0}
    assert added(summary, None) is None
    assert added(None, baseline) is None


def test_a_load_result_round_trips_through_its_json_form() -> None:
    result = LoadResult("async-client", 4, 2.0, 100, 98, {"status": 2}, summarize([1.0, 2.0]), summarize([0.5]))
    again = LoadResult.from_dict(result.to_dict())
    assert again.to_dict() == result.to_dict()
    assert again.rps == 50
    assert again.error_count == 2


# ---- wrk ------------------------------------------------------------------------------------------------------------


def test_wrk_output_is_read_from_the_json_line_of_the_lua_script() -> None:
    result = parse_wrk_output(WRK_STDOUT, concurrency=16)
    assert result.tool == "wrk"
    assert result.requests == 20524
    assert result.ok == 20522  # wrk's `requests` includes the non-2xx responses it counts in errors.status
    assert result.errors == {"read": 1, "status": 2}
    assert result.duration_s == pytest.approx(3.00253)
    assert result.rps == pytest.approx(20524 / 3.00253)
    assert result.latency_ms == pytest.approx(
        {"p50": 2.269, "p90": 3.056, "p99": 3.874, "max": 9.693, "mean": 2.326215}
    )
    assert result.ttfb_ms is None


def test_wrk_output_without_the_json_line_is_an_error() -> None:
    with pytest.raises(WrkError, match="BENCH_JSON"):
        parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n", concurrency=1)


def test_wrk_output_with_no_response_has_no_latency() -> None:
    line = WRK_STDOUT.splitlines()[-1].replace('"requests":20524', '"requests":0')
    assert parse_wrk_output(line, concurrency=1).latency_ms is None


def test_the_features_b_runs_with_are_found_in_the_settings_by_name() -> None:
    fields = {
        "redis_url",
        "rate_limit_rpm",
        "default_budget_usd",
        "usage_flush_ms",
        "upstream_retry_budget_ratio",
        "port",
    }
    assert feature_settings(fields) == [
        "SWITCHBOARD_DEFAULT_BUDGET_USD",
        "SWITCHBOARD_RATE_LIMIT_RPM",
        "SWITCHBOARD_REDIS_URL",
        "SWITCHBOARD_USAGE_FLUSH_MS",
    ]


# ---- /proc ----------------------------------------------------------------------------------------------------------


def test_cpu_ticks_are_read_after_the_command_name_whatever_it_holds() -> None:
    fields = ["S", "1", "2", "3", "0", "-1", "4194560", "100", "0", "0", "0", "1234", "567", "8", "9"]
    stat = "4242 (python -m x) (y)) " + " ".join(fields) + " 20 0 1 0"
    assert parse_stat_cpu_ticks(stat) == 1234 + 567


def test_memory_values_are_read_from_proc_status() -> None:
    status = "Name:\tpython\nVmPeak:\t  300000 kB\nVmHWM:\t  181000 kB\nVmRSS:\t  176000 kB\n"
    assert parse_status_kib(status, "VmHWM") == 181000
    assert parse_status_kib(status, "VmRSS") == 176000
    assert parse_status_kib(status, "VmSwap") is None


def test_waiting_for_an_idle_process_returns_once_it_is_idle() -> None:
    me = os.getpid()
    assert cpu_seconds(me) > 0
    assert wait_idle([me], window=0.05, timeout=5) < 1  # this process sleeps while it waits


# ---- the README section ---------------------------------------------------------------------------------------------


def test_the_readme_section_between_the_markers_is_replaced_and_nothing_else() -> None:
    text = f"# T\n\nbefore\n{START_MARKER}\nold table\n{END_MARKER}\nafter\n"
    updated = replace_between_markers(text, "| new |\n")
    assert updated == f"# T\n\nbefore\n{START_MARKER}\n| new |\n{END_MARKER}\nafter\n"
    assert replace_between_markers(updated, "| new |\n") == updated


@pytest.mark.parametrize(
    "text",
    [
        "no markers",
        f"{START_MARKER} only the start",
        f"{START_MARKER}{END_MARKER}{START_MARKER}{END_MARKER}",
        f"{END_MARKER} reversed {START_MARKER}",
    ],
)
def test_the_readme_markers_must_be_there_once_and_in_order(text: str) -> None:
    with pytest.raises(ValueError, match="bench"):
        replace_between_markers(text, "x")


# ---- the report -----------------------------------------------------------------------------------------------------


def _level(concurrency: int, rps: float, p50: float, p99: float, **extra: Any) -> dict[str, Any]:
    latency = {"p50": p50, "p90": p99, "p99": p99, "max": p99, "mean": p50}
    load = {"rps": rps, "errors": {}, "latency_ms": latency, "ttfb_ms": latency}
    return {"concurrency": concurrency, "load": load, "cpu_ms_per_request": 0.5, "rss": {"hwm_mib": 90.0}, **extra}


RESULTS: dict[str, Any] = {
    "started_at": "2025-01-01T00:00:00Z",
    "machine": {"cpu": "CPU", "cores": 2, "memory_gib": 24, "kernel": "6", "python": "3.11", "loadavg_start": 0.1},
    "config": {"commit": "abc", "server": "uvicorn", "storage": "PostgreSQL", "tools": "wrk", "duration_s": 10,
               "warmup_s": 2},
    "scenarios": {
        "a": {"available": True, "note": "", "levels": [_level(1, 9000, 0.1, 0.3), _level(64, 9000, 2, 5)]},
        "b": {"available": True, "note": "", "levels": [
            _level(1, 900, 0.9, 5.5, added_ms={"p50": 0.8, "p99": 5.2},
                   usage={"records": 9000, "calls_ok": 8936, "upstream_calls": 9000, "per_s": 900.0}),
            _level(64, 1600, 30, 60, added_ms={"p50": 28, "p99": 55}),
            _level(256, 1400, 150, 300, added_ms={"p50": 140, "p99": 290}),
        ]},
        "c": {"available": False, "note": "not available in this build", "levels": []},
    },
}  # fmt: skip


def test_the_report_has_a_row_per_level_and_says_what_was_not_measured() -> None:
    markdown = render_markdown(RESULTS)
    assert "| (b) `POST /v1/chat/completions` | 64 | 1600 | 30.00 |" in markdown
    assert "| +0.80 | +5.20 |" in markdown
    assert "900 (9000/9000)" in markdown
    assert "- (c) `POST /v1/chat/completions`, stream: not available in this build" in markdown
    assert "Streaming:" not in markdown
    assert "†" not in markdown


def test_a_level_without_a_steady_state_is_flagged() -> None:
    results = copy.deepcopy(RESULTS)
    results["scenarios"]["b"]["levels"][2]["steady"] = False
    markdown = render_markdown(results)
    assert "| (b) `POST /v1/chat/completions` | 256 † | 1400 |" in markdown
    assert "256/64 = 0.88 (†) | **not met** |" in markdown
    assert "† fewer than 3 requests per connection" in markdown


def test_the_targets_are_judged_from_the_run() -> None:
    rows = "\n".join(targets_table(RESULTS))
    assert "| (b) added latency at concurrency 1, p50 ≤ 1 ms | +0.80 ms | met |" in rows
    assert "| (b) added latency at concurrency 1, p99 ≤ 5 ms | +5.20 ms | **not met** |" in rows
    assert "| (c) added time to first byte at concurrency 1 ≤ 1 ms | not measured | n/a |" in rows
    assert "1600 req/s, 0.50 ms CPU/req, 0 errors | met |" in rows
    assert "256/64 = 0.88 | **not met** |" in rows
    assert "| 90.0 MiB | met |" in rows
    # the load generator stopped with 64 requests in flight: the server finished and billed them
    assert "9000 records for 9000 upstream calls (8936 answers counted by the load generator" in rows
    assert "up to 900 records/s | met |" in rows


def test_a_lost_usage_record_fails_the_target() -> None:
    results = copy.deepcopy(RESULTS)
    results["scenarios"]["b"]["levels"][0]["usage"]["records"] = 8999
    assert "8999 records for 9000 upstream calls" in "\n".join(targets_table(results))
    assert "up to 900 records/s | **not met** |" in "\n".join(targets_table(results))


def test_a_fake_upstream_without_headroom_is_pointed_out() -> None:
    results = copy.deepcopy(RESULTS["scenarios"])
    notes = headroom_notes(results)
    assert results["b"]["levels"][0]["upstream_headroom"] == 10.0
    assert notes == []
    results["a"]["levels"][1]["load"]["rps"] = 2000
    assert headroom_notes(results) == [
        "(b) `POST /v1/chat/completions` at concurrency 64: the fake upstream alone served only 1.2 times as much; "
        "it may be the bottleneck there"
    ]


# ---- soak -----------------------------------------------------------------------------------------------------------


def test_the_leak_check_compares_the_second_and_the_last_quarter() -> None:
    flat = [Point(n * 100, rss) for n, rss in enumerate([80, 90, 91, 91, 91.5, 91, 92, 91], start=1)]
    quarters = quarter_means(flat, 800)
    assert quarters == [85.0, 91.0, 91.25, 91.5]
    assert leak_verdict(quarters)[0] is True
    growing = [Point(n * 100, 80 + 5 * n) for n in range(1, 9)]
    ok, detail = leak_verdict(quarter_means(growing, 800))
    assert ok is False
    assert "+20.0 MiB" in detail
    assert leak_verdict(quarter_means([Point(800, 90)], 800)) == (
        None,
        "too few samples to compare the second and the last quarter",
    )


# ---- the async client -----------------------------------------------------------------------------------------------


async def _chunked_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every request with a chunked body whose first chunk comes 20 ms before the rest (or a 500)."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length"))
            body = await reader.readexactly(int(length))
            status = b"500 Internal Server Error" if b"fail" in head else b"200 OK"
            writer.write(b"HTTP/1.1 " + status + b"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def test_the_client_times_the_first_and_the_last_byte_of_chunked_responses() -> None:
    server = await asyncio.start_server(_chunked_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    host = f"127.0.0.1:{port}"
    try:
        requests = [build_request(host, "/ok", b"{}", "sk-x"), build_request(host, "/fail", b"{}", None)]
        client = LoadClient(url=f"http://{host}", requests=requests, concurrency=2, duration=0.3)
        result = await client.run()
    finally:
        server.close()
        await server.wait_closed()
    assert result.requests >= 4
    assert result.errors.get("status", 0) == result.requests - result.ok
    assert 0 < result.ok < result.requests
    assert result.latency_ms is not None
    assert result.ttfb_ms is not None
    assert result.ttfb_ms["p50"] < 15 <= result.latency_ms["p50"]


def test_a_request_is_keep_alive_http_1_1_with_a_bearer_and_a_length() -> None:
    request = build_request("h:1", "/p", b'{"a":1}', "sk-key")
    assert request.startswith(b"POST /p HTTP/1.1\r\nHost: h:1\r\n")
    assert b"\r\nAuthorization: Bearer sk-key\r\n" in request
    assert request.endswith(b'Content-Length: 7\r\n\r\n{"a":1}')
    assert b"Authorization" not in build_request("h:1", "/p", b"", None)


# ---- the load test's workload and books ------------------------------------------------------------------------------


def _sse(*frames: str) -> bytes:
    return "".join(f"{frame}\n\n" for frame in frames).encode()


def test_streams_count_as_answered_only_when_they_end_with_their_apis_final_event() -> None:
    chunk = 'data: {"choices":[{"delta":{"content":"Echo: hi"}}]}'
    assert answer_is_right("chat-stream", "hi", 200, _sse(chunk, 'data: {"choices":[]}', "data: [DONE]"))
    assert not answer_is_right("chat-stream", "hi", 200, _sse(chunk))  # cut before [DONE]
    assert not answer_is_right("chat-stream", "hi", 200, _sse(chunk, "data: [DONE]")[:-1])  # cut mid-event
    delta = 'event: content_block_delta\ndata: {"delta":{"type":"text_delta","text":"Echo: hi"}}'
    assert answer_is_right("messages-stream", "hi", 200, _sse(delta, 'event: message_stop\ndata: {"type":"x"}'))
    assert not answer_is_right("messages-stream", "hi", 200, _sse(delta, 'event: error\ndata: {"type":"error"}'))
    done = 'event: done\ndata: {"assistant_message":{}}'
    assert answer_is_right("conversation-stream", "hi", 200, _sse('event: delta\ndata: {"text":"Echo: hi"}', done))
    assert not answer_is_right("conversation-stream", "hi", 200, _sse('event: delta\ndata: {"text":"Echo"}', done))
    assert not answer_is_right("chat", "hi", 200, b"<html>")  # not the shape: wrong, not a crash


def test_usage_records_map_to_the_kind_of_call_that_made_them() -> None:
    assert kind_of_record(CHAT_MODEL, streamed=True, conversation=False) == "chat-stream"
    assert kind_of_record(CLAUDE_MODEL, streamed=False, conversation=False) == "messages"
    assert kind_of_record(EMBED_MODEL, streamed=False, conversation=False) == "embeddings"
    assert kind_of_record(CLAUDE_MODEL, streamed=True, conversation=True) == "conversation-stream"
    assert kind_of_record("nope", streamed=False, conversation=False) == "other:nope"


def test_the_load_test_balances_only_when_records_match_calls_and_upstream_answers() -> None:
    chat = Tally(calls=3, ok=3, statuses=Counter({200: 3}))
    report = LoadReport(1.0, {kind.name: Tally() for kind in KINDS} | {"chat": chat})
    usage = UsageBook(3, Counter({"chat": 3}), Counter({CHAT_MODEL: 3}), Counter({"success": 3}), 0)
    served = {"/v1/chat/completions": 3}
    config = LoadTestConfig(workdir=Path("."), database_url="sqlite+aiosqlite:///x.db", redis_url=None)
    assert LoadTestResult(config, report, usage, served, 0, 0.5).problems() == []
    assert "| chat | 3 | 3.0 | 3 | 0 | 0 | 0 | 0 |" in render(LoadTestResult(config, report, usage, served, 0, 0.5))

    lost = copy.deepcopy(usage)
    lost.total, lost.by_kind["chat"], lost.by_model[CHAT_MODEL] = 2, 2, 2
    assert LoadTestResult(config, report, lost, served, 0, 0.5).problems() == [
        "chat: 2 usage records for 3 calls answered",
        "/v1/chat/completions: 2 usage records for 3 answers served",
        "2 usage records for 3 upstream answers",
    ]
    failing = copy.deepcopy(report)
    failing.tallies["chat"].statuses[502] += 1
    assert LoadTestResult(config, failing, usage, served, 1, 0.5).problems() == ["chat: 1 5xx", "the server exited 1"]
