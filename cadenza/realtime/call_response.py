"""Call-and-response (and accompany): the player plays a phrase, the generator answers it.

The performer thread (performer.py) owns the generator: the player's notes enter its context
as they are played, and an answer is generated ahead of playback. This mode, on the control
thread, detects where a phrase ends (phrase.py), decides where its answer starts (on the grid
when quantised) and how long it lasts, and stops it when the player comes back. Accompany is
the same performer playing on continuously, the player's notes joining its timeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from cadenza.midi_status import starts_note
from cadenza.plugins.base import Generator
from cadenza.realtime.config import AnswerLength, LiveConfig
from cadenza.realtime.controls import (
    DEFAULT_ANSWER_BARS,
    MAX_ANSWER_BARS,
    SILENCE_KEY_RANGE,
    clamp,
)
from cadenza.realtime.mode import EngineStats, makes_performance_events, plays_backing_parts
from cadenza.realtime.offset import delayed, offset_seconds
from cadenza.realtime.performer import Performer
from cadenza.realtime.phrase import PhraseDetector
from cadenza.realtime.scheduler import Scheduler
from cadenza.realtime.timeline import Timeline

BUSY_POLL, IDLE_POLL = 0.001, 0.005  # seconds between input polls while a phrase may end
SCHEDULING_MARGIN = 0.01  # seconds: the least time between deciding an answer and its start
CONTINUOUS_DELAY = 0.05  # seconds from start() to accompany's first note


class CallResponseMode:
    """The LiveMode of `--mode call-response` and `--mode accompany`."""

    clock_pulses = 6  # a tempo from a quarter beat of a DAW's clock: answers wait for the grid

    def __init__(self, config: LiveConfig, generator: Generator, scheduler: Scheduler,
                 timeline: Timeline, stats: EngineStats,
                 on_error: Callable[[BaseException], None]):
        self.config = config
        self.generator = generator
        self.timeline = timeline
        self.stats = stats
        self.style = generator.style  # open_engine set it from config.style
        self.performer = Performer(
            generator,
            delayed(scheduler.schedule, offset_seconds(config)),  # --offset-ms
            channel=config.output_channel_index,
            lookahead=config.lookahead_seconds,
            seed=config.seed,
            loop=config.loop,
            on_error=on_error,
            unschedule=scheduler,
        )
        self.performer.tempo = lambda: timeline.current().bpm  # a vae quantises the call to it
        # --quantize bar: every answer begins on a downbeat (step 0 of the bar).
        self.performer.bar_step = lambda: 0 if config.quantize_answer_to == "bar" else None
        self.phrases = PhraseDetector(
            silence_seconds=config.silence_seconds,
            silence_beats=config.silence_beats,
            end_cc=config.end_cc,
            channel=config.input_channel_index,
        )
        self._in_phrase = False
        self._last_phrase_seconds = 0.0
        self._heard = 0  # the player's messages handed to the performer
        self._anticipated = False  # this silence's opening was asked for

    @staticmethod
    def plays(generator: Generator) -> bool:
        """A generator of performance events that plays no backing parts."""
        return makes_performance_events(generator) and not plays_backing_parts(generator)

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self.performer.start()
        if self.config.mode == "accompany":
            self.performer.continuous(time.perf_counter() + CONTINUOUS_DELAY)

    def close(self) -> None:
        self.performer.close()
        if self.performer.is_alive():
            self.performer.join(timeout=2.0)

    # --- input ------------------------------------------------------------------------------
    def player(self, t: float, message: Sequence[int]) -> None:
        message = list(message)
        if self.config.mode == "call-response" and starts_note(message) and not self._in_phrase:
            if self.performer.busy and self.config.on_interrupt == "stop":
                self.interrupt()
            self.performer.new_phrase()
            self._in_phrase = True
        self.phrases.feed(t, message)
        self.performer.player(t, message)
        self._heard += 1
        self._anticipated = False

    def transport(self, t: float, status: int) -> None:
        pass  # answers follow the clock's grid, not its transport

    def input_lost(self) -> None:
        self.phrases.reset()
        self._in_phrase = False

    @property
    def dropped(self) -> int:
        """The player's messages a flood coalesced away before the generator heard them."""
        return self.performer.dropped

    # --- the control step -----------------------------------------------------------------
    def poll(self, now: float) -> None:
        if self.config.mode != "call-response" or not self._in_phrase:
            return
        grid = self.timeline.current()
        phrase = self.phrases.poll(time.perf_counter(), grid)
        if phrase is not None:
            self._in_phrase = False
            self._answer(phrase.detected_at, phrase.duration)
        elif not self._anticipated and self.phrases.silence_ends_at(grid) is not None:
            # The player let go: the answer's opening is made during the silence, so that
            # the first note waits for neither the model nor a thread when the phrase ends.
            self.performer.anticipate(self._heard)
            self._anticipated = True

    def pause(self, now: float) -> float:
        """Until the next look at the input: woken by input anyway, so at most BUSY_POLL
        while a phrase may end, and exactly until the moment the silence would end it."""
        if not (self.phrases.sounding or self._in_phrase):
            return IDLE_POLL
        ends = self.phrases.silence_ends_at(self.timeline.current())
        return BUSY_POLL if ends is None else min(BUSY_POLL, max(0.0, ends - now))

    def _answer_start(self, detected_at: float) -> float:
        quantize = self.config.quantize_answer_to
        if quantize == "none":
            return detected_at
        grid = self.timeline.current()
        division = grid.beats_per_bar if quantize == "bar" else 1
        # A beat that will have passed before the first note can be scheduled is no start:
        # on a busy machine the detection is handled late, and the answer would land off-grid.
        earliest = max(detected_at, time.perf_counter() + SCHEDULING_MARGIN)
        return grid.next_beat(earliest, division)

    def _answer(self, detected_at: float, call_seconds: float) -> None:
        handled = time.perf_counter()
        start = max(self._answer_start(detected_at), handled)
        seconds = self.config.answer_length.seconds(call_seconds, self.timeline.current())
        self._last_phrase_seconds = call_seconds
        self.performer.play_opening(self._heard, start, seconds)
        self.performer.answer(start, seconds)
        self.stats.phrases += 1
        self.stats.answers += 1
        self.stats.detected_at.append(detected_at)
        self.stats.handled_at.append(handled)
        self.stats.detect_to_start.append(start - detected_at)

    # --- knobs ------------------------------------------------------------------------------
    def set_style(self, style: str | None) -> None:
        self.style = style
        self.performer.set_style(style)

    def turn_bars(self, delta: int) -> None:
        current = self.config.answer_length
        bars = int(current.amount) if current.unit == "bars" else DEFAULT_ANSWER_BARS
        self.set_answer_bars(int(clamp(bars + delta, (1, MAX_ANSWER_BARS))))

    def set_answer_bars(self, bars: int) -> None:
        self.config.answer_length = AnswerLength("bars", bars)

    def turn_silence(self, delta: float) -> None:
        seconds = self.phrases.silence_seconds or self.config.silence_seconds
        self.phrases.silence_seconds = round(clamp(seconds + delta, SILENCE_KEY_RANGE), 2)
        self.phrases.silence_beats = None

    def toggle_loop(self) -> None:
        self.performer.loop = not self.performer.loop

    def set_density(self, density: float) -> None:
        pass  # a backing's knob

    def turn_density(self, delta: float) -> None:
        pass  # a backing's knob

    def mutate(self, t: float | None) -> None:
        """Answer the last call again, differently (now, or from time `t`)."""
        if self.stats.phrases == 0:
            return
        t = time.perf_counter() if t is None else t
        self.interrupt()
        start = self._answer_start(t)
        seconds = self.config.answer_length.seconds(self._last_phrase_seconds,
                                                    self.timeline.current())
        self.performer.mutate(start, seconds)
        self.stats.answers += 1

    def interrupt(self) -> None:
        """Stop the answer now: nothing more of it is sent, its sounding notes end."""
        self.performer.silence()

    def take(self, generator: Generator) -> bool:
        if not self.plays(generator):
            return False
        generator.knobs = self.generator.knobs
        if self.style in generator.styles:
            generator.set_style(self.style)
        self.interrupt()
        self.performer.swap(generator)
        self.generator = generator
        return True

    # --- for the player ---------------------------------------------------------------------
    def status(self, late: str) -> str:
        state = "answering" if self.performer.busy else "listening"
        if self.phrases.playing:
            state = "hearing you"
        tempo = self.timeline.current().bpm
        style = f" ({self.style})" if self.style else ""
        return (
            f"{state:11s} | temp {self.generator.knobs.temperature:.2f} | "
            f"voices {self.generator.knobs.max_voices or 'all'} | {tempo:5.1f} bpm | "
            f"{self.generator.bundle.name}{style} | phrases {self.stats.phrases} | {late}"
        )

    def banner(self) -> str:
        return ""
