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

import numpy as np

from cadenza.midi_status import starts_note
from cadenza.plugins.base import Generator
from cadenza.realtime.answer_record import AnswerRecord, Opening
from cadenza.realtime.performer_io import Commands, Schedule, Unschedule
from cadenza.realtime.stream import LiveDecoder, LiveEncoder

MAX_EVENTS_PER_STEP = 24  # events at one 10 ms instant before time is moved on


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
        # The 16th of the bar an answer begins on, when the engine knows it (a melody-rnn
        # lays its bars by it); None: it does not.
        self.bar_step: Callable[[], int | None] = lambda: None
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
        self._asked = 0  # answer and mutate commands put (control thread) ...
        self._taken = 0  # ... and taken up (this thread)
        self._events_at_cursor = 0
        self._played: list[tuple[float, list[int]]] = []  # the answer's messages, from its start
        self._loop_next = 0.0
        self._loop_period = 0.0
        self.opening: Opening | None = None  # made during the silence (performer thread)
        self._making: Opening | None = None  # the opening being made
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
        self._asked += 1  # busy from now: the player may come in before this thread takes it
        self.commands.put(("answer", start, seconds))

    def anticipate(self, heard: int) -> None:
        """The player has let go: make the answer's opening now, for the phrase as heard
        (`heard`: the control thread's count of the player's messages so far)."""
        self.commands.put(("anticipate", heard))

    def play_opening(self, heard: int, start: float, seconds: float) -> bool:
        """The control thread's half of an answer: if the opening made during the silence
        answers the phrase as heard, schedule it from `start` at once, and the answer command
        that follows goes on from it. True when it did. The first note then waits for no
        thread and no model."""
        with self.lock:
            opening = self.opening
            if opening is None or opening.claimed or opening.heard != heard or self._silenced:
                return False
            opening.claimed, opening.sent_at = True, time.perf_counter()
            for t, message in opening.messages:
                if t < seconds:
                    self.schedule(start + t, message)
            return True

    def mutate(self, start: float, seconds: float) -> None:
        """Answer the last call again, with the next seed."""
        self._asked += 1
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

    def close(self) -> None:
        self._closed = True
        self.commands.put(("close",))

    @property
    def busy(self) -> bool:
        """Answering (from the ask: a player who comes in before this thread takes the answer
        up interrupts it too), playing on or looping (making an opening is listening still)."""
        return self._asked != self._taken or self.mode not in ("idle", "opening")

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
        if kind in ("answer", "mutate"):
            self._taken += 1
        if kind in ("player", "new_phrase", "anticipate", "stop", "swap"):
            # The phrase goes on (an opening claimed is its answer's, whose command is
            # ahead of these), or the answer is called off (what was sent of it is cancelled).
            self._drop_opening(force=kind in ("stop", "swap"))
        if kind == "mutate" and self.opening is not None:
            return  # the phrase has just ended: its answer is on its way
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
        elif kind == "anticipate":
            if self.mode == "idle":
                self._open(command[1])
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
        self.generator.prime(np.array(self.context, dtype=np.int64),
                             {"bpm": self.tempo(), "bar_step": self.bar_step()})

    def _start(self, start: float, seconds: float) -> None:
        began = time.perf_counter()
        opening, self.opening = self.opening, None
        if opening is not None and not opening.claimed:
            self.generator.restore(opening.snapshot)  # made for a phrase that went on
            opening = None
        self.answers += 1
        if opening is None:
            self._begin(start)
        else:  # the control thread sent its messages: go on from where it was made
            self.decoder.shift(start)
        self.answer_end = start + seconds
        seed = self._next_seed() if opening is None else opening.seed
        record = AnswerRecord(list(self.context), [], seed, start, seconds, began=began)
        self.records.append(record)
        self._played = []
        if opening is not None:
            record.events.extend(opening.events)
            record.first_note, record.opened = opening.sent_at, True
            self._played = [(t, m) for t, m in opening.messages if t < seconds]
        self.mode = "answer"

    def _next_seed(self) -> int | None:
        return None if self.seed is None else self.seed + self.answers - 1

    def _begin(self, start: float) -> None:
        """The generator seeded for the next answer, the decoder at `start` in the call's
        loudness, time standing still until the first note."""
        self.generator.seed(self._next_seed())
        self.decoder.start(start)
        if self.encoder.velocity_bin:  # the call's loudness goes on until the model changes it
            self.decoder.velocity = int(
                self.generator.codec.bin_to_velocity(self.encoder.velocity_bin)
            )
        self._skip_leading_shifts = True  # the silence that ended the call was the pause

    def _open(self, heard: int) -> None:
        """Make the opening: the next answer's first OPENING_SECONDS, timed from 0, held."""
        snapshot = self.generator.snapshot()
        self.answers += 1  # the seed the answer will have
        seed = self._next_seed()
        self._begin(0.0)
        self.answers -= 1
        opening = Opening(heard, seed, snapshot, [], [])
        self.mode = "opening"
        self._making = opening
        self._fill(Opening.seconds)
        self.mode = "idle"
        if self.commands.empty():
            self.opening = opening
        else:  # the player came back while it was made: what it made is of no use
            self.generator.restore(snapshot)

    def _drop_opening(self, force: bool = False) -> None:
        """An opening is given up and the generator put back: one nobody claimed, or with
        `force` any (a claimed one is otherwise its answer's, whose command comes next)."""
        with self.lock:
            opening = self.opening
            if opening is None or (opening.claimed and not force):
                return
            self.opening = None
        self.generator.restore(opening.snapshot)

    def _fill(self, horizon: float) -> None:
        """Generate until the decoder's cursor passes `horizon` (or the answer's end)."""
        while (
            self.mode in ("answer", "continuous", "opening")
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
            elif self.mode == "opening":
                self._making.events.append(event)
            if self._skip_leading_shifts and is_shift:
                continue  # until the answer's first note, time stands still
            self._skip_leading_shifts = self._skip_leading_shifts and event >= codec.note_off
            if self.mode == "opening":
                self._making.messages.extend(
                    (timed.time, timed.message) for timed in self.decoder.feed(event))
                continue
            with self.lock:
                for timed in self.decoder.feed(event):
                    if self._silenced or (self.mode == "answer" and timed.time >= self.answer_end):
                        continue
                    self.schedule(timed.time, timed.message)
                    if self.mode == "answer":
                        record = self.records[-1]
                        if record.first_note is None and starts_note(timed.message):
                            record.first_note = time.perf_counter()
                        self._played.append((timed.time - record.start, timed.message))
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
