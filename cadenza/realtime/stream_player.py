"""Generated audio on the sound card as it is generated: StreamPlayer, a RingPlayer
(audio_out.py) whose producer pulls mono chunks from an iterator and resamples them to the
card's rate with soxr."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from cadenza.errors import CadenzaError
from cadenza.realtime.audio_out import RingFigures, RingPlayer


class StreamPlayer(RingFigures):
    """Plays a generated mono stream on the sound card, as it is generated.

    `source`: an iterable of mono float32 chunks (1-D numpy arrays, any length) at
    `source_rate` Hz; the producer thread pulls the next chunk whenever the ring holds less
    than `ahead` seconds, resamples it to the card's rate with soxr (a JACK server plays at
    its own rate only) and writes it to both channels. A source slower than real time shows as
    `underruns`. When the source is exhausted and the card has played the rest, `finished`
    turns True; an exception raised by the source ends the stream the same way and is kept in
    `error`. The source, if it has close() (a generator), is closed on the producer thread
    when that stops, for any reason, close() included.
    `device`: a PortAudio device index or part of its name (None: the default output).
    """

    def __init__(self, source: Iterable[np.ndarray], source_rate: int, *,
                 device: str | int | None = None, ahead: float = 0.5, block: int = 256,
                 quality: str = "HQ"):
        if source_rate <= 0 or ahead <= 0:
            raise ValueError(f"source_rate and ahead must be > 0, got {source_rate}, {ahead}")
        try:  # imported here: soxr is optional (cadenza[audio]), needed only to play audio
            import soxr
        except ImportError:
            raise CadenzaError("playing generated audio needs soxr: pip install "
                               "'cadenza[audio]'") from None
        self.source_rate = int(source_rate)
        self._ring = RingPlayer(device=device, block=block, name="cadenza-stream")
        self.sample_rate = self._ring.sample_rate
        self.device = self._ring.device
        self._source: Iterator[np.ndarray] = iter(source)
        self._resampler = (None if self.source_rate == self.sample_rate else
                           soxr.ResampleStream(self.source_rate, self.sample_rate, 1,
                                               dtype="float32", quality=quality))
        self._pending = np.zeros(0, dtype=np.float32)  # resampled frames not yet in the ring
        self._offset = 0
        self._exhausted = False
        self.chunks = 0  # chunks taken from the source
        self._ring.start(self._fill, max(block, round(ahead * self.sample_rate)),
                         on_stop=self._close_source)

    def _fill(self, frames: np.ndarray) -> int:
        """The ring's fill function (producer thread): pending frames, then the next chunks."""
        written, wanted = 0, len(frames)
        while written < wanted:
            if self._offset == len(self._pending):
                if self._exhausted or not self._pull():
                    break
                continue
            count = min(wanted - written, len(self._pending) - self._offset)
            # Mono to both channels: the (count,) slice broadcasts across the last axis.
            frames[written:written + count] = self._pending[self._offset:self._offset + count,
                                                            None]
            self._offset += count
            written += count
        return written

    def _pull(self) -> bool:
        """Resample the next chunk into `_pending`; False when nothing more will come."""
        try:
            chunk = next(self._source)
        except StopIteration:
            self._exhausted = True
            if self._resampler is None:
                return False
            tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            self._pending, self._offset = tail, 0  # the resampler's delay line, flushed
            return len(tail) > 0
        samples = np.asarray(chunk, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"audio source chunks must be mono (1-D), got shape {samples.shape}")
        self.chunks += 1
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        self._pending, self._offset = samples, 0
        return True

    def _close_source(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()  # a generator's finally blocks run here, on the thread that ran it

    # ----- control -----

    @property
    def finished(self) -> bool:
        return self._ring.finished

    def wait(self, seconds: float | None = None) -> bool:
        """Wait until the source is exhausted (or failed) and its audio played; True if so."""
        return self._ring.wait(seconds)

    def close(self) -> None:
        """Stop playing now; safe to call twice."""
        self._ring.close()

    def __enter__(self) -> StreamPlayer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<StreamPlayer {self.source_rate} Hz -> {self.device} at "
                f"{self.sample_rate} Hz>")
