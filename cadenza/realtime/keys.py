"""Knobs on the computer keyboard, for a player whose controller has none to spare.

A thread reads single keys from the terminal (no Enter needed) and hands each to a press
function (TerminalKeys: the live engine's control surface; cadenza.realtime.audio_knobs: a
generated audio stream's). How keys are read depends on the platform, chosen when reading
starts: on Linux and macOS the terminal goes into cbreak mode (termios) and is restored however
the program stops; on Windows the console is polled (msvcrt.kbhit/getwch). Where no terminal
is attached (stdin a pipe or a file, a service), keys are simply off. The platform modules are
imported only by the reader that uses them, so this module imports anywhere.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from cadenza.realtime.controls import ControlSurface

POLL_SECONDS = 0.05  # how often a reader looks for a key (and for stop): a knob turn, not a note


class _PosixConsole:
    """stdin in cbreak mode, read with select: Linux, macOS and the other Unixes."""

    def __init__(self, stdin: TextIO) -> None:
        import termios  # POSIX only: imported by the POSIX reader alone
        import tty

        self._termios = termios
        self._fd = stdin.fileno()
        try:
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)
        except termios.error as e:  # a tty-like stdin that is no terminal (an OSError in 3.12+)
            raise OSError(f"not a terminal: {e}") from None

    def read(self, timeout: float) -> str:
        import select

        ready, _, _ = select.select([self._fd], [], [], timeout)
        return os.read(self._fd, 1).decode(errors="ignore") if ready else ""

    def restore(self) -> None:
        self._termios.tcsetattr(self._fd, self._termios.TCSADRAIN, self._saved)


class _WindowsConsole:
    """The Windows console, polled: msvcrt reads keys without echo and without Enter, and the
    console needs no mode to restore."""

    def __init__(self, stdin: TextIO) -> None:
        import msvcrt  # Windows only: imported by the Windows reader alone

        self._msvcrt = msvcrt

    def read(self, timeout: float) -> str:
        msvcrt = self._msvcrt
        if not msvcrt.kbhit():
            time.sleep(timeout)
            return ""
        key = msvcrt.getwch()
        if key in ("\x00", "\xe0"):  # arrows, function keys: a prefix and a scan code
            msvcrt.getwch()
            return ""
        return key

    def restore(self) -> None:
        pass


def console_for(platform: str) -> type:
    """The console reader class for a platform name as in sys.platform."""
    return _WindowsConsole if platform.startswith(("win", "cygwin")) else _PosixConsole


class KeyReader:
    """Reads single keys from the terminal on a thread of its own; `press(key)` gets each.

    `stdin` (default: sys.stdin when started) is where the keys come from."""

    def __init__(self, press: Callable[[str], None], *, stdin: TextIO | None = None) -> None:
        self._press = press
        self._stdin = stdin
        self.error: str | None = None  # the last key whose press raised (the thread goes on)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._console = None

    def start(self) -> bool:
        """Start reading keys if stdin is a terminal this platform can read; False (and
        nothing done) otherwise."""
        stdin = self._stdin if self._stdin is not None else sys.stdin
        try:
            if stdin is None or not stdin.isatty():
                return False
            self._console = console_for(sys.platform)(stdin)
        except (ImportError, OSError, ValueError, AttributeError):
            return False  # no console module on this platform, or no real terminal: keys off
        self._stop.clear()
        self._thread = threading.Thread(target=self._read, name="cadenza-keys", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """Stop reading and give the terminal back as it was; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        if self._console is not None:
            console, self._console = self._console, None
            console.restore()

    def _read(self) -> None:
        console = self._console
        while not self._stop.is_set() and console is not None:
            key = console.read(POLL_SECONDS)
            if key and not self._stop.is_set():
                try:
                    self._press(key)
                except Exception as error:  # one key's failure must not end the keys
                    self.error = f"key {key!r} failed: {type(error).__name__}: {error}"


class TerminalKeys(KeyReader):
    """The live engine's knobs on keys: each key goes to its control surface (the key map and
    KEYS_HELP are cadenza.realtime.controls')."""

    def __init__(self, controls: ControlSurface, *, stdin: TextIO | None = None) -> None:
        super().__init__(controls.press, stdin=stdin)
        self.controls = controls

    def press(self, key: str) -> None:
        self.controls.press(key)
