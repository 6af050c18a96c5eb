"""`cadenza audio`: text-conditioned audio from a codec-lm bundle, to the sound card or a WAV.

To the card, the plugin's stream (a generator of 0.2 s chunks) is pulled by StreamPlayer's
producer thread into the ring that the sound card's callback copies from; temperature and
CFG turn while it plays (AudioKnobs: keys, MIDI CCs). The main thread only waits, so Ctrl-C
and SIGTERM end it at once with the stream closed. To a file, the same chunks are generated
as fast as they come and written at the bundle's rate.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cadenza.errors import CadenzaError
from cadenza.plugins import load_generator
from cadenza.plugins.codec_lm import CodecLM
from cadenza.realtime.stream_player import StreamPlayer
from cadenza.sound_files import read_sound, write_sound


@dataclass
class AudioRun:
    seconds: float  # of new audio
    wall: float  # seconds it took
    underruns: int = 0  # sound card callbacks that found the ring short (0 for a file)
    peak: float = 0.0  # the loudest sample played

    @property
    def real_time_factor(self) -> float:
        return self.seconds / self.wall if self.wall > 0 else float("inf")


def load_codec_lm(bundle: str | None, seed: int | None) -> CodecLM:
    generator = load_generator(bundle, plugin="codec-lm", seed=seed)
    assert isinstance(generator, CodecLM)
    return generator


def prime(lm: CodecLM, prompt: str | None, continue_from: str | Path | None) -> float:
    """Set the prompt and, with `continue_from` (a sound file), the audio to continue; returns the
    seconds of that audio that the codec took in."""
    codes = np.zeros((lm.num_codebooks, 0), dtype=np.int64)
    if continue_from is not None:
        samples, rate = read_sound(continue_from)
        if rate != lm.sample_rate:
            import soxr  # imported here: optional (cadenza[audio]), only to resample a file

            samples = soxr.resample(samples, rate, lm.sample_rate).astype(np.float32)
        codes = lm.encode(samples)
        if codes.shape[1] == 0:
            raise CadenzaError(f"{continue_from}: shorter than one codec frame")
    lm.prime(codes, {"prompt": prompt})
    return codes.shape[1] * lm.hop / lm.sample_rate


def limited(stream: Iterator[np.ndarray], samples: int | None) -> Iterator[np.ndarray]:
    """The stream's chunks up to `samples` in all (None: endless)."""
    left = samples
    for chunk in stream:
        if left is not None:
            chunk = chunk[:left]
            left -= len(chunk)
        yield chunk
        if left is not None and left <= 0:
            return


def write_file(lm: CodecLM, seconds: float, out: str | Path, bit_depth: str = "16") -> AudioRun:
    started = time.perf_counter()
    audio = lm.generate_audio(seconds)
    wall = time.perf_counter() - started
    write_sound(audio, out, lm.sample_rate, bit_depth)
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    return AudioRun(seconds=len(audio) / lm.sample_rate, wall=wall, peak=peak)


def play(lm: CodecLM, seconds: float | None, *, device: str | int | None = None,
         ahead: float = 0.5, knobs=None, status: bool = True) -> AudioRun:
    """Stream to the sound card for `seconds` (None: until q, Ctrl-C or SIGTERM)."""
    samples = None if seconds is None else round(seconds * lm.sample_rate)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.perf_counter()
    player = StreamPlayer(limited(lm.stream(), samples), lm.sample_rate, device=device,
                          ahead=ahead)
    try:
        while not player.finished and not stop.is_set():
            if knobs is not None and knobs.quit.is_set():
                break
            if status and sys.stderr.isatty():
                shown = knobs.status() if knobs is not None else ""
                print(f"\r{player.frames_played / player.sample_rate:6.1f} s | {shown} | "
                      f"underruns {player.underruns}  ", end="", file=sys.stderr, flush=True)
            player.wait(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        player.close()
        signal.signal(signal.SIGTERM, previous)
        if status and sys.stderr.isatty():
            print(file=sys.stderr)
    if player.error is not None:
        raise CadenzaError(f"audio generation stopped: {player.error}")
    return AudioRun(seconds=player.frames_played / player.sample_rate,
                    wall=time.perf_counter() - started, underruns=player.underruns,
                    peak=player.peak)
