"""Sound without a DAW: MIDI messages played through a General MIDI SoundFont on the sound card.

Two parties, one job each:
- send() (the scheduler's thread) applies a message to the tinysoundfont synth under a lock;
- a RingPlayer (cadenza.realtime.audio_out) plays it: its producer thread renders one block
  at a time under the same lock, `buffer_blocks` blocks ahead of the card, and its PortAudio
  callback only copies from the ring (an underrun plays silence and is counted).
A note therefore sounds at most `buffer_blocks * block` frames after send(), plus the card's
own buffer.

tinysoundfont has no sustain pedal, so CC 64 is applied here: while it is down, note-offs on
its channel wait for the pedal to lift (a key struck again ends its held note first, as
cadenza.realtime.stream's encoder does).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from cadenza.midi_status import (
    ALL_NOTES_OFF,
    ALL_SOUND_OFF,
    CONTROL_CHANGE,
    DRUM_CHANNEL,
    PITCH_BEND,
    PROGRAM_CHANGE,
    RESET_CONTROLLERS,
    SUSTAIN_PEDAL,
    SWITCH_ON,
    channel_of,
    ends_note,
    is_channel_message,
    kind_of,
    starts_note,
)
from cadenza.realtime.audio_out import RingFigures, RingPlayer
from cadenza.realtime.midi_io import PortClosedError
from cadenza.render import find_soundfont, load_synth


class SynthOutput(RingFigures):
    """An Output (see cadenza.realtime.scheduler) that plays on the sound card.

    `device`: a PortAudio device index or part of its name (None: the default output);
    `sample_rate`: None takes the device's (a JACK server's own rate); `block`: frames
    rendered at a time; `buffer_blocks`: how many blocks are kept ready ahead of the card.
    """

    def __init__(self, soundfont: str | None = None, *, device: str | int | None = None,
                 sample_rate: int | None = None, block: int = 128, buffer_blocks: int = 4):
        if block < 1 or buffer_blocks < 1:
            raise ValueError(f"block and buffer_blocks must be >= 1, got {block}, {buffer_blocks}")
        path = find_soundfont(soundfont)
        self._ring = RingPlayer(device=device, sample_rate=sample_rate, block=block,
                                name="cadenza-synth")
        self.device = self._ring.device
        self.sample_rate = self._ring.sample_rate
        self.block = block
        self.buffer_blocks = buffer_blocks
        self.name = f"synth: {path.name}"
        self.soundfont = path
        self._synth = load_synth(path, self.sample_rate)
        self._lock = threading.Lock()  # guards the synth: send() and the render thread
        self._pedal = [False] * 16
        self._held: list[list[int]] = [[] for _ in range(16)]  # keys released under the pedal
        self._closed = False
        self._ring.start(self._render, buffer_blocks * block)

    # ----- the Output protocol -----

    def send(self, message: Sequence[int]) -> None:
        """Apply one MIDI message to the synth; it sounds from the next rendered block."""
        with self._lock:
            if self._closed:
                raise PortClosedError(f"{self.name} is closed")
            self._apply_locked(message)

    def is_alive(self) -> bool:
        return not self._closed and self._ring.is_alive()

    def close(self) -> None:
        """Stop the sound card stream and the render thread; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._ring.close()

    def __enter__(self) -> SynthOutput:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SynthOutput {self.name!r} on {self.device} at {self.sample_rate} Hz>"

    # ----- figures (RingFigures has the ring's) -----

    @property
    def frames_rendered(self) -> int:
        return self._ring.frames_filled

    def _render(self, frames: np.ndarray) -> int:
        """The ring's fill function (its producer thread): one block under the synth's lock."""
        with self._lock:
            self._synth.generate(len(frames), buffer=memoryview(frames).cast("B"))
        return len(frames)

    # ----- MIDI -----

    def _apply_locked(self, message: Sequence[int]) -> None:
        if not is_channel_message(message):
            return  # system messages (clock, start, stop) and running status are not for us
        kind, channel, synth = kind_of(message), channel_of(message), self._synth
        if kind == PROGRAM_CHANGE:
            try:
                synth.program_change(channel, message[1] & 0x7F, is_drums=channel == DRUM_CHANNEL)
            except RuntimeError:
                pass  # no such program in this SoundFont: keep the one there is
            return
        if len(message) < 3:
            return
        data1, data2 = message[1] & 0x7F, message[2] & 0x7F
        if starts_note(message):
            held = self._held[channel]
            if data1 in held:  # struck again under the pedal: the held note ends first
                held.remove(data1)
                synth.noteoff(channel, data1)
            synth.noteon(channel, data1, data2)
        elif ends_note(message):
            if self._pedal[channel]:
                self._held[channel].append(data1)
            else:
                synth.noteoff(channel, data1)
        elif kind == CONTROL_CHANGE:
            if data1 == SUSTAIN_PEDAL:
                self._set_pedal(channel, data2 >= SWITCH_ON)
                return
            if data1 in (ALL_NOTES_OFF, ALL_SOUND_OFF, RESET_CONTROLLERS):
                self._set_pedal(channel, False)
            synth.control_change(channel, data1, data2)
        elif kind == PITCH_BEND:
            synth.pitchbend(channel, data1 | data2 << 7)

    def _set_pedal(self, channel: int, down: bool) -> None:
        self._pedal[channel] = down
        if not down:
            for key in self._held[channel]:
                self._synth.noteoff(channel, key)
            self._held[channel].clear()


class TeeOutput:
    """One Output that sends each message to several (a MIDI port and a SynthOutput).

    Every output gets the message even when one fails; then the first failure is raised, so
    the scheduler counts a lost port as it would without the tee.
    """

    def __init__(self, *outputs):
        if not outputs:
            raise ValueError("TeeOutput needs at least one output")
        self.outputs = outputs

    @property
    def name(self) -> str:
        return " + ".join(str(getattr(output, "name", type(output).__name__))
                          for output in self.outputs)

    def send(self, message: Sequence[int]) -> None:
        failure: Exception | None = None
        for output in self.outputs:
            try:
                output.send(message)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def is_alive(self) -> bool:
        return all(output.is_alive() for output in self.outputs if hasattr(output, "is_alive"))

    def close(self) -> None:
        """Close every output that can be closed, each once; safe to call twice."""
        failure: Exception | None = None
        for output in self.outputs:
            close = getattr(output, "close", None)
            if close is None:
                continue
            try:
                close()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def __enter__(self) -> TeeOutput:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TeeOutput {self.name!r}>"
