"""The fake cluster's clock: real time moved on by what tests ``advance``.

The controllers date their conditions with it and compare deadlines against it
(``progressDeadlineSeconds``, ``minReadySeconds``), so a test reaches a ten-minute deadline by
moving the clock, without waiting. Moving it tells the listeners (the controllers re-evaluate).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # metav1.Time: RFC 3339, whole seconds, UTC


def parse(stamp: str) -> datetime.datetime:
    return datetime.datetime.strptime(stamp, FORMAT).replace(tzinfo=datetime.UTC)


class Clock:
    def __init__(self) -> None:
        self.offset = datetime.timedelta()
        self.listeners: list[Callable[[], None]] = []

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC) + self.offset

    def stamp(self) -> str:
        return self.now().strftime(FORMAT)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"the clock only moves forward, not by {seconds} s")
        self.offset += datetime.timedelta(seconds=seconds)
        for listener in list(self.listeners):
            listener()
