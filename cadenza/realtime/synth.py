"""Sound without a DAW: MIDI messages played through a General MIDI SoundFont on the sound card.

Three parties, one job each:
- send() (the scheduler's thread) applies a message to the tinysoundfont synth under a lock;
- a render thread keeps a preallocated ring of stereo float32 frames filled `buffer_blocks`
  blocks ahead of the sound card, rendering one block at a time under the same lock;
- the PortAudio callback only copies from the ring into the card's buffer. When the ring runs
  dry it plays silence and counts an underrun; it never raises, locks, allocates a buffer,
  prints or logs.
A note therefore sounds at most `buffer_blocks * block` frames after send(), plus the card's
own buffer.

The ring has one writer (the render thread, which alone moves `_written`) and one reader (the
callback, which alone moves `_read`); both counters only grow, and the writer never writes
into frames the reader has not taken, so neither needs a lock.

tinysoundfont has no sustain pedal, so CC 64 is applied here: while it is down, note-offs on
its channel wait for the pedal to lift (a key struck again ends its held note first, as
cadenza.realtime.stream's encoder does).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np

from cadenza.errors import CadenzaError
from cadenza.notes import DRUM_CHANNEL
from cadenza.realtime.ports import PortClosedError
from cadenza.render import find_soundfont, load_synth

NOTE_OFF, NOTE_ON, CONTROL_CHANGE, PROGRAM_CHANGE, PITCH_BEND = 0x80, 0x90, 0xB0, 0xC0, 0xE0
SUSTAIN, ALL_SOUND_OFF, RESET_CONTROLLERS, ALL_NOTES_OFF = 64, 120, 121, 123
CHANNELS = 2
# The ring holds at least this many frames, so the fill target can grow to a host that asks
# for large periods (a JACK server at -p 1024) without reallocating under the callback.
MIN_RING_FRAMES = 4096
PEAK_HISTORY_SECONDS = 2.0

_streams_lock = threading.Lock()
_open_streams = 0  # SynthOutputs playing in this process: rescanning would cut them off


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # sounddevice loads PortAudio when imported
        raise CadenzaError(
            f"no audio: PortAudio cannot be loaded ({exc}); apt-get install libportaudio2"
        ) from None
    return sounddevice


def rescan_audio_devices() -> None:
    """Make PortAudio list the audio devices again.

    PortAudio looks for devices once, when sounddevice is imported; with JACK it also attaches
    to the server named by $JACK_DEFAULT_SERVER at that moment. A sound card plugged in or a
    JACK server started later is seen only after a rescan. It closes every PortAudio stream
    of the process, so it refuses while a SynthOutput plays (streams opened elsewhere through
    sounddevice are the caller's to know about).
    """
    sd = _sounddevice()
    with _streams_lock:
        _terminate_locked(sd)
        sd._initialize()


def release_audio_devices() -> None:
    """Detach PortAudio from every device until the next rescan_audio_devices().

    Call it before stopping a JACK server this process has played through: PortAudio aborts
    the process at exit (an assertion in its JACK host API) when its server went away first.
    """
    with _streams_lock:
        _terminate_locked(_sounddevice())


def _terminate_locked(sd) -> None:
    if _open_streams:
        raise RuntimeError("cannot rescan audio devices while a SynthOutput is playing")
    # sounddevice's private calls, the only way it offers to re-initialise PortAudio.
    while sd._initialized:
        sd._terminate()


def _output_names(sd) -> str:
    names = [f"{d['name']} ({sd.query_hostapis(d['hostapi'])['name']})"
             for d in sd.query_devices() if d["max_output_channels"] >= CHANNELS]
    return "; ".join(names) or "none"


def _find_output(sd, device: str | int | None) -> dict | None:
    try:
        info = sd.query_devices(device, kind="output")
    except (ValueError, sd.PortAudioError):
        return None
    return info if info["max_output_channels"] >= CHANNELS else None


def _open_device(sd, device: str | int | None) -> dict:
    """The device's info, rescanning once when it is not listed (a JACK server started after
    sounddevice was imported); a one-line CadenzaError naming it otherwise."""
    info = _find_output(sd, device)
    if info is None and not _open_streams:
        rescan_audio_devices()
        info = _find_output(sd, device)
    if info is not None:
        return info
    wanted = "no default audio output device" if device is None else (
        f"no stereo audio output device matches {device!r}")
    raise CadenzaError(
        f"{wanted} (available: {_output_names(sd)}); start a JACK server (jackd -d dummy "
        "for silence) or connect a sound card"
    )


class SynthOutput:
    """An Output (see cadenza.realtime.scheduler) that plays on the sound card.

    `device`: a PortAudio device index or part of its name (None: the default output);
    `sample_rate`: None takes the device's (a JACK server's own rate); `block`: frames
    rendered at a time; `buffer_blocks`: how many blocks are kept ready ahead of the card.
    """

    def __init__(self, soundfont: str | None = None, *, device: str | int | None = None,
                 sample_rate: int | None = None, block: int = 128, buffer_blocks: int = 4):
        global _open_streams
        if block < 1 or buffer_blocks < 1:
            raise ValueError(f"block and buffer_blocks must be >= 1, got {block}, {buffer_blocks}")
        path = find_soundfont(soundfont)
        sd = _sounddevice()
        info = _open_device(sd, device)
        self.device = f"{info['name']} ({sd.query_hostapis(info['hostapi'])['name']})"
        self.sample_rate = int(sample_rate or info["default_samplerate"])
        self.block = block
        self.buffer_blocks = buffer_blocks
        self.name = f"synth: {path.name}"
        self.soundfont = path
        self._synth = load_synth(path, self.sample_rate)
        self._lock = threading.Lock()  # guards the synth: send() and the render thread
        self._pedal = [False] * 16
        self._held: list[list[int]] = [[] for _ in range(16)]  # keys released under the pedal

        blocks = max(buffer_blocks, math.ceil(MIN_RING_FRAMES / block)) + 2
        self._size = blocks * block
        self._ring = np.zeros((self._size, CHANNELS), dtype=np.float32)
        self._ring_bytes = memoryview(self._ring).cast("B")
        self._slots = [memoryview(self._ring[i * block:(i + 1) * block]).cast("B")
                       for i in range(blocks)]
        self._silence = memoryview(bytes(self._size * CHANNELS * 4))
        self._frame_bytes = CHANNELS * 4
        self._written = 0  # frames rendered into the ring (the render thread's)
        self._read = 0  # frames taken by the card (the callback's)
        self._target = buffer_blocks * block
        self._largest_request = 0
        self._block_peaks = np.zeros(max(1, round(PEAK_HISTORY_SECONDS * self.sample_rate
                                                  / block)), dtype=np.float32)
        self.peak = 0.0
        self.underruns = 0  # callbacks that found the ring short and played silence instead
        self.host_underflows = 0  # callbacks PortAudio flags as late (on JACK: server xruns)
        self.error: BaseException | None = None  # what ended the render thread, if anything
        self._closed = False
        self._stop = threading.Event()

        self._fill()  # ready before the first callback
        self._stream = None
        try:
            # blocksize=0: the host's own period (a JACK cycle), no re-blocking by PortAudio;
            # "low": the ring, not the card's buffer, absorbs the render thread's jitter.
            self._stream = sd.RawOutputStream(
                samplerate=self.sample_rate, device=info["index"], channels=CHANNELS,
                dtype="float32", blocksize=0, latency="low", callback=self._callback,
            )
            self._stream.start()
        except sd.PortAudioError as exc:
            if self._stream is not None:
                self._stream.close(ignore_errors=True)
            detail = " ".join(str(exc).split())
            raise CadenzaError(
                f"audio device {self.device}: cannot play at {self.sample_rate} Hz ({detail})"
            ) from None
        with _streams_lock:
            _open_streams += 1
        self._thread = threading.Thread(target=self._render_loop, name="cadenza-synth",
                                        daemon=True)
        self._thread.start()

    # ----- the Output protocol -----

    def send(self, message: Sequence[int]) -> None:
        """Apply one MIDI message to the synth; it sounds from the next rendered block."""
        with self._lock:
            if self._closed:
                raise PortClosedError(f"{self.name} is closed")
            self._apply_locked(message)

    def is_alive(self) -> bool:
        return (not self._closed and self.error is None and self._thread.is_alive()
                and self._stream.active)

    def close(self) -> None:
        """Stop the sound card stream and the render thread; safe to call twice."""
        global _open_streams
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._stream.close(ignore_errors=True)
        self._thread.join(timeout=2.0)
        with _streams_lock:
            _open_streams -= 1

    def __enter__(self) -> SynthOutput:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SynthOutput {self.name!r} on {self.device} at {self.sample_rate} Hz>"

    # ----- figures -----

    @property
    def frames_rendered(self) -> int:
        return self._written

    @property
    def frames_played(self) -> int:
        """Frames the sound card has taken from the ring (silence from underruns not counted)."""
        return self._read

    @property
    def latency(self) -> float:
        """Seconds a message waits in the ring before the card plays it (at most)."""
        return self._target / self.sample_rate

    def recent_peak(self, seconds: float = 0.05) -> float:
        """The largest absolute sample of the most recently rendered `seconds`."""
        count = min(max(1, math.ceil(seconds * self.sample_rate / self.block)),
                    len(self._block_peaks), self._written // self.block)
        if count == 0:
            return 0.0
        last = self._written // self.block
        slots = np.arange(last - count, last) % len(self._block_peaks)
        return float(self._block_peaks[slots].max())

    # ----- MIDI -----

    def _apply_locked(self, message: Sequence[int]) -> None:
        if len(message) < 2 or not 0x80 <= message[0] < 0xF0:
            return  # system messages (clock, start, stop) and running status are not for us
        kind, channel, synth = message[0] & 0xF0, message[0] & 0x0F, self._synth
        if kind == PROGRAM_CHANGE:
            try:
                synth.program_change(channel, message[1] & 0x7F, is_drums=channel == DRUM_CHANNEL)
            except RuntimeError:
                pass  # no such program in this SoundFont: keep the one there is
            return
        if len(message) < 3:
            return
        data1, data2 = message[1] & 0x7F, message[2] & 0x7F
        if kind == NOTE_ON and data2 > 0:
            held = self._held[channel]
            if data1 in held:  # struck again under the pedal: the held note ends first
                held.remove(data1)
                synth.noteoff(channel, data1)
            synth.noteon(channel, data1, data2)
        elif kind in (NOTE_ON, NOTE_OFF):
            if self._pedal[channel]:
                self._held[channel].append(data1)
            else:
                synth.noteoff(channel, data1)
        elif kind == CONTROL_CHANGE:
            if data1 == SUSTAIN:
                self._set_pedal(channel, data2 >= 64)
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

    # ----- the render thread -----

    def _render_loop(self) -> None:
        pause = self.block / self.sample_rate / 2
        try:
            while not self._stop.wait(pause):
                # A host that asks for more frames at once than the target would always find
                # the ring short: keep one block more than its largest request ready.
                wanted = max(self.buffer_blocks * self.block,
                             (math.ceil(self._largest_request / self.block) + 1) * self.block)
                self._target = min(wanted, self._size - self.block)
                self._fill()
        except BaseException as exc:  # a bug: is_alive() turns False and `error` says why
            self.error = exc

    def _fill(self) -> None:
        """Render blocks until the ring holds `_target` frames the card has not taken."""
        while self._written - self._read < self._target:
            index = self._written // self.block
            slot = index % len(self._slots)
            with self._lock:
                self._synth.generate(self.block, buffer=self._slots[slot])
            frames = self._ring[slot * self.block:(slot + 1) * self.block]
            peak = max(float(frames.max()), -float(frames.min()))
            self._block_peaks[index % len(self._block_peaks)] = peak
            if peak > self.peak:
                self.peak = peak
            self._written += self.block

    # ----- the PortAudio callback: copies, nothing else -----

    def _callback(self, outdata, frames: int, _time, status) -> None:
        if status.output_underflow:
            self.host_underflows += 1
        start = self._read
        available = self._written - start
        count = frames if frames <= available else available
        width = self._frame_bytes
        position = start % self._size
        first = min(count, self._size - position)
        ring = self._ring_bytes
        outdata[:first * width] = ring[position * width:(position + first) * width]
        if count > first:
            outdata[first * width:count * width] = ring[:(count - first) * width]
        if count < frames:
            outdata[count * width:frames * width] = self._silence[:(frames - count) * width]
            self.underruns += 1
        self._read = start + count
        if frames > self._largest_request:
            self._largest_request = frames


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
