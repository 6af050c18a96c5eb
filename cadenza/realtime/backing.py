"""The backing loop of `cadenza live --mode backing`: a backing generator stepped along the beat
grid, its note changes sent at the grid's deadlines, the player's notes heard step by step.

Timing. Step n sounds at its grid point, read off the current BeatGrid each time (origin +
k x step seconds: the DAW clock's fitted line, Link's timeline or the internal tempo), never by
adding step lengths: nothing drifts however long it plays, and a tempo change or a new clock
estimate moves the next step at once.

Listen, then play (a bundle whose frames put the player first, `generator.listens`). Half a step
before step n sounds, the loop opens its frame (one model step, ahead of time). If the model
finds a player's note-on on step n likely (a beat of the melody), the loop waits for the
player: the first note-on that comes after that point is the player's note of step n, and the
loop hears it, generates step n's backing and sends it at once (early notes: at the grid point;
late ones: a few milliseconds after the note, which a listener hears as together). A step on
which the player then plays nothing waits `listen` seconds past its grid point at most, then
plays with what it heard. A step the player is unlikely to start a note on is played at once,
on its grid point. The grid sets every deadline; only sends wait for the player.

Plan ahead (an older backing-first bundle, or `listen=None`). Half a step before step n sounds,
once the player's notes of step n-1 are all in, the loop closes step n-1's frame with them
(`hear`), opens step n's (`play_step`) and schedules its changes at step n's deadline: the
backing of a step does not know the player's note of it. A step whose deadline is too close to
meet when its turn comes is played as a rest. A DAW's first clock may follow its Start within a
millisecond, too soon to generate: so while stopped, the downbeat a Start plays first is
generated in advance ("armed", the model's state kept to rewind to if something else comes
first), and a Start only has to schedule it.

Player notes are quantised to the nearest step: a note belongs to step n when it came after the
midpoint between steps n-1 and n, and a note that comes after its step's frame was closed goes
to the next open frame (listening, a frame closes when its backing plays: a note later than the
listen window is heard on the next step, as late as it came).

Nothing here reads a clock or sleeps: `poll(now)` does what is due at `now` and says when it
is next due, so the soak benchmark runs this same code on simulated time. The control thread
calls poll/player/start/stop (and poll again as soon as a player's note comes in); silence(),
toggle_loop(), mutate() and the density may come from any thread (a knob, a key).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cadenza.realtime.clock import BeatGrid

NOTE_OFF, NOTE_ON = 0x80, 0x90
LATE_MARGIN = 0.01  # seconds: a step due sooner than this when prepared is played as a rest
# Listening, a step waits for the player only if the model gives the player's playing on it
# (a note-off or note-on) at least this probability; others play on the grid point, planned
# half a step ahead.
LISTEN_ABOVE = 0.1
# Listening, while a step waits for the player, its backing is computed ahead for the player's
# likeliest notes (the model's guesses), as many as there is time for before its grid point, at
# most ANTICIPATED: a foreseen note gets its backing with no model work. A guess takes a few ms
# of model work (GUESS_SECONDS, measured on 2 cores with JACK running, rounded up); one is
# begun only if it ends before the grid point, where the player's note is due.
ANTICIPATED = 8
GUESS_SECONDS = 0.012
ARMED_MARGIN = 0.001  # ... or, generated in advance, when it is to be scheduled
MAX_PLAYER_NOTES = 1024  # unheard player notes kept (a flood costs no memory)
DEFAULT_LOOP_BARS = 2  # the loop's length when looping is switched on with none set

Change = tuple[int, int, bool]  # (part, pitch, True for a note-on), as the backing plugin has it
Note = tuple[int, int]  # (part, pitch)


class BackingGenerator(Protocol):
    """What the loop needs of cadenza.plugins.backing.BackingTransformer."""

    sounding: list[set[int]]
    density: float
    listens: bool  # the player's notes of a step come before its backing

    def play_step(self, position: int, forced: Iterable[Change] | None = None,
                  offs: Iterable[int] = (), ons: Iterable[int] = ()) -> list[Change]: ...

    def open_step(self, position: int) -> None: ...

    def player_probability(self) -> float: ...

    def anticipate(self, count: int) -> Anticipated: ...

    def play(self, forced: Iterable[Change] | None = None,
             emit: Callable[[Change], None] | None = None) -> list[Change]: ...

    def hear(self, offs: Iterable[int] = (), ons: Iterable[int] = ()) -> None: ...

    def silence(self) -> list[tuple[int, int]]: ...

    def set_style(self, style: str | None) -> None: ...

    def snapshot(self) -> object: ...

    def restore(self, state: object) -> None: ...


class Anticipated(Protocol):
    """What the loop needs of cadenza.plugins.backing.Anticipation."""

    pending: list

    def step(self) -> bool: ...

    def take(self, offs: Iterable[int], ons: Iterable[int]) -> list[Change] | None: ...

    def hear(self, offs: Iterable[int], ons: Iterable[int]) -> None: ...


class Output(Protocol):
    """Where the changes go: the engine's Scheduler (it knows what sounds, see end_channels)."""

    def schedule_many(self, events: Iterable[tuple[float, Sequence[int]]]) -> None: ...

    def end_channels(self, channels: Iterable[int]) -> None: ...


