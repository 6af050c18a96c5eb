"""The live engine: the control loop of `cadenza live`, whatever the mode.

Threads, each with one job: rtmidi's input callback only timestamps and enqueues (ports.py);
this control loop reads the input, follows the clock, the knobs and the ports, and polls the
mode that plays (call_response.py, backing_mode.py; modes.py picks it); the scheduler sends each
message at its deadline and knows every sounding note (scheduler.py). Whatever way the engine
stops, `close()` ends every note it started.
"""

from __future__ import annotations

import sys
import threading
import time

from cadenza.midi_status import (
    CONTROL_CHANGE,
    NOTE_OFF,
    NOTE_ON,
    PROGRAM_CHANGE,
    SUSTAIN_PEDAL,
    SYSTEM,
    channel_of,
    is_channel_message,
    kind_of,
    well_formed,
)
from cadenza.plugins.base import Generator
from cadenza.realtime.clock import BeatGrid
from cadenza.realtime.config import LiveConfig
from cadenza.realtime.controls import ControlSurface
from cadenza.realtime.mode import EngineStats, LiveMode
from cadenza.realtime.modes import mode_for
from cadenza.realtime.note_state import NoteState
from cadenza.realtime.ports import MidiInput, MidiOutput
from cadenza.realtime.priority import (
    CONTROL,
    midi_system_realtime,
    ordinary_priority,
    raise_priority,
)
from cadenza.realtime.redelivery import RedeliveryFilter
from cadenza.realtime.scheduler import Output, Scheduler
from cadenza.realtime.session_record import PlayerEcho, RecordingOutput, SessionRecorder
from cadenza.realtime.timeline import Timeline

PORT_CHECK_PERIOD = 1.0  # seconds between looks at a lost input port
SWITCH_INTERVAL = 0.0002  # seconds a thread may hold the GIL while another waits
PLAYED_KINDS = (NOTE_ON, NOTE_OFF, CONTROL_CHANGE)  # what a mode hears of the player


