"""The processes of a run (fake upstream, Switchboard) and what ``/proc`` says about them."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class StartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def _read_line(stream: IO[bytes], process: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.1)
        if ready:
            return stream.readline().decode().strip()
        if process.poll() is not None:
            break
    return ""


def start_upstream(python: str, cwd: Path, log: Path, *, delay_ms: float = 0.0, chunk_delay_ms: float = 0.0) -> Process:
    """``python -m tests.fakes.upstream`` on a free loopback port, not recording; its URL is its first line."""
    command = [python, "-m", "tests.fakes.upstream", "--port", "0", "--delay-ms", str(delay_ms)]
    command += ["--chunk-delay-ms", str(chunk_delay_ms)]
    with log.open("ab") as sink:
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=sink)
    assert process.stdout is not None
    url = _read_line(process.stdout, process, 30)
    if not url.startswith("http://"):
        process.kill()
        raise StartError(f"the fake upstream did not start:\n{log_tail(log)}")
    return Process("fake-upstream", process, url, log)


def start_switchboard(
    python: str,
    cwd: Path,
    log: Path,
    env: dict[str, str],
    *,
    port: int,
    timeout: float = 60.0,
    cpus: str | None = None,
) -> Process:
    """``switchboard serve --migrate`` (one worker) on ``port``, pinned to ``cpus`` (``taskset -c`` syntax) when
    given; returns once ``/health/ready`` answers 200."""
    command = [python, "-m", "interfaces.cli", "serve", "--migrate", "--host", "127.0.0.1", "--port", str(port)]
    if cpus:
        command = ["taskset", "-c", cpus, *command]  # taskset execs the server: same pid, its workers inherit
    with log.open("ab") as sink:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"{url}/health/ready", timeout=2) as response,
        ):
            if response.status == 200:
                return Process("switchboard", process, url, log)
        time.sleep(0.2)
    if process.poll() is None:
        process.kill()
        process.wait(5)
    raise StartError(f"Switchboard did not become ready (exit {process.returncode}):\n{log_tail(log)}")


def parse_cpus(spec: str) -> set[int]:
    """``"0"``, ``"1,3"`` or ``"0-2"`` (``taskset -c`` syntax) as a set of CPU numbers."""
    cpus: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def default_pinning() -> tuple[str | None, str | None]:
    """Server on CPU 0, load generator and fake upstream on the others (as the peer harness does), when this process
    may use at least two CPUs; else no pinning."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return None, None
    return str(usable[0]), ",".join(str(cpu) for cpu in usable[1:])


# ---- /proc ----------------------------------------------------------------------------------------------------------


def parse_stat_cpu_ticks(stat: str) -> int:
    """utime + stime (clock ticks) from the text of ``/proc/<pid>/stat``; the command name may hold spaces or ')'."""
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state), so utime (field 14) and stime (field 15) are at 11 and 12.
    return int(fields[11]) + int(fields[12])


def parse_status_kib(status: str, key: str) -> int | None:
    """A ``kB`` value (``VmRSS``, ``VmHWM``) from the text of ``/proc/<pid>/status``."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found.extend(int(child) for child in task.read_text().split())
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn with more than one worker forks; with one it does not)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_children(current))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its living descendants."""
    ticks = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            ticks += parse_stat_cpu_ticks(Path(f"/proc/{member}/stat").read_text())
    return ticks / CLOCK_TICKS


def memory_kib(pid: int, key: str) -> int | None:
    try:
        return parse_status_kib(Path(f"/proc/{pid}/status").read_text(), key)
    except OSError:
        return None


def wait_idle(pids: list[int], *, busy_share: float = 0.03, window: float = 0.5, timeout: float = 90.0) -> float:
    """Waits until the processes together use less than ``busy_share`` of a core over ``window``; the seconds waited.

    A load generator that stops closes its connections with requests still in flight, and the server finishes them
    anyway: without this, that leftover work would be billed to the next measurement.
    """
    started = time.monotonic()
    before = sum(cpu_seconds(pid) for pid in pids)
    while time.monotonic() - started < timeout:
        time.sleep(window)
        now = sum(cpu_seconds(pid) for pid in pids)
        if now - before < busy_share * window:
            break
        before = now
    return time.monotonic() - started


class RssSampler:
    """Samples ``VmRSS`` of a process in a thread; ``peak_kib`` is the largest sample since ``start``."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            rss = memory_kib(self.pid, "VmRSS")
            if rss is not None:
                self.samples.append(rss)
                self.peak_kib = max(self.peak_kib, rss)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
