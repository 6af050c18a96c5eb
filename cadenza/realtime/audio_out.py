"""The one way cadenza plays audio on the sound card: a ring buffer ahead of a PortAudio stream.

Three parties, one job each:
- a producer thread keeps a preallocated ring of stereo float32 frames filled `ahead` frames
  ahead of the card, calling a fill function one block at a time (a SoundFont synth, a
  generated stream);
- the PortAudio callback only copies from the ring into the card's buffer. When the ring runs
  dry it plays silence and counts an underrun; it never raises, locks, allocates a buffer,
  prints or logs;
- the owner reads the figures (underruns, frames played, peaks, the producer's error).

The ring has one writer (the producer, which alone moves `_written`) and one reader (the
callback, which alone moves `_read`); both counters only grow, and the writer never writes
into frames the reader has not taken, so neither needs a lock.

RingPlayer is the mechanism; SynthOutput (synth.py) and StreamPlayer (stream_player.py: an
iterator of mono chunks at any rate, resampled to the card's with soxr) are built on it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np

from cadenza.errors import CadenzaError
from cadenza.realtime.library_noise import library_noise

CHANNELS = 2
# The ring holds at least this many frames, so the fill target can grow to a host that asks
# for large periods (a JACK server at -p 1024) without reallocating under the callback.
MIN_RING_FRAMES = 4096
PEAK_HISTORY_SECONDS = 2.0
JOIN_SECONDS = 2.0  # close() waits this long for the producer (a fill may be mid-block)

# fill(frames) writes into `frames`, a (block, 2) float32 view of the ring, and returns how
# many frames it wrote; fewer than a block means the source has ended (nothing more is asked).
Fill = Callable[[np.ndarray], int]

_streams_lock = threading.Lock()
_open_streams = 0  # RingPlayers playing in this process: rescanning would cut them off


def _sounddevice():
    try:
        # Loading PortAudio probes ALSA and JACK, which print to fd 2 what they do not find.
        with library_noise():
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
    of the process, so it refuses while a RingPlayer plays (streams opened elsewhere through
    sounddevice are the caller's to know about).
    """
    sd = _sounddevice()
    with _streams_lock:
        _terminate_locked(sd)
        with library_noise():  # the same probing as at import
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
        raise RuntimeError("cannot rescan audio devices while audio is playing")
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


