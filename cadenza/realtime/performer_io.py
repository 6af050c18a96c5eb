"""What the performer (performer.py) talks to: the command queue the control thread puts to
(the player's messages coalesce, so that a flood builds no backlog), and the scheduler it
hands timed notes to."""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable
from typing import Protocol

MAX_PLAYER_BATCH = 256  # the player's messages kept of a run not yet taken in (the newest)


class Commands:
    """The performer's command queue: the control thread puts, the performer thread gets.

    The player's messages coalesce: those put while the performer is busy join the batch at
    the tail of the queue (one command, in order with the others), and a batch keeps its
    newest MAX_PLAYER_BATCH messages, so a flood of input builds no backlog: what is
    dropped is counted, and is what a context would have forgotten anyway."""

    def __init__(self, batch: int = MAX_PLAYER_BATCH) -> None:
        self.batch = batch
        self.dropped = 0
        self._queue: collections.deque[tuple] = collections.deque()
        self._ready = threading.Condition()

    def put(self, command: tuple) -> None:
        with self._ready:
            self._queue.append(command)
            self._ready.notify()

    def put_player(self, t: float, message: list[int]) -> None:
        with self._ready:
            if self._queue and self._queue[-1][0] == "anticipate":
                # The player went on: the opening it asks for would be dropped unplayed (the
                # performer drops an opening at the next player command), and in a flood of
                # notes one after every note-off would make a backlog of openings.
                self._queue.pop()
            last = self._queue[-1] if self._queue else None
            if last is not None and last[0] == "player":
                batch = last[1]
                if len(batch) == batch.maxlen:
                    self.dropped += 1
                batch.append((t, message))
                return
            batch = collections.deque([(t, message)], maxlen=self.batch)
            self._queue.append(("player", batch))
            self._ready.notify()

    def get(self, timeout: float) -> tuple:
        """The oldest command; queue.Empty after `timeout` seconds without one."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._queue, timeout):
                raise queue.Empty
            return self._queue.popleft()

    def get_nowait(self) -> tuple:
        with self._ready:
            if not self._queue:
                raise queue.Empty
            return self._queue.popleft()

    def empty(self) -> bool:
        return not self._queue

    def qsize(self) -> int:
        return len(self._queue)


Schedule = Callable[[float, list[int]], None]


class Unschedule(Protocol):
    """What silence() ends of what the performer scheduled: the engine's Scheduler."""

    def cancel(self, after: float | None = None) -> int: ...

    def release_all(self) -> None: ...
