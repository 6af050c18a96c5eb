"""Knobs on the computer keyboard, for a player whose controller has none to spare.

A thread reads single keys from the terminal in cbreak mode (no Enter needed) and hands each
to a press function (TerminalKeys: the live engine's control surface; cadenza.realtime.
audio_knobs: a generated audio stream's); the terminal is restored however the program stops.
"""

from __future__ import annotations

import os
import select
import sys
import threading
from collections.abc import Callable

from cadenza.realtime.controls import ControlSurface


class KeyReader:
    """Reads single keys from the terminal on a thread of its own; `press(key)` gets each."""

    def __init__(self, press: Callable[[str], None]) -> None:
        self._press = press
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved = None

    def start(self) -> bool:
        """Start reading keys if stdin is a terminal; False (and nothing done) otherwise."""
        if not sys.stdin.isatty():
            return False
        import termios  # imported here: POSIX only (Windows has no termios)
        import tty

        fd = sys.stdin.fileno()
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self._thread = threading.Thread(
            target=self._read, args=(fd,), name="cadenza-keys", daemon=True
        )
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if self._saved is not None:
            import termios  # POSIX only, as in start()

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None

    def _read(self, fd: int) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                key = os.read(fd, 1).decode(errors="ignore")
                if key:
                    self._press(key)


class TerminalKeys(KeyReader):
    """The live engine's knobs on keys: each key goes to its control surface (the key map and
    KEYS_HELP are cadenza.realtime.controls')."""

    def __init__(self, controls: ControlSurface) -> None:
        super().__init__(controls.press)
        self.controls = controls

    def press(self, key: str) -> None:
        self.controls.press(key)
