"""The live engine: the control loop of `cadenza live`.

Threads, each with one job: rtmidi's input callback only timestamps and enqueues (ports.py);
this control loop reads the input, detects phrases, follows the clock and the knobs; the
performer generates ahead of playback (performer.py); the scheduler sends each message at
its deadline and knows every sounding note (scheduler.py). Whatever way the engine stops,
`close()` ends every note it started.

In backing mode the control loop also drives the backing loop (backing.py): a step of model
work every grid step, half a step ahead, with the player's notes and the DAW's transport read
on the same thread just before; the performer thread is not started.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field

from cadenza.errors import CadenzaError
from cadenza.plugins.base import Generator
from cadenza.realtime.backing import BackingLoop
from cadenza.realtime.clock import (
    CLOCK,
    CONTINUE,
    PPQN,
    SONG_POSITION,
    START,
    STOP,
    BeatGrid,
    ClockFollower,
    ClockSender,
)
from cadenza.realtime.config import (
    DENSITY_RANGE,
    MAX_LOOP_BARS,
    AnswerLength,
    LiveConfig,
    answer_bars_from_cc,
    density_from_cc,
    style_from_cc,
    temperature_from_cc,
)
from cadenza.realtime.link import LinkFollower
from cadenza.realtime.performer import Performer
from cadenza.realtime.phrase import PhraseDetector
from cadenza.realtime.ports import MidiInput, MidiOutput
from cadenza.realtime.scheduler import Scheduler

NOTE_OFF, NOTE_ON, CONTROL, PROGRAM = 0x80, 0x90, 0xB0, 0xC0
SYSTEM = 0xF0
BUSY_POLL, IDLE_POLL = 0.001, 0.005  # seconds between input polls while a phrase may end
PORT_CHECK_PERIOD = 1.0  # seconds between looks at a lost input port
CLOCK_AHEAD = 0.25  # seconds of MIDI clock pulses kept scheduled
SWITCH_INTERVAL = 0.0002  # seconds a thread may hold the GIL while another waits
SCHEDULING_MARGIN = 0.01  # seconds: the least time between deciding an answer and its start
START_DELAY = 0.05  # seconds from start() to beat 0 of the internal grid


@dataclass
class EngineStats:
    """Figures for the status line and the benchmarks (written by the control thread)."""

    phrases: int = 0
    answers: int = 0
    detected_at: list[float] = field(default_factory=list)  # perf_counter of each phrase end
    detect_to_start: list[float] = field(default_factory=list)  # answer start - detection
    error: str | None = None
    input_lost: bool = False
    reconnects: int = 0


class LiveEngine:
    def __init__(
        self, config: LiveConfig, generator: Generator, midi_in: MidiInput, midi_out: MidiOutput
    ):
        self.config = config
        self.generator = generator
        # The knobs' starting values, set here and not in start(): a key or a CC turned while
        # the engine starts must not be overwritten by them.
        generator.knobs.temperature = config.temperature
        generator.knobs.top_k = config.top_k
        generator.knobs.top_p = config.top_p
        if config.mode == "backing":
            generator.density = config.density
            if config.harmony is not None:
                generator.harmony = config.harmony
        self.midi_in = midi_in
        self.midi_out = midi_out
        self.stats = EngineStats()
        self.channel = config.output_channel_index
        self.style = generator.style  # open_engine set it from config.style
        self.synth = None
        output = midi_out
        if config.synth:  # for someone without a DAW: a General MIDI SoundFont on the sound card
            from cadenza.realtime.synth import SynthOutput, TeeOutput

            self.synth = SynthOutput(config.soundfont)
            output = TeeOutput(midi_out, self.synth)
        self.scheduler = Scheduler(output)
        self.performer = Performer(
            generator,
            self.scheduler.schedule,
            channel=self.channel,
            lookahead=config.lookahead_seconds,
            seed=config.seed,
            loop=config.loop,
            on_error=self._performer_failed,
        )
        self.phrases = PhraseDetector(
            silence_seconds=config.silence_seconds,
            silence_beats=config.silence_beats,
            end_cc=config.end_cc,
            channel=config.input_channel_index,
        )
        backing = config.mode == "backing"
        # A backing plays on the clock's grid from its first notes: it waits for a beat of
        # pulses (the line through six would put them a few ms off).
        pulses = PPQN if backing else 6
        self.clock = ClockFollower(min_pulses=pulses) if config.follow_clock else None
        self.link = LinkFollower(config.bpm, config.beats_per_bar) if config.link else None
        self.grid = BeatGrid(config.bpm, time.perf_counter(), config.beats_per_bar)
        self.backing = self._backing_loop() if backing else None
        self._backing_due: float | None = None
        self.performer.tempo = lambda: self.current_grid().bpm  # a vae quantises the call to it
        self.clock_sender = ClockSender(self.grid) if config.send_clock else None
        self.stop_requested = threading.Event()
        self._next_port_check = 0.0
        self._switch_interval = sys.getswitchinterval()
        self._in_phrase = False
        self._last_phrase_seconds = 0.0

    def _backing_loop(self) -> BackingLoop:
        parts = self.generator.parts.parts
        clock = self.clock
        if clock is not None:  # the DAW's grid, or none while it is stopped
            beats_per_bar = self.config.beats_per_bar
            grid = lambda: clock.grid(beats_per_bar)  # noqa: E731
        else:
            grid = self.current_grid
        return BackingLoop(
            self.generator,
            self.scheduler,
            grid,
            channels=self.config.backing_channel_indices(parts),
            velocities=self.config.backing_velocities(parts),
            steps_per_quarter=self.generator.parts.steps_per_quarter,
            loop_bars=self.config.loop_bars,
            listen=self.config.listen_ms / 1000,
        )

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        # Python hands the GIL between threads every 5 ms by default: the input callback
        # would wait that long to timestamp a message while another thread computes.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        # The internal grid starts with the engine: a backing's first step is its beat 0.
        self.grid = BeatGrid(self.config.bpm, time.perf_counter() + START_DELAY,
                             self.config.beats_per_bar)
        if self.clock_sender is not None:
            self.clock_sender.grid = self.grid
        if self.config.program is not None:
            self.scheduler.schedule(
                time.perf_counter(), [PROGRAM | self.channel, self.config.program]
            )
        if self.clock_sender is not None:
            first = self.grid.next_beat(time.perf_counter() + 0.05)
            for message in self.clock_sender.start_messages():
                self.scheduler.schedule(first - 0.001, message)
            self._pulses = self.clock_sender.deadlines(first)
            self._next_pulse = next(self._pulses)
        if self.backing is not None:
            self._send_programs()
            if self.clock is None:  # else the DAW's Start or Continue starts it
                self.backing.start(0.0 if self.link is None else None)
            return
        self.performer.start()
        if self.config.mode == "accompany":
            self.performer.continuous(time.perf_counter() + 0.05)

    def _send_programs(self) -> None:
        """Each backing part's program on its channel (the bundle's, or the player's choice)."""
        programs = self.config.backing_program_list(self.generator.programs)
        now = time.perf_counter()
        self.scheduler.schedule_many(
            (now, [PROGRAM | channel, program])
            for channel, program in zip(self.backing.channels, programs, strict=True)
        )

    def run(self) -> None:
        """The control loop, until stop() or a fatal error; always ends every note."""
        self.start()
        try:
            while not self.stop_requested.is_set():
                self.step(time.perf_counter())
                # Woken early by the player's input: a listening backing answers it at once.
                self.midi_in.wait(self._pause())
                if self.stats.error is not None:
                    break
        finally:
            self.close()

    def _pause(self) -> float:
        """Seconds until the control loop is next needed."""
        if self.backing is not None:
            due = self._backing_due
            if due is None:  # stopped: a DAW's Start may come a pulse before its downbeat
                return BUSY_POLL
            return min(IDLE_POLL, max(0.0, due - time.perf_counter()))
        busy = self.phrases.sounding or self._in_phrase
        return BUSY_POLL if busy else IDLE_POLL

    def stop(self) -> None:
        self.stop_requested.set()

    def close(self) -> None:
        """End everything: no pending message is sent, every sounding note gets its note-off."""
        self.performer.close()
        if self.performer.is_alive():
            self.performer.join(timeout=2.0)
        self.scheduler.cancel()
        self.scheduler.panic()
        if self.clock_sender is not None:
            self.scheduler.schedule(time.perf_counter(), [STOP])
            time.sleep(0.005)  # let the scheduler send it before it stops
        self.scheduler.stop()
        if self.link is not None:
            self.link.close()
        sys.setswitchinterval(self._switch_interval)

    def close_ports(self) -> None:
        self.midi_in.close()
        self.midi_out.close()
        if self.synth is not None:
            self.synth.close()

    def _performer_failed(self, error: BaseException) -> None:
        self.stats.error = f"generator failed: {type(error).__name__}: {error}"
        self.stop_requested.set()

    # --- the control step -------------------------------------------------------------------
    def step(self, now: float) -> None:
        for t, raw in self.midi_in.drain():
            self.on_message(t, list(raw))
        if self.backing is not None:
            try:
                self._backing_due = self.backing.poll(time.perf_counter())
            except Exception as error:  # close() ends every note; the error is reported
                self._performer_failed(error)
        if self.config.mode == "call-response" and self._in_phrase:
            phrase = self.phrases.poll(time.perf_counter(), self.current_grid())
            if phrase is not None:
                self._in_phrase = False
                self._answer(phrase.detected_at, phrase.duration)
        if now >= self._next_port_check:
            self._check_input(now)
        if self.clock_sender is not None:
            self._send_clock(now)
        if self.scheduler.port_error.is_set() or not self.midi_out.is_alive():
            self.stats.error = f"output port {self.midi_out.name} was lost"
            self.stop_requested.set()

    def _check_input(self, now: float) -> None:
        """A lost input port does not stop the engine: it says so, and reconnects when the
        port is back (a USB cable pulled and plugged in again)."""
        self._next_port_check = now + PORT_CHECK_PERIOD
        if self.midi_in.is_alive():
            return
        if not self.stats.input_lost:
            self.stats.input_lost = True
            self.phrases.reset()  # keys held on a lost keyboard will never be released
            self._in_phrase = False
        if self.midi_in.reconnect_if_back():
            self.stats.input_lost = False
            self.stats.reconnects += 1

    def _send_clock(self, now: float) -> None:
        """MIDI clock for whoever follows us: keep the next pulses scheduled."""
        while self._next_pulse < now + CLOCK_AHEAD:
            self.scheduler.schedule(self._next_pulse, [CLOCK])
            self._next_pulse = next(self._pulses)

    def current_grid(self) -> BeatGrid:
        if self.link is not None:
            return self.link.grid()
        if self.clock is not None:
            grid = self.clock.grid(self.config.beats_per_bar)
            if grid is not None:
                return grid
        return self.grid

    def on_message(self, t: float, message: list[int]) -> None:
        status = message[0]
        if status >= SYSTEM:
            if self.clock is not None:
                self.clock.feed(t, message)
                if self.backing is not None:
                    self._follow_transport(t, status)
            return
        channel, kind = status & 0x0F, status & 0xF0
        wanted = self.config.input_channel_index
        if wanted is not None and channel != wanted:
            return
        if kind == CONTROL and self._knob(t, message[1], message[2]):
            return
        if kind not in (NOTE_ON, NOTE_OFF, CONTROL):
            return
        if self.config.passthrough:
            self.scheduler.schedule(t, [kind | self.channel, *message[1:]])
        if self.backing is not None:
            self.backing.player(t, message)
            return
        starts_note = kind == NOTE_ON and message[2] > 0
        if self.config.mode == "call-response" and starts_note and not self._in_phrase:
            if self.performer.busy and self.config.on_interrupt == "stop":
                self.interrupt()
            self.performer.new_phrase()
            self._in_phrase = True
        self.phrases.feed(t, message)
        self.performer.player(t, message)

    def _follow_transport(self, t: float, status: int) -> None:
        """The DAW's Start plays the backing from bar 1, Continue from the song position, Stop
        ends every backing note at once. Start and Continue send each part's program again: a
        DAW track or synth connected since Cadenza started has missed the first ones."""
        backing, clock = self.backing, self.clock
        if status == START:
            self._send_programs()
            backing.start(0.0)
        elif status == CONTINUE:
            self._send_programs()
            backing.start(clock.beat_position(t))
        elif status == STOP:
            backing.stop()
        elif status == SONG_POSITION and clock.running:
            backing.relocate()

    def _knob(self, t: float, number: int, value: int) -> bool:
        """A mapped CC turns a knob; True when the message was a knob."""
        cc = self.config.cc
        if number == cc.temperature:
            self.generator.knobs.temperature = temperature_from_cc(value)
        elif number == cc.answer_length:
            self.config.answer_length = AnswerLength("bars", answer_bars_from_cc(value))
        elif number == cc.style:
            self.set_style(style_from_cc(value, self.styles))
        elif number == cc.panic and value >= 64:
            self.panic()
        elif number == cc.mutate and value >= 64:
            self.mutate(t)
        elif number == cc.density:
            self.set_density(density_from_cc(value))
        elif number == cc.loop and value >= 64:
            self.toggle_loop()
        else:
            return False
        return True

    # --- actions ----------------------------------------------------------------------------
    def _answer_start(self, detected_at: float) -> float:
        quantize = self.config.quantize_answer_to
        if quantize == "none":
            return detected_at
        grid = self.current_grid()
        division = grid.beats_per_bar if quantize == "bar" else 1
        # A beat that will have passed before the first note can be scheduled is no start:
        # on a busy machine the detection is handled late, and the answer would land off-grid.
        earliest = max(detected_at, time.perf_counter() + SCHEDULING_MARGIN)
        return grid.next_beat(earliest, division)

    def _answer(self, detected_at: float, call_seconds: float) -> None:
        start = max(self._answer_start(detected_at), time.perf_counter())
        seconds = self.config.answer_length.seconds(call_seconds, self.current_grid())
        self._last_phrase_seconds = call_seconds
        self.performer.answer(start, seconds)
        self.stats.phrases += 1
        self.stats.answers += 1
        self.stats.detected_at.append(detected_at)
        self.stats.detect_to_start.append(start - detected_at)

    def mutate(self, t: float | None) -> None:
        """Answer the last call again, differently (now, or from time `t`); in backing mode,
        generate the loop's bars afresh."""
        if self.backing is not None:
            self.backing.mutate()
            return
        if self.stats.phrases == 0:
            return
        t = time.perf_counter() if t is None else t
        self.interrupt()
        start = self._answer_start(t)
        seconds = self.config.answer_length.seconds(self._last_phrase_seconds, self.current_grid())
        self.performer.mutate(start, seconds)
        self.stats.answers += 1

    # --- knobs turned from the terminal (or anything else) -----------------------------------
    def turn_temperature(self, delta: float) -> None:
        knobs = self.generator.knobs
        knobs.temperature = round(min(2.0, max(0.1, knobs.temperature + delta)), 2)

    @property
    def styles(self) -> list[str]:
        return self.generator.styles

    def set_style(self, style: str | None) -> None:
        """Condition the generator on a style from the next event it makes."""
        if style is not None and style not in self.styles:
            return  # a knob, not a command line: an unknown style leaves the knob where it is
        self.style = style
        if self.backing is not None:
            self.backing.set_style(style)
        else:
            self.performer.set_style(style)

    def turn_style(self, delta: int) -> None:
        choices = [None, *self.styles]
        if len(choices) > 1:
            self.set_style(choices[(choices.index(self.style) + delta) % len(choices)])

    def turn_answer_bars(self, delta: int) -> None:
        """Bars of the answer; in backing mode, of the loop."""
        if self.backing is not None:
            bars = self.backing.loop_bars + delta
            self.backing.set_loop_bars(min(MAX_LOOP_BARS, max(1, bars)))
            return
        current = self.config.answer_length
        bars = current.amount if current.unit == "bars" else 2
        self.config.answer_length = AnswerLength("bars", min(16, max(1, int(bars) + delta)))

    def turn_silence(self, delta: float) -> None:
        seconds = self.phrases.silence_seconds or self.config.silence_seconds
        self.phrases.silence_seconds = round(min(8.0, max(0.1, seconds + delta)), 2)
        self.phrases.silence_beats = None

    def toggle_loop(self) -> None:
        if self.backing is not None:
            self.backing.toggle_loop()
        else:
            self.performer.loop = not self.performer.loop

    def set_density(self, density: float) -> None:
        """The backing's note-on bias (log-odds), from the next step it generates."""
        if self.backing is None:
            return
        low, high = DENSITY_RANGE
        self.generator.density = round(min(high, max(low, density)), 2)

    def turn_density(self, delta: float) -> None:
        if self.backing is not None:
            self.set_density(self.generator.density + delta)

    def next_bundle(self) -> None:
        """Switch to the next installed bundle that makes performance events (in backing mode:
        backing parts, as many as there are channels)."""
        from cadenza.bundle import find_bundles
        from cadenza.plugins import load_generator

        candidates = [p for p in find_bundles() if p != self.generator.bundle.path]
        for path in candidates:
            try:
                generator = load_generator(path, seed=self.config.seed)
            except CadenzaError:
                continue
            if self.backing is not None:
                if getattr(getattr(generator, "parts", None), "parts", None) != len(
                    self.backing.channels
                ):
                    continue
                generator.knobs = self.generator.knobs
                generator.density = self.generator.density
                generator.harmony = self.generator.harmony
                self.backing.swap(generator)
                self.generator = generator
                self._send_programs()
                return
            if hasattr(generator, "codec") and not hasattr(generator, "play_step"):
                generator.knobs = self.generator.knobs
                if self.style in generator.styles:
                    generator.set_style(self.style)
                self.interrupt()
                self.performer.swap(generator)
                self.generator = generator
                return

    def interrupt(self) -> None:
        """Stop the answer now: nothing more of it is sent, its sounding notes end (in backing
        mode: every backing note; the backing plays on from its next step)."""
        if self.backing is not None:
            self.backing.silence()
            return
        with self.performer.lock:
            self.performer.stop_answer()
            self.scheduler.cancel()
            self.scheduler.release_all()

    def panic(self) -> None:
        self.interrupt()
        self.scheduler.panic()
