"""The key reader on every platform: a real pty on Linux and as on macOS, a console as on
Windows (sys.platform patched, msvcrt stood in for, termios blocked), and keys off where no
terminal is attached. No engine, no ports: the readers alone."""

from __future__ import annotations

import io
import os
import queue
import sys
import threading
import time
import types

import pytest

from cadenza.realtime.audio_knobs import AudioKnobs
from cadenza.realtime.keys import KeyReader, console_for


class Pressed:
    def __init__(self) -> None:
        self.keys: queue.Queue[str] = queue.Queue()

    def __call__(self, key: str) -> None:
        self.keys.put(key)

    def take(self, count: int, timeout: float = 5.0) -> str:
        return "".join(self.keys.get(timeout=timeout) for _ in range(count))


class FakeConsole:
    """msvcrt as a Windows console offers it: kbhit() and getwch(), keys typed by the test."""

    def __init__(self) -> None:
        self.typed: queue.Queue[str] = queue.Queue()
        self.module = types.ModuleType("msvcrt")
        self.module.kbhit = lambda: not self.typed.empty()
        self.module.getwch = self.typed.get_nowait

    def type(self, keys: str) -> None:
        for key in keys:
            self.typed.put(key)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def windows(monkeypatch) -> FakeConsole:
    """This process as on Windows: sys.platform 'win32', msvcrt present, no termios or tty."""
    console = FakeConsole()
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setitem(sys.modules, "msvcrt", console.module)
    monkeypatch.setitem(sys.modules, "termios", None)  # `import termios` raises ImportError
    monkeypatch.setitem(sys.modules, "tty", None)
    return console


def test_the_reader_is_chosen_by_platform():
    assert console_for("win32").__name__ == "_WindowsConsole"
    assert console_for("cygwin").__name__ == "_WindowsConsole"
    assert console_for("linux").__name__ == "_PosixConsole"
    assert console_for("darwin").__name__ == "_PosixConsole"


def test_windows_console_keys(windows):
    pressed = Pressed()
    reader = KeyReader(pressed, stdin=Tty())
    assert reader.start()
    try:
        windows.type("+-")
        windows.type("\xe0H")  # an arrow key: a prefix and a scan code, not two knob turns
        windows.type("q")
        assert pressed.take(3) == "+-q"
    finally:
        reader.stop()
    reader.stop()  # twice is fine
    assert pressed.keys.empty()


def test_windows_audio_knobs_turn_and_quit(windows, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Tty())
    target = types.SimpleNamespace(temperature=1.0, cfg=3.0)
    knobs = AudioKnobs(target)
    assert knobs.start()
    try:
        windows.type("+]q")
        assert knobs.quit.wait(5)
        assert target.temperature == 1.1 and target.cfg == 3.5
    finally:
        knobs.stop()


def test_windows_without_a_console_module_keys_are_off(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setitem(sys.modules, "msvcrt", None)
    assert not KeyReader(Pressed(), stdin=Tty()).start()


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_posix_terminal_keys(monkeypatch, platform):
    import termios

    monkeypatch.setattr(sys, "platform", platform)
    controller, terminal = os.openpty()
    stdin = os.fdopen(terminal, "r", closefd=True)
    try:
        before = termios.tcgetattr(terminal)
        pressed = Pressed()
        reader = KeyReader(pressed, stdin=stdin)
        assert reader.start()
        assert termios.tcgetattr(terminal)[3] & termios.ICANON == 0  # cbreak: no Enter needed
        os.write(controller, b"[]p")
        assert pressed.take(3) == "[]p"
        reader.stop()
        assert termios.tcgetattr(terminal) == before  # the terminal as it was
    finally:
        stdin.close()
        os.close(controller)


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_no_terminal_no_keys(monkeypatch, platform):
    monkeypatch.setattr(sys, "platform", platform)
    reader = KeyReader(Pressed(), stdin=io.StringIO("+++"))  # a pipe, a file: not a tty
    assert not reader.start()
    reader.stop()
    monkeypatch.setattr(sys, "stdin", None)  # pythonw.exe, a service: no stdin at all
    assert not KeyReader(Pressed()).start()


def test_a_tty_that_is_no_terminal_keys_are_off(monkeypatch):
    """isatty() says yes but termios cannot read it (an IDE's console, a pseudo-tty gone)."""
    monkeypatch.setattr(sys, "platform", "linux")
    reader = KeyReader(Pressed(), stdin=Tty())  # StringIO has no fileno()
    assert not reader.start()


def test_stop_is_prompt():
    pressed = Pressed()
    controller, terminal = os.openpty()
    stdin = os.fdopen(terminal, "r", closefd=True)
    try:
        reader = KeyReader(pressed, stdin=stdin)
        assert reader.start()
        started = time.perf_counter()
        reader.stop()
        assert time.perf_counter() - started < 0.5
        assert not any(t.name == "cadenza-keys" for t in threading.enumerate())
    finally:
        stdin.close()
        os.close(controller)


def test_what_windows_runs_imports_no_posix_only_module():
    """`cadenza live` and `cadenza audio`'s modules import where termios, tty, fcntl and pty do
    not exist (a child process that refuses them, as Windows would)."""
    import subprocess

    code = (
        "import sys\n"
        "for name in ('termios', 'tty', 'fcntl', 'pty', 'resource'): sys.modules[name] = None\n"
        "import cadenza.cli, cadenza.commands.live, cadenza.commands.audio\n"
        "import cadenza.realtime.live, cadenza.realtime.audio_play, cadenza.realtime.audio_knobs\n"
        "import cadenza.realtime.keys, cadenza.realtime.ports, cadenza.demo, cadenza.render\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
