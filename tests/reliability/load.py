"""A load generator for the reliability cases: client threads that post until stopped and keep
every answer, and what a replica's processes hold (resident memory, open file descriptors)."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx


@dataclass
class Answer:
    status: int  # 0: no HTTP answer (the connection failed)
    seconds: float
    retry_after: str | None = None
    error: str = ""


@dataclass
class Load:
    """``clients`` threads posting ``json`` to ``url`` as fast as they are answered."""

    url: str
    clients: int
    json: Any = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.clients)
        ]

    def _run(self) -> None:
        with httpx.Client(timeout=60, trust_env=False) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    response = client.post(self.url, json=self.json, params=self.params)
                except httpx.HTTPError as exc:
                    answer = Answer(0, time.perf_counter() - started, error=repr(exc))
                else:
                    answer = Answer(
                        response.status_code,
                        time.perf_counter() - started,
                        response.headers.get("retry-after"),
                        response.text[:200] if response.status_code != 200 else "",
                    )
                with self._lock:
                    self.answers.append(answer)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(90)

    def run_for(self, seconds: float) -> None:
        time.sleep(seconds)  # the load itself is the point: it runs this long

    def wait_answers(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.answers) < count:
            assert time.monotonic() < deadline, f"only {len(self.answers)} of {count} answers"
            time.sleep(0.02)

    def statuses(self) -> Counter[int]:
        with self._lock:
            return Counter(a.status for a in self.answers)

    def failed(self) -> list[Answer]:
        """Answers that are neither a 200 nor a 503 with Retry-After (a refusal to retry)."""
        with self._lock:
            return [
                a
                for a in self.answers
                if not (a.status == 200 or (a.status == 503 and a.retry_after))
            ]

    def p99(self, status: int = 200) -> float:
        seconds = sorted(a.seconds for a in self.answers if a.status == status)
        return seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))] if seconds else 0.0

    def p50(self, status: int = 200) -> float:
        seconds = [a.seconds for a in self.answers if a.status == status]
        return statistics.median(seconds) if seconds else 0.0


def processes(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(child) for child in children)
    return found


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def open_fds(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += len(list(Path(f"/proc/{pid}/fd").iterdir()))
        except OSError:
            continue
    return total