class LiveEngine:
    def __init__(
        self, config: LiveConfig, generator: Generator, midi_in: MidiInput, midi_out: MidiOutput
    ):
        self.config = config
        # The knobs' starting values, set here and not in start(): a key or a CC turned while
        # the engine starts must not be overwritten by them.
        for knob in ("temperature", "top_k", "top_p", "max_voices"):
            value = getattr(config, knob)
            if value is not None:  # else the bundle's own (its manifest's sampling)
                setattr(generator.knobs, knob, value)
        self.midi_in = midi_in
        self.midi_out = midi_out
        self.stats = EngineStats()
        self.channel = config.output_channel_index
        self.synth = None
        output: Output = midi_out
        if config.synth:  # for someone without a DAW: a General MIDI SoundFont on the sound card
            # Imported here: tinysoundfont and PortAudio load only for --synth.
            from cadenza.realtime.synth import SynthOutput, TeeOutput

            self.synth = SynthOutput(config.soundfont)
            output = TeeOutput(midi_out, self.synth)
        # The set is recorded from what the scheduler sends (--record, or the `r` key).
        self.recorder = SessionRecorder(config.record, generated_voices(config, generator))
        # Real-time threads where the MIDI system's own are (ports are open: its threads run).
        self.wants_realtime = config.realtime and midi_system_realtime()
        self.scheduler = Scheduler(RecordingOutput(output, self.recorder),
                                   priority=CONTROL if self.wants_realtime else None)
        mode_class = mode_for(generator, config)
        self.timeline = Timeline(config, clock_pulses=mode_class.clock_pulses)
        self.mode: LiveMode = mode_class(config, generator, self.scheduler, self.timeline,
                                         self.stats, self.fail)
        self.controls = ControlSurface(config.cc, self.mode, seed=config.seed,
                                       panic_output=self.scheduler.panic, stop=self.stop,
                                       record=self.recorder.toggle)
        self.stop_requested = threading.Event()
        self._next_port_check = 0.0
        self._switch_interval = sys.getswitchinterval()
        self.realtime = False  # the control thread got real-time scheduling (start)
        self.redelivered = RedeliveryFilter()  # input delivered twice (control thread)
        self.passed = NoteState()  # the player's notes and pedal passed through (control thread)

    @property
    def generator(self) -> Generator:
        """The generator playing now (the `n` key may have switched it)."""
        return self.mode.generator

    def current_grid(self) -> BeatGrid:
        return self.timeline.current()

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        # Python hands the GIL between threads every 5 ms by default: the input callback
        # would wait that long to timestamp a message while another thread computes.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        # The control thread (this one) runs when a phrase ends, whatever else is busy.
        self.realtime = self.wants_realtime and raise_priority(CONTROL)
        self.timeline.start(self.scheduler)
        self.recorder.poll(time.perf_counter(), self.timeline.current)  # --record: from here
        if self.config.program is not None:
            self.scheduler.schedule(
                time.perf_counter(), [PROGRAM_CHANGE | self.channel, self.config.program]
            )
        self.mode.start()

    def run(self) -> None:
        """The control loop, until stop() or a fatal error; always ends every note (a failure
        in start() included)."""
        try:
            self.start()
            while not self.stop_requested.is_set():
                self.step(time.perf_counter())
                # Woken early by the player's input: a listening backing answers it at once.
                self.midi_in.wait(self.mode.pause(time.perf_counter()))
                if self.stats.error is not None:
                    break
        finally:
            self.close()

    def stop(self) -> None:
        self.stop_requested.set()

    def close(self) -> None:
        """End everything: no pending message is sent, every sounding note gets its note-off."""
        self.mode.close()
        self.scheduler.cancel()
        self.scheduler.panic()
        self.timeline.stop(self.scheduler)
        self.scheduler.stop()
        self.recorder.close()  # after the last note-off: every note ends in the file too
        sys.setswitchinterval(self._switch_interval)
        if self.realtime:
            ordinary_priority()

    def close_ports(self) -> None:
        self.midi_in.close()
        self.midi_out.close()
        if self.synth is not None:
            self.synth.close()

    def fail(self, error: BaseException) -> None:
        """The generator failed (on any thread): the engine stops, and says why."""
        self.stats.error = f"generator failed: {type(error).__name__}: {error}"
        self.stop_requested.set()

    # --- the control step -------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Input messages dropped: malformed, delivered twice, over the port's queue, or
        coalesced away."""
        return (self.stats.malformed + self.redelivered.dropped
                + getattr(self.midi_in, "dropped", 0)
                + getattr(self.mode, "dropped", 0))

    def step(self, now: float) -> None:
        # The one place input enters the engine: a message is well formed or it is dropped
        # (raw-byte backends such as JACK and CoreMIDI pass any bytes).
        for t, raw in self.midi_in.drain():
            if not well_formed(raw):
                self.stats.malformed += 1
            elif not self.redelivered.is_repeat(t, raw):
                self.on_message(t, list(raw))
        try:
            self.mode.poll(now)
        except Exception as error:  # close() ends every note; the error is reported
            self.fail(error)
        if now >= self._next_port_check:
            self._check_input(now)
        self.timeline.send_clock(now, self.scheduler)
        self.recorder.poll(now, self.timeline.current)
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
            self._release_passed(now)
            self.mode.input_lost()
        if self.midi_in.reconnect_if_back():
            self.stats.input_lost = False
            self.stats.reconnects += 1

    def on_message(self, t: float, message: list[int]) -> None:
        if message and message[0] >= SYSTEM:
            if self.timeline.feed(t, message):
                self.mode.transport(t, message[0])
            return
        if not is_channel_message(message):
            return
        wanted = self.config.input_channel_index
        if wanted is not None and channel_of(message) != wanted:
            return
        kind = kind_of(message)
        if kind == CONTROL_CHANGE and self.controls.control_change(t, message[1], message[2]):
            return
        if kind not in PLAYED_KINDS:
            return
        self.recorder.player(t, message)
        if self.config.passthrough:
            passed = PlayerEcho([kind | self.channel, *message[1:]])
            self.passed.apply(passed)
            self.scheduler.schedule(t, passed)
        self.mode.player(t, message)

    def _release_passed(self, now: float) -> None:
        """The input is gone, and with it the note-offs of the keys held on it: end the
        player's passed-through notes and lift its pedal."""
        passed, self.passed = self.passed, NoteState()
        offs = [(now, PlayerEcho([NOTE_OFF | channel, pitch, 0]))
                for (channel, pitch), count in passed.notes.items() for _ in range(count)]
        offs += [(now, PlayerEcho([CONTROL_CHANGE | channel, SUSTAIN_PEDAL, 0]))
                 for channel in passed.pedals]
        if offs:
            self.scheduler.schedule_many(offs)


def generated_voices(config: LiveConfig, generator: Generator) -> dict[int, str]:
    """The channels (0..15) the generator plays on, each with its track name in a recording:
    the answers' channel, or each backing part's."""
    if config.mode != "backing":
        return {config.output_channel_index: "answers"}
    parts = generator.parts
    channels = config.backing_channel_indices(parts.parts)
    return dict(zip(channels, parts.names, strict=True))