# --- the loop record ------------------------------------------------------------------------
@dataclass
class Bar:
    start: frozenset[Note]  # the backing notes sounding as the bar began
    steps: list[tuple[Change, ...]] = field(default_factory=list)  # the changes, step by step


class LoopRecord:
    """The last `bars` whole bars the backing played, each with the notes sounding as it
    began, to be replayed. A ring: memory stays bounded however long it plays. A bar is kept
    only if it was played whole, from its downbeat, without a jump."""

    def __init__(self, bars: int, steps_per_bar: int):
        self.bars: deque[Bar] = deque(maxlen=bars)
        self.steps_per_bar = steps_per_bar
        self._current: Bar | None = None

    @property
    def length(self) -> int:
        return self.bars.maxlen or 0

    @property
    def full(self) -> bool:
        return len(self.bars) == self.length

    def resize(self, bars: int) -> None:
        self.bars = deque(self.bars, maxlen=bars)  # keeps the most recent ones

    def clear(self) -> None:
        self.bars.clear()
        self._current = None

    def record(self, position: int, sounding: frozenset[Note] | None, changes: Sequence[Change],
               steps_per_bar: int) -> None:
        """Step `position` played `changes`; `sounding` (needed at a downbeat) is what sounded
        before them."""
        if steps_per_bar != self.steps_per_bar:  # another metre: the old bars are no loop of it
            self.clear()
            self.steps_per_bar = steps_per_bar
        if position == 0:
            self._current = Bar(sounding or frozenset())
        current = self._current
        if current is None:
            return
        if len(current.steps) != position:  # the song position jumped: no whole bar here
            self._current = None
            return
        current.steps.append(tuple(changes))
        if len(current.steps) == self.steps_per_bar:
            self.bars.append(current)
            self._current = None

    def break_bar(self) -> None:
        """The bar being recorded will not be whole (a stop)."""
        self._current = None


def seam(sounding: set[Note], start: frozenset[Note], first: Sequence[Change]) -> list[Change]:
    """The changes that make a replayed bar's first step sound as recorded, from whatever
    sounds now: notes not in the recording end, notes held into the recorded bar start again,
    and the bar's own first changes happen (a note struck there is struck again)."""
    ons = {(part, pitch) for part, pitch, on in first if on}
    ended = {(part, pitch) for part, pitch, on in first if not on}
    target = (set(start) - ended) | ons
    offs = (sounding - target) | (sounding & ons)
    starts = ons | (target - sounding)
    return [(p, q, False) for p, q in sorted(offs)] + [(p, q, True) for p, q in sorted(starts)]