class RingPlayer:
    """A stereo ring buffer played on a sound card, filled by a producer thread.

    Two steps, because a fill function often needs the device's rate first (a synth loads at
    it): the constructor finds the device — `device`: a PortAudio device index or part of its
    name (None: the default output); `sample_rate`: None takes the device's (a JACK server's
    own; PortAudio on JACK cannot play at another) — and start(fill, ahead) opens the stream.
    `block`: frames the fill function writes at a time.

    Until the producer has first filled the ring to its target the card plays silence that is
    not counted as an underrun, so a slow source (a model's first chunk) starts with a full
    ring rather than with a stutter. When fill returns short the source has ended: once the
    card has taken the rest, `finished` turns True and silence follows, uncounted.
    """

    def __init__(self, *, device: str | int | None = None, sample_rate: int | None = None,
                 block: int = 128, name: str = "cadenza-audio"):
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self._sd = sd = _sounddevice()
        self._info = _open_device(sd, device)
        self.device = f"{self._info['name']} ({sd.query_hostapis(self._info['hostapi'])['name']})"
        self.sample_rate = int(sample_rate or self._info["default_samplerate"])
        self.block = block
        self.name = name
        self.peak = 0.0
        self.underruns = 0  # callbacks that found the ring short and played silence instead
        self.host_underflows = 0  # callbacks PortAudio flags as late (on JACK: server xruns)
        self.error: BaseException | None = None  # what ended the producer thread, if anything
        self._written = 0  # frames filled into the ring (the producer's)
        self._read = 0  # frames taken by the card (the callback's)
        self._playing = False  # the producer filled the ring once: shortfalls are underruns
        self._ended = False  # the fill function returned short: no more frames will come
        self._largest_request = 0
        self._stream = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._close_lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()  # the producer has stopped and the ring is drained

    def start(self, fill: Fill, ahead: int, on_stop: Callable[[], None] | None = None) -> None:
        """Open the card's stream and start the producer, keeping `ahead` frames ready.

        `on_stop` is called on the producer thread when it stops, for any reason (a source
        that must be closed on the thread that ran it)."""
        global _open_streams
        if self._stream is not None or self._closed:
            raise RuntimeError(f"{self.name} was started or closed already")
        if ahead < 1:
            raise ValueError(f"ahead must be >= 1 frame, got {ahead}")
        block, sd = self.block, self._sd
        self._fill_block = fill
        self._on_stop = on_stop
        self.ahead = ahead
        blocks = max(math.ceil(ahead / block), math.ceil(MIN_RING_FRAMES / block)) + 2
        self._size = blocks * block
        self._ring = np.zeros((self._size, CHANNELS), dtype=np.float32)
        self._ring_bytes = memoryview(self._ring).cast("B")
        self._silence = memoryview(bytes(self._size * CHANNELS * 4))
        self._frame_bytes = CHANNELS * 4
        self._target = math.ceil(ahead / block) * block
        self._block_peaks = np.zeros(max(1, round(PEAK_HISTORY_SECONDS * self.sample_rate
                                                  / block)), dtype=np.float32)
        try:
            # blocksize=0: the host's own period (a JACK cycle), no re-blocking by PortAudio;
            # "low": the ring, not the card's buffer, absorbs the producer's jitter.
            self._stream = sd.RawOutputStream(
                samplerate=self.sample_rate, device=self._info["index"], channels=CHANNELS,
                dtype="float32", blocksize=0, latency="low", callback=self._callback,
            )
            self._stream.start()
        except sd.PortAudioError as exc:
            if self._stream is not None:
                self._stream.close(ignore_errors=True)
            self._closed = True
            detail = " ".join(str(exc).split())
            raise CadenzaError(
                f"audio device {self.device}: cannot play at {self.sample_rate} Hz ({detail})"
            ) from None
        with _streams_lock:
            _open_streams += 1
        self._thread = threading.Thread(target=self._produce, name=self.name, daemon=True)
        self._thread.start()

    # ----- the owner's side -----

    def is_alive(self) -> bool:
        """Playing and able to play more: started, not closed, not ended, no error."""
        return (self._thread is not None and not self._closed and self.error is None
                and not self._ended and self._thread.is_alive() and self._stream.active)

    @property
    def finished(self) -> bool:
        """The producer has stopped (source ended, error or close) and the ring is drained."""
        return self._done.is_set()

    def wait(self, seconds: float | None = None) -> bool:
        """Wait until finished, at most `seconds` (None: no limit); True when finished."""
        return self._done.wait(seconds)

    def close(self) -> None:
        """Stop the card's stream and the producer thread; safe to call twice."""
        global _open_streams
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._stream is None:
            return  # never started
        self._stream.close(ignore_errors=True)
        self._thread.join(timeout=JOIN_SECONDS)
        with _streams_lock:
            _open_streams -= 1

    def __enter__(self) -> RingPlayer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def frames_filled(self) -> int:
        return self._written

    @property
    def frames_played(self) -> int:
        """Frames the sound card has taken from the ring (silence not counted)."""
        return self._read

    @property
    def latency(self) -> float:
        """Seconds a filled frame waits in the ring before the card plays it (at most)."""
        return self._target / self.sample_rate

    def recent_peak(self, seconds: float = 0.05) -> float:
        """The largest absolute sample of the most recently filled `seconds`."""
        if self._thread is None:
            return 0.0
        count = min(max(1, math.ceil(seconds * self.sample_rate / self.block)),
                    len(self._block_peaks), self._written // self.block)
        if count == 0:
            return 0.0
        last = self._written // self.block
        slots = np.arange(last - count, last) % len(self._block_peaks)
        return float(self._block_peaks[slots].max())

    # ----- the producer thread -----

    def _produce(self) -> None:
        pause = self.block / self.sample_rate / 2
        try:
            while not self._stop.is_set():
                # A host that asks for more frames at once than the target would always find
                # the ring short: keep one block more than its largest request ready.
                wanted = max(self.ahead,
                             (math.ceil(self._largest_request / self.block) + 1) * self.block)
                self._target = min(math.ceil(wanted / self.block) * self.block,
                                   self._size - self.block)
                self._fill()
                self._playing = True
                if self._ended:
                    break
                self._stop.wait(pause)
            # Let the card take what is left before saying finished.
            while self._read < self._written and not self._stop.wait(pause):
                pass
        except BaseException as exc:  # the source's or a bug: the owner reads `error`
            self.error = exc
        finally:
            # _ended first: a callback in between must not count the shortfall an underrun.
            self._ended = True
            self._playing = True  # whatever was filled plays, then silence
            try:
                if self._on_stop is not None:
                    self._on_stop()
            except BaseException as exc:
                self.error = self.error or exc
            self._done.set()

    def _fill(self) -> None:
        """Fill blocks until the ring holds `_target` frames the card has not taken."""
        block = self.block
        while self._written - self._read < self._target and not self._stop.is_set():
            index = self._written // block
            slot = index % (self._size // block)
            frames = self._ring[slot * block:(slot + 1) * block]
            count = self._fill_block(frames)
            if not 0 <= count <= block:
                raise ValueError(f"fill wrote {count} frames into a block of {block}")
            filled = frames[:count]
            peak = max(float(filled.max()), -float(filled.min())) if count else 0.0
            self._block_peaks[index % len(self._block_peaks)] = peak
            if peak > self.peak:
                self.peak = peak
            self._written += count
            if count < block:
                self._ended = True
                return

    # ----- the PortAudio callback: copies, nothing else -----

    def _callback(self, outdata, frames: int, _time, status) -> None:
        if status.output_underflow:
            self.host_underflows += 1
        width = self._frame_bytes
        if not self._playing:  # the producer's first fill is not there yet
            outdata[:frames * width] = self._silence[:frames * width]
            return
        start = self._read
        available = self._written - start
        count = frames if frames <= available else available
        position = start % self._size
        first = min(count, self._size - position)
        ring = self._ring_bytes
        outdata[:first * width] = ring[position * width:(position + first) * width]
        if count > first:
            outdata[first * width:count * width] = ring[:(count - first) * width]
        if count < frames:
            outdata[count * width:frames * width] = self._silence[:(frames - count) * width]
            if not self._ended:
                self.underruns += 1
        self._read = start + count
        if frames > self._largest_request:
            self._largest_request = frames


class RingFigures:
    """The figures of a player built on a RingPlayer (in `self._ring`), for its owner."""

    _ring: RingPlayer

    @property
    def peak(self) -> float:
        """The largest absolute sample played so far."""
        return self._ring.peak

    @property
    def underruns(self) -> int:
        """Callbacks that found the ring short and played silence instead."""
        return self._ring.underruns

    @property
    def host_underflows(self) -> int:
        """Callbacks PortAudio flags as late (on JACK: server xruns)."""
        return self._ring.host_underflows

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the producer thread (the source's), if any."""
        return self._ring.error

    @property
    def frames_played(self) -> int:
        """Frames the card has taken from the ring (silence not counted)."""
        return self._ring.frames_played

    @property
    def latency(self) -> float:
        """Seconds a filled frame waits in the ring before the card plays it (at most)."""
        return self._ring.latency

    def recent_peak(self, seconds: float = 0.05) -> float:
        """The largest absolute sample of the most recently filled `seconds`."""
        return self._ring.recent_peak(seconds)
