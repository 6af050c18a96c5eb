"""The scheduler thread: each MIDI message leaves at its absolute deadline on perf_counter, and
stop, panic and cancel never leave a note sounding.

Deadlines come from the control thread through schedule(); the thread sleeps on a condition
until about `spin_seconds` before the earliest one (an OS sleep wakes up to a few hundred
microseconds late), then spins to it, yielding the GIL but for the last HOLD_SECONDS. What
counts as sounding is what was actually sent, so the note-offs sent by release_all() match
what the synth received.

Python threads share the GIL: a thread that runs pure Python for long delays the scheduler
by up to sys.getswitchinterval() (5 ms by default) at each wake-up, so the live engine should
lower the interval (e.g. sys.setswitchinterval(0.0005)) and keep heavy work in code that
releases the GIL (onnxruntime, numpy).

Lateness (send time minus deadline) goes into a preallocated ring; nothing here prints or
logs. A failing send (a lost port) is counted, flagged and handed to `on_error`, and the
thread carries on.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import numpy as np

from cadenza.midi_status import ALL_NOTES_OFF, CONTROL_CHANGE, NOTE_OFF, SUSTAIN_PEDAL, channel_of
from cadenza.realtime.note_state import NoteState
from cadenza.realtime.priority import raise_priority

# The spin keeps the GIL only for its last 200 us and yields it before that. A spin that
# keeps it throughout starves rtmidi's input callback, which runs on JACK's process thread and
# needs the GIL: with deadlines 0.5 ms apart JACK then skipped the callback's cycles and half
# of the input was lost (measured at 64 frames/period); yielding brought that to ~0.
HOLD_SECONDS = 0.0002
REALTIME_SPIN_SECONDS = 0.0002  # the spin left on the SCHED_FIFO policy (priority.py)

ErrorCallback = Callable[[BaseException], None]
_Entry = tuple[float, int, Sequence[int]]  # (deadline, insertion order, message)


class Output(Protocol):
    """What the scheduler needs from a port (cadenza.realtime.ports.MidiOutput is one)."""

    def send(self, message: Sequence[int]) -> None: ...


class Scheduler:
    """Sends scheduled MIDI messages at their deadlines from its own thread.

    schedule()/cancel()/release_all()/panic()/stop() may be called from any thread.
    `on_error` is called on the scheduler thread (or the caller's, for release_all/panic/stop)
    after a failed send; it must return quickly.
    """

    def __init__(self, output: Output, *, spin_seconds: float = 0.001,
                 on_error: ErrorCallback | None = None, lateness_capacity: int = 1 << 16,
                 priority: int | None = None):
        if spin_seconds < 0:
            raise ValueError(f"spin_seconds must be >= 0, got {spin_seconds}")
        self.output = output
        self.spin_seconds = spin_seconds
        self.on_error = on_error
        self.priority = priority  # SCHED_FIFO level asked for its thread (priority.py)
        self.realtime = False  # granted
        self.send_errors = 0
        self.last_error: BaseException | None = None
        self.port_error = threading.Event()  # set on the first failed send; the engine clears it
        self.thread_error: BaseException | None = None  # a bug that ended the thread
        self._cond = threading.Condition()  # guards everything below and every send
        self._heap: list[_Entry] = []
        self._order = itertools.count()
        self._state = NoteState()
        self._lateness = np.zeros(lateness_capacity, dtype=np.float64)
        self._lateness_count = 0
        self._running = True
        self._thread = threading.Thread(target=self._main, name=f"cadenza-{type(self).__name__}",
                                        daemon=True)
        self._thread.start()

    # ----- called from other threads -----

    def schedule(self, deadline: float, message: Sequence[int]) -> None:
        """Send `message` at `deadline` (seconds on time.perf_counter)."""
        with self._cond:
            self._check_running()
            entry = (deadline, next(self._order), message)
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:  # a new earliest deadline: wake the thread to re-aim
                self._cond.notify()

    def schedule_many(self, events: Iterable[tuple[float, Sequence[int]]]) -> None:
        """schedule() for a batch, under one lock."""
        with self._cond:
            self._check_running()
            earliest = self._heap[0][0] if self._heap else math.inf
            for deadline, message in events:
                heapq.heappush(self._heap, (deadline, next(self._order), message))
            if self._heap and self._heap[0][0] < earliest:
                self._cond.notify()

    def cancel(self, after: float | None = None) -> int:
        """Drop pending messages (all, or those due after `after`); return how many.

        A note-off (or sustain-off) whose note would be sounding when it is due is kept, at its
        deadline: the note ends as written, and one whose note-on was dropped is dropped too.
        Call release_all() as well to end sounding notes now.
        """
        with self._cond:
            entries = sorted(self._heap)
            if after is None:
                kept, candidates = [], entries
            else:
                kept = [e for e in entries if e[0] <= after]
                candidates = [e for e in entries if e[0] > after]
            # Replay what will still be sent, to know what is sounding when each candidate is due.
            future = self._state.copy()
            for entry in kept:
                future.apply(entry[2])
            for entry in candidates:
                if future.ends_something(entry[2]):
                    kept.append(entry)
                    future.apply(entry[2])
            heapq.heapify(kept)
            dropped = len(self._heap) - len(kept)
            self._heap = kept
            self._cond.notify()
        return dropped

    def release_all(self) -> None:
        """Note-off now for every sounding note, and sustain-off where a pedal is down; the
        pending note-offs (and sustain-offs) of what it ended are dropped: sent later, they
        would cut a note of the same pitch begun in between (the next answer's)."""
        with self._cond:
            errors = self._release_locked()
            self._drop_stale_ends_locked()
        self._report(errors)

    def _drop_stale_ends_locked(self) -> None:
        """Drop each pending end that would end nothing when due, replaying what is pending
        from what sounds now (a note-off of a note still to begin is kept)."""
        future = self._state.copy()
        kept = []
        for entry in sorted(self._heap):
            if future.is_an_end(entry[2]) and not future.ends_something(entry[2]):
                continue
            kept.append(entry)
            future.apply(entry[2])
        if len(kept) != len(self._heap):
            heapq.heapify(kept)
            self._heap = kept

    def end_channels(self, channels: Iterable[int]) -> None:
        """Drop every pending message on `channels` (0..15) and end their sounding notes now
        (and lift their pedals): a stop of one voice of the output that leaves nothing of it to
        come, not even a late note-off, while the other channels play on."""
        wanted = frozenset(channels)
        with self._cond:
            kept = [e for e in self._heap if channel_of(e[2]) not in wanted]
            if len(kept) != len(self._heap):
                heapq.heapify(kept)
                self._heap = kept
                self._cond.notify()
            errors = self._release_locked(wanted)
        self._report(errors)

    def panic(self) -> None:
        """Silence: drop everything pending, release every note, then all-notes-off (CC123) and
        sustain-off (CC64) on every channel used so far."""
        with self._cond:
            self._heap.clear()
            errors = self._panic_locked()
        self._report(errors)

    def stop(self, *, panic: bool = False, timeout: float = 2.0) -> None:
        """End the thread, drop what is pending and release every note (with panic=True: panic()).
        Safe to call twice."""
        with self._cond:
            was_running, self._running = self._running, False
            self._cond.notify_all()
        if not was_running:
            return
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        with self._cond:
            self._heap.clear()
            errors = self._panic_locked() if panic else self._release_locked()
        self._report(errors)

    @property
    def running(self) -> bool:
        return self._running and self._thread.is_alive()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    @property
    def sounding(self) -> frozenset[tuple[int, int]]:
        """(channel, pitch) of the notes sent and not yet ended."""
        with self._cond:
            return frozenset(self._state.notes)

    @property
    def channels_used(self) -> frozenset[int]:
        with self._cond:
            return frozenset(self._state.channels)

    def lateness_stats(self) -> dict[str, float]:
        """Seconds late at send time (p50, p99, max) over the last `lateness_capacity` messages
        sent from the queue, and `count`, all of those since the start or the last reset. The
        immediate sends of release_all/panic/stop are not counted. NaN when nothing was sent."""
        with self._cond:
            samples, count = self._lateness_snapshot(), self._lateness_count
        if count == 0:
            return {"p50": math.nan, "p99": math.nan, "max": math.nan, "count": 0}
        p50, p99 = np.percentile(samples, [50, 99])
        return {"p50": float(p50), "p99": float(p99), "max": float(samples.max()),
                "count": count}

    def lateness_samples(self) -> np.ndarray:
        """A copy of the recorded lateness values (seconds), oldest first."""
        with self._cond:
            return self._lateness_snapshot()

    def _lateness_snapshot(self) -> np.ndarray:
        count, ring = self._lateness_count, self._lateness
        if count <= len(ring):
            return ring[:count].copy()
        split = count % len(ring)
        return np.concatenate([ring[split:], ring[:split]])

    def reset_lateness(self) -> None:
        with self._cond:
            self._lateness_count = 0

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ----- the scheduler thread -----

    def _main(self) -> None:
        if self.priority is not None:
            self.realtime = raise_priority(self.priority)
        if self.realtime:  # woken on time by the OS: a spin would only take a core from others
            self.spin_seconds = min(self.spin_seconds, REALTIME_SPIN_SECONDS)
        try:
            self._loop()
        except BaseException as exc:  # a bug: leave a trace for the engine instead of vanishing
            self.thread_error = exc
            self._running = False
            self._report([exc])

    def _loop(self) -> None:
        cond, spin, clock = self._cond, self.spin_seconds, time.perf_counter
        while True:
            with cond:
                while True:
                    if not self._running:
                        return
                    if not self._heap:
                        cond.wait()
                        continue
                    deadline = self._heap[0][0]
                    wait = deadline - clock() - spin
                    if wait <= 0:
                        break
                    cond.wait(wait)  # woken early by an earlier schedule(), cancel() or stop()
            # Spin outside the lock so that schedule() and cancel() never wait for us; what is
            # sent is decided afterwards, so a cancel() during the spin is honoured.
            while (left := deadline - clock()) > 0:
                if left > HOLD_SECONDS:
                    time.sleep(0)  # lets a thread waiting for the GIL in (see HOLD_SECONDS)
            self._send_due()

    def _send_due(self) -> None:
        errors: list[BaseException] = []
        with self._cond:
            if not self._running:
                return
            heap, clock = self._heap, time.perf_counter
            now = clock()
            while heap and heap[0][0] <= now:
                deadline, _, message = heapq.heappop(heap)
                sent_at = clock()
                error = self._send_locked(message)
                if error is None:
                    self._lateness[self._lateness_count % len(self._lateness)] = sent_at - deadline
                    self._lateness_count += 1
                else:
                    errors.append(error)
        self._report(errors)

    # ----- helpers, called with the lock held unless said otherwise -----

    def _check_running(self) -> None:
        if not self._running:
            raise RuntimeError("the scheduler is stopped")

    def _send_locked(self, message: Sequence[int]) -> BaseException | None:
        try:
            self.output.send(message)
        except Exception as exc:  # a lost or closed port: count it, keep the thread alive
            self.send_errors += 1
            self.last_error = exc
            self.port_error.set()
            return exc
        self._state.apply(message)
        return None

    def _release_locked(self, channels: frozenset[int] | None = None) -> list[BaseException]:
        errors = []
        for (channel, pitch), count in sorted(self._state.notes.items()):
            if channels is not None and channel not in channels:
                continue
            for _ in range(count):
                error = self._send_locked([NOTE_OFF | channel, pitch, 0])
                if error is not None:
                    errors.append(error)
        for channel in sorted(self._state.pedals):
            if channels is not None and channel not in channels:
                continue
            error = self._send_locked([CONTROL_CHANGE | channel, SUSTAIN_PEDAL, 0])
            if error is not None:
                errors.append(error)
        return errors

    def _panic_locked(self) -> list[BaseException]:
        errors = self._release_locked()
        for channel in sorted(self._state.channels):
            for controller in (ALL_NOTES_OFF, SUSTAIN_PEDAL):
                error = self._send_locked([CONTROL_CHANGE | channel, controller, 0])
                if error is not None:
                    errors.append(error)
        return errors

    def _report(self, errors: list[BaseException]) -> None:
        """Hand errors to on_error, without the lock (it may call back into the scheduler)."""
        if self.on_error is None:
            return
        for error in errors:
            try:
                self.on_error(error)
            except Exception:  # a failing handler must not take the scheduler down with it
                pass


class NaiveScheduler(Scheduler):
    """The benchmark baseline: time.sleep() to the deadline, no spin. Same interface.

    It sleeps towards the earliest deadline known when it went to sleep: a message scheduled
    meanwhile for an earlier time waits for it, as in a simple tick loop.
    """

    def _loop(self) -> None:
        cond, clock = self._cond, time.perf_counter
        while True:
            with cond:
                while self._running and not self._heap:
                    cond.wait()
                if not self._running:
                    return
                deadline = self._heap[0][0]
            # In slices, only so that stop() need not wait out a sleep of seconds.
            while self._running and (delay := deadline - clock()) > 0:
                time.sleep(min(delay, 0.05))
            self._send_due()
