"""Backing mode (`--mode backing`): backing parts played along the beat grid with the player.

The backing loop (backing.py) does the work: a step of the model every grid step, the player's
notes of it heard first where the bundle listens. This mode drives it from the control thread
(the performer thread is not started): it hands it the player's notes, follows a DAW's
transport (Start plays from bar 1, Continue from the song position, Stop ends every backing
note) and sends each part's program on its channel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from cadenza.midi_status import CONTINUE, PROGRAM_CHANGE, SONG_POSITION, START, STOP
from cadenza.plugins.base import Generator
from cadenza.realtime.backing import BackingLoop
from cadenza.realtime.clock import PPQN
from cadenza.realtime.config import AnswerLength, LiveConfig
from cadenza.realtime.controls import DENSITY_RANGE, MAX_LOOP_BARS, clamp
from cadenza.realtime.mode import EngineStats, makes_performance_events, plays_backing_parts
from cadenza.realtime.offset import offset_seconds, shifted
from cadenza.realtime.scheduler import Scheduler
from cadenza.realtime.timeline import Timeline

IDLE_POLL = 0.005  # seconds between looks at the input while no step is due sooner
STOPPED_POLL = 0.001  # stopped: a DAW's Start may come a pulse before its downbeat


class BackingMode:
    """The LiveMode of `--mode backing`. `backing` is its BackingLoop."""

    clock_pulses = PPQN  # a backing plays on the clock's grid from its first notes: a beat of
    # pulses first (the line through six would put them a few ms off)

    def __init__(self, config: LiveConfig, generator: Generator, scheduler: Scheduler,
                 timeline: Timeline, stats: EngineStats,
                 on_error: Callable[[BaseException], None]):
        self.config = config
        self.generator = generator
        self.scheduler = scheduler
        self.timeline = timeline
        self.stats = stats
        self.on_error = on_error
        self.style = generator.style  # open_engine set it from config.style
        # The knobs' starting values, set here and not in start(): a key or a CC turned while
        # the engine starts must not be overwritten by them.
        generator.density = config.density
        if config.harmony is not None:
            generator.harmony = config.harmony
        parts = generator.parts.parts
        self.backing = BackingLoop(
            generator,
            scheduler,
            # --offset-ms moves the grid the backing plays on: it plans that much earlier too.
            shifted(timeline.transport_grid, offset_seconds(config)),
            channels=config.backing_channel_indices(parts),
            velocities=config.backing_velocities(parts),
            steps_per_quarter=generator.parts.steps_per_quarter,
            loop_bars=config.loop_bars,
            listen=config.listen_ms / 1000,
        )
        self._due: float | None = None  # when the backing loop is next due
        self._link_playing: bool | None = None  # a Link session's transport, as last seen

    @staticmethod
    def plays(generator: Generator) -> bool:
        """A generator of backing parts."""
        return makes_performance_events(generator) and plays_backing_parts(generator)

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._send_programs()
        if not self.timeline.following_clock:  # else the DAW's Start or Continue starts it
            self.backing.start(0.0 if self.timeline.link is None else None)

    def close(self) -> None:
        pass  # no thread of its own: the engine's close() ends every backing note

    def _send_programs(self) -> None:
        """Each backing part's program on its channel (the bundle's, or the player's choice)."""
        programs = self.config.backing_program_list(self.generator.programs,
                                                    self.generator.parts.names)
        now = time.perf_counter()
        self.scheduler.schedule_many(
            (now, [PROGRAM_CHANGE | channel, program])
            for channel, program in zip(self.backing.channels, programs, strict=True)
        )

    # --- input ------------------------------------------------------------------------------
    def player(self, t: float, message: Sequence[int]) -> None:
        self.backing.player(t, message)

    def transport(self, t: float, status: int) -> None:
        """The DAW's Start plays the backing from bar 1, Continue from the song position, Stop
        ends every backing note at once. Start and Continue send each part's program again: a
        DAW track or synth connected since Cadenza started has missed the first ones."""
        backing = self.backing
        if status == START:
            self._send_programs()
            backing.start(0.0)
        elif status == CONTINUE:
            self._send_programs()
            backing.start(self.timeline.beat_position(t))
        elif status == STOP:
            backing.stop()
        elif status == SONG_POSITION and self.timeline.clock_running:
            backing.relocate()

    def input_lost(self) -> None:
        pass  # the loop forgets unheard player notes at its next step

    # --- the control step -----------------------------------------------------------------
    def poll(self, now: float) -> None:
        if self.timeline.link is not None:
            self._follow_link(now)
        self._due = self.backing.poll(time.perf_counter())

    def _follow_link(self, now: float) -> None:
        """A Link peer's Stop ends every backing note; its Start plays from the next bar line.
        Only changes are followed: a session nobody starts (or whose peers share no transport)
        is played along with from the start."""
        playing = self.timeline.link.playing
        was, self._link_playing = self._link_playing, playing
        if was is None or playing == was:
            return
        if not playing:
            self.backing.stop()
            return
        grid = self.timeline.current()
        bars = math.ceil(grid.beat_at(now) / grid.beats_per_bar)
        self._send_programs()
        self.backing.start(bars * grid.beats_per_bar)

    def pause(self, now: float) -> float:
        if self._due is None:
            return STOPPED_POLL
        return min(IDLE_POLL, max(0.0, self._due - time.perf_counter()))

    # --- knobs ------------------------------------------------------------------------------
    def set_style(self, style: str | None) -> None:
        self.style = style
        self.backing.set_style(style)

    def turn_bars(self, delta: int) -> None:
        """Bars of the loop."""
        self.backing.set_loop_bars(int(clamp(self.backing.loop_bars + delta, (1, MAX_LOOP_BARS))))

    def set_answer_bars(self, bars: int) -> None:
        self.config.answer_length = AnswerLength("bars", bars)  # kept, though nothing answers

    def turn_silence(self, delta: float) -> None:
        pass  # a backing does not wait for phrases

    def toggle_loop(self) -> None:
        self.backing.toggle_loop()

    def set_density(self, density: float) -> None:
        """The backing's note-on bias (log-odds), from the next step it generates."""
        self.generator.density = round(clamp(density, DENSITY_RANGE), 2)

    def turn_density(self, delta: float) -> None:
        self.set_density(self.generator.density + delta)

    def mutate(self, t: float | None) -> None:
        """Generate the loop's bars afresh."""
        self.backing.mutate()

    def interrupt(self) -> None:
        """Every backing note ends now; the backing plays on from its next step."""
        self.backing.silence()

    def take(self, generator: Generator) -> bool:
        """Another backing bundle, with as many parts as there are channels."""
        if not self.plays(generator):
            return False
        if getattr(getattr(generator, "parts", None), "parts", None) != len(self.backing.channels):
            return False
        generator.knobs = self.generator.knobs
        generator.density = self.generator.density
        generator.harmony = self.generator.harmony
        self.backing.swap(generator)
        self.generator = generator
        self._send_programs()
        return True

    # --- for the player ---------------------------------------------------------------------
    def status(self, late: str) -> str:
        backing = self.backing
        if not backing.running or backing.steps == 0:
            where = "waiting for Start" if self.timeline.following_clock else "starting"
        else:
            where = f"bar {backing.bar}:{backing.beat_in_bar}"
        bpm = backing.bpm  # not backing.grid(): the clock follower is the control thread's
        tempo = f"{bpm:5.1f} bpm" if bpm is not None else "  -   bpm"
        return (
            f"backing | {where:17s} | density {self.generator.density:+.1f} | "
            f"loop {backing.loop_state} | temp {self.generator.knobs.temperature:.2f} | "
            f"{tempo} | {late}"
        )

    def banner(self) -> str:
        names = self.generator.parts.names
        programs = self.config.backing_program_list(self.generator.programs, names)
        parts = ", ".join(f"{name} on {channel + 1} (program {program})" for name, channel,
                          program in zip(names, self.backing.channels, programs, strict=True))
        text = f"; backing parts: {parts}"
        if self.config.follow_clock:
            text += ", from the DAW's Start"
        return text
