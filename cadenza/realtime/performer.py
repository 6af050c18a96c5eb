"""The generation thread: owns the generator, keeps it ahead of playback, hands timed notes
to the scheduler.

Only this thread touches the generator, so no lock guards its state: the control thread
talks to it through a command queue. The player's notes enter the generator's context as
they are played (so at the end of a phrase nothing is left to prime), and generated events
are turned into timed note messages up to `lookahead` seconds ahead of the clock, so that
the first note of an answer never waits for the model.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cadenza.plugins.base import Generator
from cadenza.realtime.stream import LiveDecoder, LiveEncoder

Schedule = Callable[[float, list[int]], None]


class Unschedule(Protocol):
    """What silence() ends of what the performer scheduled: the engine's Scheduler."""

    def cancel(self, after: float | None = None) -> int: ...

    def release_all(self) -> None: ...

MAX_EVENTS_PER_STEP = 24  # events at one 10 ms instant before time is moved on
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


@dataclass
class AnswerRecord:
    """What one answer was made of, to replay it offline: the generator primed with nothing,
    extended with `primer`, seeded with `seed`, steps `events` (leading time shifts included,
    though the engine skips them: the pause that ended the call stands for them)."""

    primer: list[int]
    events: list[int]
    seed: int | None
    start: float
    seconds: float


