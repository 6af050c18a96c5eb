"""A real JACK server (dummy backend: real MIDI ports, no hardware) and test-side clients.

`jack_server` starts `jackd --no-realtime -d dummy -r 48000 -p 256` under a name of its own
and makes cadenza (and every child process) use it. `player` sends into cadenza's input
ports and `recorder` records what comes out of its output ports, stamped with
time.perf_counter; both are plain python-rtmidi JACK clients, independent of
cadenza.realtime.ports.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import rtmidi

JACK = rtmidi.API_UNIX_JACK
ARRIVAL_TIMEOUT = 10.0  # seconds: a functional limit ("never arrived"), not a latency target


def jackd_command(server_name: str) -> list[str]:
    return ["jackd", "--name", server_name, "--no-realtime", "-d", "dummy", "-r", "48000",
            "-p", "64"]


def jack_answers(env: dict[str, str] | None = None) -> bool:
    try:
        listing = subprocess.run(["jack_lsp"], capture_output=True, timeout=10, env=env)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return listing.returncode == 0


def unique(prefix: str) -> str:
    """A port name no other test uses, so substring matches are unambiguous."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory) -> Iterator[str]:
    """A JACK server of our own, by name, for the whole session; its name is yielded.

    Its own name (JACK_DEFAULT_SERVER, honoured by libjack, jack_lsp and jack_connect, and
    inherited by child processes) rather than the default server: tests must not create
    ports in a musician's running JACK session, nor share one with another test run that
    may stop it or run it at another period.
    """
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        pytest.skip("jackd is not installed (apt-get install jackd2; `make test` installs it)")
    name = f"cadenza-test-{os.getpid()}"
    env = {**os.environ, "JACK_DEFAULT_SERVER": name}
    log_path: Path = tmp_path_factory.mktemp("jack") / "jackd.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(jackd_command(name), stdout=log, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
    give_up = time.monotonic() + 20
    while not jack_answers(env):
        if process.poll() is not None or time.monotonic() > give_up:
            process.kill()
            process.wait()
            pytest.fail(f"jackd did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)
    patch = pytest.MonkeyPatch()
    patch.setenv("JACK_DEFAULT_SERVER", name)
    patch.setenv("CADENZA_MIDI_API", "jack")
    try:
        yield name
    finally:
        patch.undo()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _find(ports: Sequence[str], name: str) -> int:
    """Index of the port called `name`, or else the only one containing it."""
    if name in ports:
        return ports.index(name)
    matches = [i for i, port in enumerate(ports) if name in port]
    assert len(matches) == 1, f"{name!r} matches {len(matches)} of {ports}"
    return matches[0]


class Recorder:
    """A JACK MIDI input for the test side: keeps every message with its perf_counter stamp."""

    def __init__(self, client_name: str = "cadenza-test") -> None:
        self.midi = rtmidi.MidiIn(JACK, name=client_name)
        self.midi.ignore_types(sysex=False, timing=False, active_sense=False)
        self.events: list[tuple[float, list[int]]] = []
        self._arrived = threading.Condition()
        self._callback = self._on_message
        self.midi.set_callback(self._callback)
        # python-rtmidi frees this tuple on cancel while JACK's thread may hold it (see ports.py).
        self._held = [r for r in gc.get_referents(self.midi)
                      if isinstance(r, tuple) and r and r[0] is self._callback]
        self.port_name = ""
        self.closed = False

    def _on_message(self, event, _data) -> None:
        stamp = time.perf_counter()
        with self._arrived:
            self.events.append((stamp, event[0]))
            self._arrived.notify_all()

    def connect(self, source: str) -> Recorder:
        """Connect to cadenza's output port (its full name, or a unique part of it)."""
        self.midi.open_port(_find(self.midi.get_ports(), source), "recorder")
        self.port_name = "recorder"
        return self

    def open_virtual(self, name: str | None = None) -> Recorder:
        """A port for cadenza to connect to by name."""
        self.port_name = name or unique("test-recorder")
        self.midi.open_virtual_port(self.port_name)
        return self

    def wait_for(self, count: int, timeout: float = ARRIVAL_TIMEOUT) -> list[list[int]]:
        """The first `count` messages; fails if fewer ever arrive."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.events) >= count, timeout)
            got = [message for _, message in self.events]
        assert len(got) >= count, f"only {len(got)} of {count} messages arrived: {got[-5:]}"
        return got[:count]

    def wait_until(self, predicate, timeout: float = ARRIVAL_TIMEOUT) -> list[list[int]]:
        """Wait until predicate(messages so far) holds; fails if it never does."""
        with self._arrived:
            ok = self._arrived.wait_for(lambda: predicate(self.messages_locked()), timeout)
            got = self.messages_locked()
        assert ok, f"condition never met; last messages: {got[-5:]}"
        return got

    def messages_locked(self) -> list[list[int]]:
        return [message for _, message in self.events]

    @property
    def messages(self) -> list[list[int]]:
        with self._arrived:
            return self.messages_locked()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.midi.cancel_callback()
        time.sleep(0.05)  # let a callback waiting for the GIL finish before JACK waits for it
        self.midi.close_port()
        self.midi.delete()


class Player:
    """A JACK MIDI output for the test side: plays into cadenza's input ports."""

    def __init__(self, client_name: str = "cadenza-test") -> None:
        self.midi = rtmidi.MidiOut(JACK, name=client_name)
        self.port_name = ""
        self.closed = False

    def connect(self, destination: str) -> Player:
        self.midi.open_port(_find(self.midi.get_ports(), destination), "player")
        self.port_name = "player"
        return self

    def open_virtual(self, name: str | None = None) -> Player:
        self.port_name = name or unique("test-player")
        self.midi.open_virtual_port(self.port_name)
        return self

    def send(self, message: Sequence[int]) -> float:
        """Send now; returns the perf_counter time just before sending."""
        stamp = time.perf_counter()
        self.midi.send_message(message)
        return stamp

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.midi.close_port()
            self.midi.delete()


@pytest.fixture
def recorder(jack_server) -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.close()


@pytest.fixture
def player(jack_server) -> Iterator[Player]:
    play = Player()
    yield play
    play.close()


@pytest.fixture
def make_recorder(jack_server):
    """For tests that need more than one recorder, or a fresh one after closing the first."""
    made: list[Recorder] = []

    def make() -> Recorder:
        made.append(Recorder())
        return made[-1]

    yield make
    for rec in made:
        rec.close()


@pytest.fixture
def make_player(jack_server):
    made: list[Player] = []

    def make() -> Player:
        made.append(Player())
        return made[-1]

    yield make
    for play in made:
        play.close()


def sounding_after(messages: Sequence[Sequence[int]]) -> dict[tuple[int, int], int]:
    """Notes still sounding at the end of a recorded stream, counted per (channel, pitch).

    Strict: only note-offs end notes (an all-notes-off CC does not count here)."""
    notes: dict[tuple[int, int], int] = {}
    for message in messages:
        if len(message) < 3:
            continue
        kind, key = message[0] & 0xF0, (message[0] & 0x0F, message[1])
        if kind == 0x90 and message[2] > 0:
            notes[key] = notes.get(key, 0) + 1
        elif kind in (0x80, 0x90) and notes.get(key):
            notes[key] -= 1
            if not notes[key]:
                del notes[key]
    return notes