# --- the loop -------------------------------------------------------------------------------
class BackingLoop:
    def __init__(
        self,
        generator: BackingGenerator,
        output: Output,
        grid: Callable[[], BeatGrid | None],
        *,
        channels: Sequence[int],
        velocities: Sequence[int],
        steps_per_quarter: int,
        loop_bars: int = 0,
        listen: float | None = 0.01,
        listen_above: float = LISTEN_ABOVE,
    ):
        self.generator = generator
        self.listen_above = listen_above  # how likely the player's note must be for a step to wait
        # Seconds past a step's grid point that a listening bundle waits for the player's note
        # of it; None: plan every step ahead, as a backing-first bundle must.
        self.listen = listen
        self.output = output
        self.grid = grid  # the current grid; None while there is none (a stopped DAW)
        self.channels = list(channels)  # wire channel (0..15) of each part
        self.velocities = list(velocities)
        self.steps_per_quarter = steps_per_quarter
        self.record = LoopRecord(loop_bars or DEFAULT_LOOP_BARS, 4 * steps_per_quarter)
        self.looping = loop_bars > 0
        # Held while a step is prepared and scheduled: silence() takes it, so that no change of
        # a step being prepared slips past a stop or a panic.
        self.lock = threading.Lock()
        self.running = False
        self._start_beat: float | None = None  # where a start begins; None: the next step
        self._last: float | None = None  # the deadline of the last step opened
        self._open = False  # a frame is open: play_step done, hear not yet
        self._player: deque[tuple[float, int, bool]] = deque(maxlen=MAX_PLAYER_NOTES)
        self._deferred: list[int] = []  # player note-offs moved to the next frame
        self._replay: int | None = None  # the loop bar being replayed, None when generating
        self._silence_model = False  # requests from other threads, done before the next step
        self._mutate = False
        self._loop_bars: int | None = None
        self._swap: BackingGenerator | None = None
        self._style: tuple[str | None] | None = None
        self._count_bar = True  # the next step (re)sets the bar number from the grid
        # The downbeat generated while stopped: (model state before it, (sounding, changes)).
        self._armed: tuple[object, tuple[frozenset[Note], list[Change]]] | None = None
        # Listening: the step opened and waiting for the player (deadline, position, the
        # backing sounding as it opened, when it opened: the player's note-ons after count).
        self._waiting: tuple[float, int, frozenset[Note] | None, float] | None = None
        self._anticipation: Anticipated | None = None  # its backing for the likeliest notes
        # For the status line and the benchmarks.
        self.bar = 0
        self.position = 0
        self.steps = 0
        self.rests = 0  # steps whose deadline was too close: played as rests
        self.listened = 0  # steps that waited for the player (listening)
        self.heard_in_time = 0  # ... of which the player's note came within the window
        self.foreseen = 0  # ... and was one the backing had been computed ahead for
        self.notes_sent = 0
        self.last_deadline: float | None = None
        self.bpm: float | None = None  # the tempo of the grid it plays on

    # --- transport (control thread) ------------------------------------------------------
    def start(self, beat: float | None = None) -> None:
        """Play from `beat` of the grid (a DAW's Start: 0; Continue: its song position), or
        from the next step that can be met."""
        if self.running:
            self.stop()
        self.running = True
        self._start_beat = beat
        self._last = None
        self._open = False
        self._player.clear()
        self._deferred = []
        self._replay = None
        self._count_bar = True
        self._waiting = None
        self._anticipation = None

    def stop(self) -> None:
        """Every backing note ends now and nothing more of it is sent; the model hears them end
        when it plays again."""
        self.silence()
        self.running = False
        self._open = False
        self._last = None
        self._player.clear()
        self._replay = None
        self._waiting = None
        self._anticipation = None
        self.record.break_bar()

    def relocate(self) -> None:
        """The song position jumped while playing (a DAW's loop): the bar number follows."""
        self._count_bar = True

    # --- from any thread -----------------------------------------------------------------
    def silence(self) -> None:
        """End every backing note now (nothing pending of them is sent either)."""
        with self.lock:
            self.output.end_channels(self.channels)
            self._silence_model = True  # the model hears it at the next step, on its thread

    def toggle_loop(self) -> None:
        self.looping = not self.looping

    def mutate(self) -> None:
        """Forget the loop: the next bars are generated afresh (and looped, when looping)."""
        self._mutate = True

    def set_loop_bars(self, bars: int) -> None:
        self._loop_bars = bars

    def swap(self, generator: BackingGenerator) -> None:
        """Play on with another generator (another bundle, as many parts) from the next step;
        the old one's notes end now."""
        self.silence()
        self._swap = generator

    def set_style(self, style: str | None) -> None:
        self._style = (style,)  # a tuple: None is a style too ("any")

    @property
    def listening(self) -> bool:
        """Each step waits for the player's note of it (listen, then play)."""
        return self.listen is not None and self.generator.listens

    @property
    def loop_bars(self) -> int:
        return self._loop_bars or self.record.length

    @property
    def loop_state(self) -> str:
        if not self.looping:
            return "off"
        if self._replay is not None:
            return f"{self.record.length} bars playing"
        return f"{self.record.length} bars rec {len(self.record.bars)}/{self.record.length}"

    # --- the player (control thread) -----------------------------------------------------
    def player(self, t: float, message: Sequence[int]) -> None:
        """A note-on or note-off the player played at `t`."""
        if not self.running or len(message) < 3:
            return
        kind = message[0] & 0xF0
        if kind == NOTE_ON and message[2] > 0:
            self._player.append((t, message[1], True))
        elif kind in (NOTE_ON, NOTE_OFF):
            self._player.append((t, message[1], False))

    # --- the step (control thread) -------------------------------------------------------
    def poll(self, now: float) -> float | None:
        """Do every step action due at `now`; the time the next one is due, or None while
        there is no grid to play on."""
        grid = self.grid() if self.running else None
        self.bpm = None if grid is None else grid.bpm
        if grid is None:
            self._arm()
            return None
        step = grid.seconds_per_beat / self.steps_per_quarter
        while True:
            if self._waiting is not None:  # a step opened, listening for the player
                until = self._waiting[0] + (self.listen or 0.0)
                if now < until and not self._heard_onset():
                    guesses = self._anticipation
                    if guesses and guesses.pending and now + GUESS_SECONDS < self._waiting[0]:
                        with self.lock:
                            guesses.step()
                        return now  # due at once: the player's note first, then the next guess
                    return until
                self._play_waiting(now, grid.beats_per_bar * self.steps_per_quarter)
                continue
            deadline = self._next_deadline(grid, now, step)
            if now < deadline - step / 2:
                return deadline - step / 2
            self._advance(grid, deadline, step, now)

    def _next_deadline(self, grid: BeatGrid, now: float, step: float) -> float:
        division = 1.0 / self.steps_per_quarter
        if self._last is not None:
            # The grid point after the last step: half a step on, so that a clock estimate
            # moving by a little neither repeats nor skips a step.
            deadline = grid.next_beat(self._last + step / 2, division)
        elif self._start_beat is not None:
            deadline = grid.next_beat(grid.time_of_beat(self._start_beat) - step / 2, division)
        else:
            deadline = grid.next_beat(now + LATE_MARGIN, division)
        if deadline < now - grid.beats_per_bar * grid.seconds_per_beat:
            # Over a bar behind (a stall, a clock that took long to lock): rather than a bar
            # of rests, go on from now.
            deadline = grid.next_beat(now, division)
        return deadline

    def _advance(self, grid: BeatGrid, deadline: float, step: float, now: float) -> None:
        steps_per_bar = grid.beats_per_bar * self.steps_per_quarter
        beat = grid.beat_at(deadline)
        position = round(beat * self.steps_per_quarter) % steps_per_bar
        with self.lock:
            self._requests()
            if self.listening:
                self._open_step(deadline, position, now, steps_per_bar)
                self._last = deadline
                self._count(beat, position, grid.beats_per_bar, False)
                return
            boundary = deadline - step / 2 if self._last is None else (self._last + deadline) / 2
            backing_first = not self.generator.listens
            if backing_first and self._open and self._last is not None:
                self._hear(boundary)  # close the last step's frame with what the player played
            changes = self._armed_changes(position, deadline, now, steps_per_bar)
            late = False
            if changes is None:
                late = deadline < now + LATE_MARGIN
                sounding = self._sounding() if position == 0 else None
                forced = [] if late else self._replayed(position, sounding)
                if backing_first:
                    changes = self.generator.play_step(position, forced)
                else:  # a listening bundle planned ahead: it hears the last step's notes here
                    self.generator.open_step(position)
                    self._hear(boundary)
                    changes = self.generator.play(forced)
                if self._replay is None:
                    self.record.record(position, sounding, changes, steps_per_bar)
            self._open = True
            self._last = deadline
            self._send(deadline, changes)
        self._count(beat, position, grid.beats_per_bar, late)
        self.last_deadline = deadline

    def _open_step(self, deadline: float, position: int, now: float, steps_per_bar: int) -> None:
        """Listening: open the step's frame ahead of time and wait for the player; a replayed
        step is played at once (the loop does not listen)."""
        sounding = self._sounding() if position == 0 else None
        forced = self._replayed(position, sounding)
        self.generator.open_step(position)
        if forced is None and self.generator.player_probability() >= self.listen_above:
            self._waiting = (deadline, position, sounding, now)
            self._anticipation = self.generator.anticipate(ANTICIPATED)
            self.listened += 1
            return
        # Replayed, or a step the player is unlikely to start a note on: planned now, played
        # on the grid point (a note the player does start on it is heard on the next step).
        self._hear(now)
        self._finish(deadline, position, sounding, self._play(deadline, forced), steps_per_bar)

    def _heard_onset(self) -> bool:
        """A note-on came in since the waiting step opened: the player's note of it."""
        opened = self._waiting[3] if self._waiting else math.inf
        return any(on and t >= opened for t, _, on in self._player)

    def _play_waiting(self, now: float, steps_per_bar: int) -> None:
        """Hear what the player played and play the waiting step now (as a rest if the machine
        stalled far past it: nothing sounds that late)."""
        deadline, position, sounding, _ = self._waiting
        with self.lock:
            self.heard_in_time += self._heard_onset()
            anticipation, self._waiting, self._anticipation = self._anticipation, None, None
            offs, ons = self._heard(math.inf)
            late = now > deadline + (self.listen or 0.0) + LATE_MARGIN
            foreseen = None if late or anticipation is None else anticipation.take(offs, ons)
            if foreseen is not None:
                self._send(deadline, foreseen)
                self.foreseen += 1
                changes = foreseen
            else:
                (anticipation or self.generator).hear(offs, ons)
                changes = self._play(deadline, [] if late else None)
            self.rests += late
            self._finish(deadline, position, sounding, changes, steps_per_bar)

    def _play(self, deadline: float, forced: list[Change] | None) -> list[Change]:
        """Play the open step, each change sent the moment it is chosen (the first note-on
        goes out while the model still takes in the ones before it)."""
        return self.generator.play(forced, emit=lambda change: self._send(deadline, [change]))

    def _finish(self, deadline: float, position: int, sounding: frozenset[Note] | None,
                changes: list[Change], steps_per_bar: int) -> None:
        if self._replay is None:
            self.record.record(position, sounding, changes, steps_per_bar)
        self.last_deadline = deadline

    def _arm(self) -> None:
        """Stopped: generate the downbeat a Start will play first, keeping the state to rewind
        to. Not while a loop would replay it instead, nor when listening (the downbeat then
        waits for the player anyway: opening it is one model step)."""
        if self._open or (self.looping and self.record.full) or self.listening:
            return
        with self.lock:
            self._requests()  # a request (a silence, another model) rewinds an armed step
            if self._armed is None:
                state = self.generator.snapshot()
                sounding = self._sounding()
                self._armed = (state, (sounding, self.generator.play_step(0)))

    def _disarm(self) -> None:
        if self._armed is not None:
            self.generator.restore(self._armed[0])
            self._armed = None

    def _armed_changes(self, position: int, deadline: float, now: float,
                       steps_per_bar: int) -> list[Change] | None:
        """The armed downbeat's changes if this step is it (and can still be met), else None
        (the model rewound to before it)."""
        armed, self._armed = self._armed, None
        if armed is None:
            return None
        state, (sounding, changes) = armed
        if position != 0 or deadline < now + ARMED_MARGIN or (self.looping and self.record.full):
            self.generator.restore(state)
            return None
        self._replay = None
        self.record.record(0, sounding, changes, steps_per_bar)
        return changes

    def _requests(self) -> None:
        """What other threads asked for since the last step."""
        if self._silence_model or self._swap is not None or self._style is not None:
            self._disarm()  # the armed step was made by the model as it was
        if self._silence_model:
            self._silence_model = False
            self.generator.silence()
        if self._swap is not None:
            self.generator, self._swap = self._swap, None
            self._open = False  # the new model starts with this step's frame
            self.record.clear()  # the old model's loop is no context of the new one
            self._replay = None
        if self._style is not None:
            (style,), self._style = self._style, None
            self.generator.set_style(style)
        if self._mutate:
            self._mutate = False
            self.record.clear()
            self._replay = None
        if self._loop_bars is not None:
            self.record.resize(self._loop_bars)
            self._loop_bars = None
            self._replay = None
        if not self.looping:
            self._replay = None

    def _sounding(self) -> frozenset[Note]:
        return frozenset(
            (part, pitch) for part, held in enumerate(self.generator.sounding) for pitch in held
        )

    def _replayed(self, position: int, sounding: frozenset[Note] | None) -> list[Change] | None:
        """The changes the loop replays on this step, or None to generate."""
        if not self.looping:
            return None
        record = self.record
        if position == 0:
            if not record.full:
                self._replay = None
                return None
            self._replay = 0 if self._replay is None else (self._replay + 1) % len(record.bars)
            bar = record.bars[self._replay]
            return seam(set(sounding or ()), bar.start, bar.steps[0])
        if self._replay is None:
            return None
        steps = record.bars[self._replay].steps
        return list(steps[position]) if position < len(steps) else []

    def _hear(self, boundary: float) -> None:
        """Close the open frame with the player's notes that came before `boundary` (or were
        too late for their own frame)."""
        self.generator.hear(*self._heard(boundary))

    def _heard(self, boundary: float) -> tuple[list[int], list[int]]:
        """The player's note-offs and note-ons that came before `boundary` (or were too late
        for their own frame), taken from the queue. A note struck and released within one step
        lasts the step: its note-off goes to the next frame, as the model was trained on grid
        notes."""
        player, offs, ons = self._player, set(self._deferred), set()
        self._deferred = []
        last: dict[int, bool] = {}
        struck: set[int] = set()
        while player and player[0][0] < boundary:
            _, pitch, on = player.popleft()
            last[pitch] = on
            if on:
                struck.add(pitch)
        for pitch, on in last.items():
            if on or pitch in struck:
                ons.add(pitch)
                offs.discard(pitch)
                if not on:
                    self._deferred.append(pitch)
            else:
                offs.add(pitch)
        return sorted(offs), sorted(ons)

    def _send(self, deadline: float, changes: Sequence[Change]) -> None:
        """Schedule a step's changes at its deadline, note-offs first (as play_step orders
        them: a pitch struck again ends before it starts)."""
        events = []
        for part, pitch, on in changes:
            channel = self.channels[part]
            if on:
                events.append((deadline, [NOTE_ON | channel, pitch, self.velocities[part]]))
            else:
                events.append((deadline, [NOTE_OFF | channel, pitch, 0]))
        if events:
            self.output.schedule_many(events)
            self.notes_sent += sum(1 for _, _, on in changes if on)

    def _count(self, beat: float, position: int, beats_per_bar: int, late: bool) -> None:
        self.steps += 1
        self.rests += late
        if self._count_bar:
            self._count_bar = False
            self.bar = math.floor(beat / beats_per_bar + 1e-9) + 1
        elif position == 0:
            self.bar += 1
        self.position = position

    @property
    def beat_in_bar(self) -> int:
        return self.position // self.steps_per_quarter + 1
