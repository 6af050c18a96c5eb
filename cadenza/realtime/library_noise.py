"""Library noise off the terminal: what C libraries (ALSA, JACK, PortAudio) write straight to
the process's stderr when Cadenza probes for a MIDI or audio system.

python-rtmidi trying the ALSA sequencer where there is none prints "ALSA lib seq_hw.c...",
libjack looking for a server that is not running prints "Cannot connect to server socket...",
"JackShmReadWritePtr...". They write to file descriptor 2, below Python, so they are caught
there: `with library_noise():` around the calls that make them points fd 2 at a temp file,
and the lines are kept (`captured()`); `--verbose` (set_verbose) prints them as they come.
Python's own writes to sys.stderr during a capture still reach the terminal (sys.stderr is
pointed at the saved descriptor for the while), and an exception raised inside one is
printed after it, so a Python error is never hidden.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

KEEP_LINES = 500

_lock = threading.RLock()  # fd 2 is one per process: one capture at a time
_depth = 0
_verbose = False
_kept: collections.deque[str] = collections.deque(maxlen=KEEP_LINES)
# The last capture's stand-in for sys.stderr and its descriptor (a copy of the terminal's),
# closed at the next capture rather than at once: a thread that fetched sys.stderr during the
# capture may still write through it, and then it still reaches the terminal.
_retired: tuple[io.TextIOWrapper, int] | None = None


def set_verbose(on: bool = True) -> None:
    """Print library lines to stderr as they are captured (`--verbose`)."""
    global _verbose
    _verbose = on


def captured() -> list[str]:
    """The library lines captured so far (the last KEEP_LINES)."""
    with _lock:
        return list(_kept)


def _writes_to_fd2(stream) -> bool:
    try:
        return stream is not None and stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False  # a StringIO, pytest's capture: not fd 2, nothing to re-point


@contextlib.contextmanager
def library_noise() -> Iterator[None]:
    """Capture what C code writes to fd 2 inside the block; nested blocks join the outer one."""
    global _depth, _retired
    with _lock:
        if _depth:
            _depth += 1
            try:
                yield
            finally:
                _depth -= 1
            return
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all (a GUI process): nothing to keep clean
            yield
            return
        python_stderr = sys.stderr
        if python_stderr is not None:
            with contextlib.suppress(Exception):
                python_stderr.flush()
        if _retired is not None:
            with contextlib.suppress(Exception):
                _retired[0].close()  # closefd=False: its descriptor is closed next
            with contextlib.suppress(OSError):
                os.close(_retired[1])
            _retired = None
        terminal = None
        if _writes_to_fd2(python_stderr):
            terminal = io.TextIOWrapper(
                io.FileIO(saved, "w", closefd=False), encoding=python_stderr.encoding,
                errors="backslashreplace", line_buffering=True,
            )
        sink = tempfile.TemporaryFile()
        os.dup2(sink.fileno(), 2)
        if terminal is not None:
            sys.stderr = terminal
        _depth = 1
        try:
            yield
        finally:
            _depth = 0
            if terminal is not None:
                with contextlib.suppress(Exception):
                    terminal.flush()
                if sys.stderr is terminal:
                    sys.stderr = python_stderr
            os.dup2(saved, 2)
            if terminal is None:
                os.close(saved)
            else:
                _retired = (terminal, saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace")
            sink.close()
            _keep(text)


def _keep(text: str) -> None:
    lines = [line for line in text.splitlines() if line.strip()]
    _kept.extend(lines)
    if _verbose and lines and sys.stderr is not None:
        with contextlib.suppress(Exception):
            sys.stderr.write("".join(f"{line}\n" for line in lines))
            sys.stderr.flush()