class Performer(threading.Thread):
    def __init__(
        self,
        generator: Generator,
        schedule: Schedule,
        *,
        channel: int = 0,
        lookahead: float = 1.0,
        seed: int | None = None,
        loop: bool = False,
        on_error: Callable[[BaseException], None] | None = None,
        unschedule: Unschedule | None = None,
    ):
        super().__init__(name="cadenza-performer", daemon=True)
        self.generator = generator
        self.schedule = schedule
        self.lookahead = lookahead
        self.seed = seed
        self.loop = loop  # repeat the last answer until the player plays again
        self.on_error = on_error
        self.unschedule = unschedule  # None: silence() stops generating, the rest is the caller's
        self.tempo: Callable[[], float | None] = lambda: None  # the engine's bpm, for prime
        codec = generator.codec
        self.encoder = LiveEncoder(codec)
        self.decoder = LiveDecoder(codec, channel=channel)
        self.commands = Commands()
        self.mode = "idle"  # idle | answer | continuous | loop
        self.answer_end = 0.0
        self.answers = 0
        self.context: list[int] = []  # the current phrase's events, for mutate and records
        self.pending: list[tuple] = []  # player commands held back during an answer
        self._pending_dropped = 0
        self.records: list[AnswerRecord] = []
        self._skip_leading_shifts = False
        self._closed = False
        self._silenced = False
        self._events_at_cursor = 0
        self._played: list[tuple[float, list[int]]] = []  # the answer's messages, from its start
        self._loop_next = 0.0
        self._loop_period = 0.0
        # Held while this thread schedules, and by silence(): no message of an answer being
        # silenced can reach the scheduler between the stop and the cancel.
        self.lock = threading.Lock()

    # --- called from the control thread -------------------------------------------------
    def player(self, t: float, message: list[int]) -> None:
        self.commands.put_player(t, message)

    @property
    def dropped(self) -> int:
        """The player's messages a flood coalesced away (never taken into the context)."""
        return self.commands.dropped + self._pending_dropped

    def new_phrase(self) -> None:
        self.commands.put(("new_phrase",))

    def answer(self, start: float, seconds: float) -> None:
        self.commands.put(("answer", start, seconds))

    def mutate(self, start: float, seconds: float) -> None:
        """Answer the last call again, with the next seed."""
        self.commands.put(("mutate", start, seconds))

    def continuous(self, start: float) -> None:
        self.commands.put(("continuous", start))

    def swap(self, generator: Generator) -> None:
        """Play with another generator from the next phrase on."""
        self.commands.put(("swap", generator))

    def set_style(self, style: str | None) -> None:
        """Condition the generator on `style` (its own thread does it, between two steps)."""
        self.commands.put(("style", style))

    def silence(self) -> None:
        """Silence the answer at once and end it: nothing more of it reaches the scheduler,
        what it scheduled and has not been sent is dropped (a note-off of a sounding note is
        kept), and its sounding notes end now. From any thread."""
        with self.lock:
            self._silenced = True
            self.commands.put(("stop",))
            if self.unschedule is not None:
                self.unschedule.cancel()
                self.unschedule.release_all()

    stop_answer = silence  # its former name

    def close(self) -> None:
        self._closed = True
        self.commands.put(("close",))

    @property
    def busy(self) -> bool:
        return self.mode != "idle"

    # --- the thread -----------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._loop()
        except BaseException as error:  # the engine ends every note and reports it
            self.mode = "idle"
            if self.on_error is not None:
                self.on_error(error)

    def _loop(self) -> None:
        while not self._closed:
            timeout = None
            ahead_until = self._loop_next if self.mode == "loop" else self.decoder.cursor
            if self.mode != "idle":  # wake when the buffer falls under half the look-ahead
                timeout = max(0.0, ahead_until - self.lookahead / 2 - time.perf_counter())
            try:
                command = self.commands.get(timeout=timeout if timeout is not None else 0.2)
            except queue.Empty:
                command = None
            while command is not None:
                self._handle(command)
                try:
                    command = self.commands.get_nowait()
                except queue.Empty:
                    command = None
            if self.mode == "loop":
                self._repeat(time.perf_counter() + self.lookahead)
            elif self.mode != "idle":
                self._fill(time.perf_counter() + self.lookahead)

    def _handle(self, command: tuple) -> None:
        kind = command[0]
        if self.mode == "loop" and kind in ("player", "new_phrase", "answer", "mutate", "stop"):
            self.mode = "idle"  # the player is back: the loop has done its job
        if self.mode == "answer" and kind in ("player", "new_phrase"):
            self._hold(command)  # the answer owns the generator until it is over
        elif kind == "player":
            self._take(command[1])
        elif kind == "new_phrase":
            self._reset_context()
        elif kind in ("answer", "mutate"):
            _, start, seconds = command
            self._finish(schedule_offs=True)  # a new call came while answering (overlap)
            if kind == "mutate":
                self._reset_context(keep=self.context)
            self._start(start, seconds)
        elif kind == "continuous":
            self.mode = "continuous"
            self.decoder.start(command[1])
            self.encoder.time = command[1]
            self._skip_leading_shifts = False
        elif kind == "stop":
            self._finish(schedule_offs=False)
            self._silenced = False
        elif kind == "swap":
            self._finish(schedule_offs=False)
            self.generator = command[1]
            self._reset_context()
        elif kind == "style":
            if command[1] is None or command[1] in self.generator.styles:
                self.generator.set_style(command[1])
        elif kind == "close":
            self._closed = True

    def _hold(self, command: tuple) -> None:
        """Keep a player command for after the answer; a batch joins the one held last, so
        that what is held is bounded as the queue is."""
        last = self.pending[-1] if self.pending else None
        if command[0] == "player" and last is not None and last[0] == "player":
            held = last[1]
            self._pending_dropped += max(0, len(held) + len(command[1]) - held.maxlen)
            held.extend(command[1])
        else:
            self.pending.append(command)

    def _take(self, batch: collections.deque) -> None:
        """The player's messages, in order, into the context: one extend for the batch."""
        events: list[int] = []
        for t, message in batch:
            if self.mode == "continuous":  # one timeline: the player's notes join the generated
                self.encoder.time = max(self.encoder.time or t, self.decoder.cursor)
            events.extend(self.encoder.feed(t, message))
        if events:
            self.generator.extend(events)
            self.context.extend(events)
            if self.mode == "continuous":
                self.decoder.cursor = max(self.decoder.cursor, self.encoder.time or 0.0)

    def _reset_context(self, keep: list[int] | None = None) -> None:
        """A fresh context: the generator's start, then `keep` (the last call, for mutate)."""
        self.encoder.reset()
        self.context = list(keep or [])
        codec = self.generator.codec
        bins = [e - codec.velocity for e in self.context if e > codec.velocity]
        self.encoder.velocity_bin = bins[-1] if bins else 0  # the velocity in force
        # One prime with the whole context, as `cadenza generate` primes: a transformer takes
        # it in one prefill rather than one step per event.
        self.generator.prime(np.array(self.context, dtype=np.int64), {"bpm": self.tempo()})

    def _start(self, start: float, seconds: float) -> None:
        self.answers += 1
        seed = None if self.seed is None else self.seed + self.answers - 1
        self.generator.seed(seed)
        self.decoder.start(start)
        if self.encoder.velocity_bin:  # the call's loudness goes on until the model changes it
            self.decoder.velocity = int(
                self.generator.codec.bin_to_velocity(self.encoder.velocity_bin)
            )
        self.answer_end = start + seconds
        self.records.append(AnswerRecord(list(self.context), [], seed, start, seconds))
        self._played = []
        self._skip_leading_shifts = True  # the silence that ended the call was the pause
        self.mode = "answer"

    def _fill(self, horizon: float) -> None:
        """Generate until the decoder's cursor passes `horizon` (or the answer's end)."""
        while (
            self.mode in ("answer", "continuous")
            and self.decoder.cursor < horizon
            and self.commands.empty()
        ):
            event = self.generator.step()
            codec = self.generator.codec
            is_shift = codec.time_shift < event <= codec.velocity
            # A model that stops advancing time would flood the port: after this many events
            # at one instant, time moves on by a step regardless.
            self._events_at_cursor = 0 if is_shift else self._events_at_cursor + 1
            if self._events_at_cursor > MAX_EVENTS_PER_STEP:
                self.decoder.cursor += 1.0 / codec.steps_per_second
                self._events_at_cursor = 0
            if self.mode == "answer":
                self.records[-1].events.append(event)
            if self._skip_leading_shifts and is_shift:
                continue  # until the answer's first note, time stands still
            self._skip_leading_shifts = self._skip_leading_shifts and event >= codec.note_off
            with self.lock:
                for timed in self.decoder.feed(event):
                    if self._silenced or (self.mode == "answer" and timed.time >= self.answer_end):
                        continue
                    self.schedule(timed.time, timed.message)
                    if self.mode == "answer":
                        self._played.append((timed.time - self.records[-1].start, timed.message))
            if self.mode == "answer" and self.decoder.cursor >= self.answer_end:
                self._finish(schedule_offs=True)
            elif self.mode == "continuous":
                self.encoder.time = self.decoder.cursor

    def _repeat(self, horizon: float) -> None:
        """Loop mode: schedule the last answer again, period after period."""
        while self.mode == "loop" and self._loop_next < horizon and self.commands.empty():
            with self.lock:
                if self._silenced:
                    return
                for offset, message in self._played:
                    self.schedule(self._loop_next + offset, message)
            self._loop_next += self._loop_period

    def _finish(self, schedule_offs: bool) -> None:
        if self.mode == "idle":
            return
        offs = self.decoder.close()
        finished = self.mode == "answer" and schedule_offs and not self._silenced
        with self.lock:
            if finished:
                for timed in offs:
                    end = min(timed.time, self.answer_end)
                    self.schedule(end, timed.message)
                    self._played.append((end - self.records[-1].start, timed.message))
        self.mode = "idle"
        if finished and self.loop and not self.pending:
            self.mode = "loop"
            self._loop_period = self.records[-1].seconds
            self._loop_next = self.answer_end
        # What the player did during the answer now goes into the (next) context.
        pending, self.pending = self.pending, []
        for command in pending:
            self._handle(command)
