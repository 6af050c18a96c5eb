"""`cadenza live --record FILE.mid` and the `r` key: the set recorded as it is played.

The player's messages are recorded with the stamps the input port gave them, the generated
ones (answers, backing parts) with the time the scheduler sent them (RecordingOutput sits
between the scheduler and the port), each on its voice's track (session_file.py). The hot
paths only append to a deque; a writer thread of its own turns that into the file and writes
it whole through cadenza.atomic about once a second, every note ended in each version: Ctrl-C,
a crash or a lost port loses at most the last second. A file that has grown so long that
writing it takes a while is written less often (never more than a tenth of the time).

Takes: `--record FILE.mid` records from the start into FILE.mid; `r` stops a take and starts
the next one, FILE-2.mid, FILE-3.mid... Without --record, `r` records into
cadenza-YYYYMMDD-HHMMSS.mid in the current folder.
"""

from __future__ import annotations

import collections
import io
import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cadenza.atomic import atomic_write
from cadenza.midi_status import channel_of
from cadenza.realtime.clock import BeatGrid
from cadenza.realtime.session_file import SessionFile

WRITE_PERIOD = 1.0  # seconds between writes of the file: what a crash may lose
WRITE_SHARE = 0.1  # at most this share of the time goes to writing a long file
TEMPO_PERIOD = 0.1  # seconds between looks at the grid's tempo
TEMPO_CHANGE = 0.05  # bpm: a followed clock's estimate moving by less is no tempo change
PLAYER_TRACK = "player"


class PlayerEcho(list):
    """A message of the player's passed through to the output (--passthrough): the recording
    has it from the input already, so the output's copy is not recorded again."""


def take_path(first: Path | None, take: int, now: float | None = None) -> Path:
    """The file of take number `take` (1, 2, ...): FILE.mid, FILE-2.mid, ...; without a
    first file, a dated name in the current folder."""
    if first is None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        return Path(f"cadenza-{stamp}.mid")
    return first if take == 1 else first.with_name(f"{first.stem}-{take}{first.suffix}")


class SessionRecorder:
    """Records takes of the set; `voices` maps each generated channel (0..15) to its track
    name. player()/sent() from any thread; poll() on the control thread; toggle() from any."""

    def __init__(self, path: str | Path | None, voices: dict[int, str], *,
                 write_period: float = WRITE_PERIOD):
        self.first = None if path is None else Path(path)
        self.names = [PLAYER_TRACK, *voices.values()]
        self.voice_of = {channel: k + 1 for k, channel in enumerate(voices)}
        self.write_period = write_period
        self.takes = 0
        self.path: Path | None = None  # the take being recorded, or the last one
        self.error: str | None = None  # the last write that failed, for the status line
        self.recording = False
        self.started_at = 0.0
        self._events: collections.deque[tuple[int, float, Sequence[int]]] = collections.deque()
        self._requested = path is not None  # start (or stop) at the next poll
        self._file: SessionFile | None = None
        self._lock = threading.Lock()  # the take: its file and its writer
        self._wake = threading.Event()
        self._closed = False
        self._next_tempo = 0.0
        self._writer = threading.Thread(target=self._write_loop, name="cadenza-record",
                                        daemon=True)
        self._writer.start()

    # --- hot paths: an append, nothing else ---------------------------------------------------
    def player(self, t: float, message: Sequence[int]) -> None:
        if self.recording:
            self._events.append((0, t, message))

    def sent(self, t: float, message: Sequence[int]) -> None:
        if not self.recording or isinstance(message, PlayerEcho):
            return
        voice = self.voice_of.get(channel_of(message))
        if voice is not None:
            self._events.append((voice, t, message))

    # --- control ------------------------------------------------------------------------------
    def toggle(self) -> None:
        """Stop the take being recorded, or start the next one (at the next poll)."""
        self._requested = True

    def poll(self, now: float, grid: Callable[[], BeatGrid]) -> None:
        """Start or stop a take as asked, and follow the tempo (control thread: `grid` is
        the timeline's)."""
        if self._requested:
            self._requested = False
            if self.recording:
                self.stop(now)
            else:
                self._start(now, grid())
        elif self.recording and now >= self._next_tempo:
            self._next_tempo = now + TEMPO_PERIOD
            bpm = grid().bpm
            file = self._file
            if file is not None and abs(bpm - file.tempo.bpm) >= TEMPO_CHANGE:
                self._events.append((-1, now, (bpm,)))

    def _start(self, now: float, grid: BeatGrid) -> None:
        with self._lock:
            self.takes += 1
            self.path = take_path(self.first, self.takes, time.time())
            # The file starts on the bar line at or before now: its bars are the engine's.
            bar = math.floor(grid.beat_at(now) / grid.beats_per_bar)
            origin = min(now, grid.time_of_beat(bar * grid.beats_per_bar))
            self._file = SessionFile(self.names, origin=origin, bpm=grid.bpm,
                                     beats_per_bar=grid.beats_per_bar)
            self._events.clear()
            self.started_at = now
            self.recording = True
        self._wake.set()  # a first (empty) file at once: the path is taken

    def stop(self, now: float | None = None) -> None:
        """End the take: every note still sounding ends now, and the file is written."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            if not self.recording:
                return
            self._write_locked(now)
            self.recording = False  # after the write: whoever sees it stopped finds the file
            self._file = None

    def close(self) -> None:
        """Stop the take (if any) and the writer; the engine calls it after its last note-off."""
        self.stop()
        self._closed = True
        self._wake.set()
        self._writer.join(timeout=5.0)

    # --- the writer thread --------------------------------------------------------------------
    def _write_loop(self) -> None:
        period = self.write_period
        while not self._closed:
            self._wake.wait(period)
            self._wake.clear()
            if self._closed:
                return
            began = time.perf_counter()
            with self._lock:
                if self.recording:
                    self._write_locked(began)
            took = time.perf_counter() - began
            period = max(self.write_period, took / WRITE_SHARE)

    def _write_locked(self, now: float) -> None:
        file = self._file
        if file is None or self.path is None:
            return
        events = self._events
        for _ in range(len(events)):
            voice, t, message = events.popleft()
            if voice < 0:
                file.set_tempo(t, message[0])
            else:
                file.add(voice, t, message)
        data = io.BytesIO()
        file.midi_file(now).save(file=data)
        try:
            atomic_write(self.path, data.getvalue())
            self.error = None
        except OSError as error:  # a full disk, a folder gone: the set goes on, the line says
            self.error = f"recording to {self.path} failed: {error.strerror or error}"

    # --- for the player -------------------------------------------------------------------------
    def status(self, now: float) -> str:
        if self.error is not None:
            return self.error
        if self.recording and self.path is not None:
            return f"rec {now - self.started_at:4.0f} s {self.path.name}"
        return ""


class RecordingOutput:
    """The scheduler's output when the set may be recorded: sends, then tells the recorder
    what was sent and when (the moment before the send, as the scheduler times it)."""

    def __init__(self, output, recorder: SessionRecorder):
        self.output = output
        self.recorder = recorder

    @property
    def name(self) -> str:
        return self.output.name

    def send(self, message: Sequence[int]) -> None:
        stamp = time.perf_counter()
        self.output.send(message)
        self.recorder.sent(stamp, message)
