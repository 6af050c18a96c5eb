"""The backing loop of `cadenza live --mode backing`: a backing generator stepped along the beat
grid, its note changes sent at the grid's deadlines, the player's notes heard step by step
(player_notes.py); a bundle that puts the player first listens for them (backing_listen.py).

Timing. Step n sounds at its grid point, read off the current BeatGrid each time (origin +
k x step seconds: the DAW clock's fitted line, Link's timeline or the internal tempo), never by
adding step lengths: nothing drifts however long it plays, and a tempo change or a new clock
estimate moves the next step at once.

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
from collections.abc import Callable, Sequence

from cadenza.midi_status import NOTE_OFF, NOTE_ON
from cadenza.realtime.backing_listen import LATE_MARGIN, LISTEN_ABOVE, ListenThenPlay
from cadenza.realtime.backing_record import DEFAULT_LOOP_BARS, LoopRecord, seam
from cadenza.realtime.backing_types import Anticipated, BackingGenerator, Change, Note, Output
from cadenza.realtime.clock import BeatGrid
from cadenza.realtime.player_notes import MAX_PLAYER_NOTES as MAX_PLAYER_NOTES  # re-exported
from cadenza.realtime.player_notes import PlayerNotes

ARMED_MARGIN = 0.001  # seconds: an armed downbeat due sooner than this is generated again


class BackingLoop(ListenThenPlay):
    """The loop; its listening steps (listen, then play) are ListenThenPlay's."""

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
        self._player = PlayerNotes()  # what the model has not heard yet
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
        if self.running:
            self._player.add(t, message)

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
                due = self._listen(now, grid.beats_per_bar * self.steps_per_quarter)
                if due is not None:
                    return due
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
        self.generator.hear(*self._player.take(boundary))

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
