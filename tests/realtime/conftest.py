"""A real JACK server (dummy backend: real MIDI ports, no hardware) and test-side clients.

`jack_server` starts `jackd --no-realtime -d dummy` (cadenza.realtime.jack) under a name of its own
and makes cadenza (and every child process) use it. `player` sends into cadenza's input
ports and `recorder` records what comes out of its output ports, stamped with
time.perf_counter; both are plain python-rtmidi JACK clients, independent of
cadenza.realtime.ports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence

import pytest
import rtmidi

from cadenza.errors import CadenzaError
from cadenza.realtime.audio_out import rescan_audio_devices
from cadenza.realtime.jack import start_dummy_jack, stop_jack

JACK = rtmidi.API_UNIX_JACK
ARRIVAL_TIMEOUT = 10.0  # seconds: a functional limit ("never arrived"), not a latency target


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
    try:
        process = start_dummy_jack(name, log_path=tmp_path_factory.mktemp("jack") / "jackd.log")
    except CadenzaError as error:
        pytest.fail(str(error))
    patch = pytest.MonkeyPatch()
    patch.setenv("JACK_DEFAULT_SERVER", name)
    patch.setenv("CADENZA_MIDI_API", "jack")
    try:
        yield name
    finally:
        patch.undo()
        stop_jack(process)


@pytest.fixture(scope="module")
def audio(jack_server) -> Iterator[str]:
    """PortAudio attached to the test's JACK server (it attaches once, at import, to whichever
    server $JACK_DEFAULT_SERVER named then), and detached before that server stops: PortAudio
    aborts the process at exit if its server went away first."""
    rescan_audio_devices()
    yield "JACK"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("JACK_DEFAULT_SERVER")  # back to the default server, if one runs
        rescan_audio_devices()


def jack_client(kind: type, client_name: str):
    """A python-rtmidi JACK client, tried three times: jackd2 refuses a new client now and
    then while another one is closing ("Cannot notify add client")."""
    for attempt in range(3):
        try:
            return kind(JACK, name=client_name)
        except rtmidi.SystemError:
            if attempt == 2:
                raise
            time.sleep(0.05)


def _find(ports: Sequence[str], name: str) -> int:
    """Index of the port called `name`, or else the only one containing it."""
    if name in ports:
        return ports.index(name)
    matches = [i for i, port in enumerate(ports) if name in port]
    assert len(matches) == 1, f"{name!r} matches {len(matches)} of {ports}"
    return matches[0]


# The recorder's JACK client lives in a child process. Its rtmidi callback runs on JACK's
# process thread and needs the GIL; in the test process it would wait behind cadenza's threads,
# JACK would skip its late cycles (at 64 frames a cycle is 1.3 ms) and messages would be lost
# or doubled by the test's own instrument. perf_counter is CLOCK_MONOTONIC on Linux, so the
# child's stamps compare with the parent's.
RECORDER_CHILD = """
import collections, gc, sys, time, rtmidi
mode, name = sys.argv[1], sys.argv[2]
for attempt in range(3):
    try:
        midi = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="cadenza-test")
        break
    except rtmidi.SystemError:
        if attempt == 2:
            raise
        time.sleep(0.05)
midi.ignore_types(sysex=False, timing=False, active_sense=False)
pending = collections.deque()
def on_message(event, data, now=time.perf_counter):
    pending.append((now(), event[0]))
midi.set_callback(on_message)
held = gc.get_referents(midi)  # python-rtmidi frees this on cancel (see ports.py)
if mode == "connect":
    ports = midi.get_ports()
    matches = [i for i, port in enumerate(ports) if port == name] or [
        i for i, port in enumerate(ports) if name in port]
    if len(matches) != 1:
        print(f"error {name!r} matches {len(matches)} of {ports}", flush=True)
        sys.exit(1)
    midi.open_port(matches[0], "recorder")
else:
    midi.open_virtual_port(name)
print("ready", flush=True)
import threading
quit_requested = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), quit_requested.set()), daemon=True).start()
while not quit_requested.wait(0.001):
    lines = []
    while pending:
        stamp, message = pending.popleft()
        lines.append(repr(stamp) + " " + " ".join(map(str, message)) + "\\n")
    if lines:
        sys.stdout.write("".join(lines))
        sys.stdout.flush()
midi.cancel_callback()
time.sleep(0.05)
midi.close_port()
midi.delete()
for stamp, message in pending:
    sys.stdout.write(repr(stamp) + " " + " ".join(map(str, message)) + "\\n")
sys.stdout.flush()
"""


class Recorder:
    """A JACK MIDI input for the test side (in a child process, see RECORDER_CHILD): keeps
    every message with the perf_counter time it arrived."""

    def __init__(self) -> None:
        self.events: list[tuple[float, list[int]]] = []
        self._arrived = threading.Condition()
        self._child: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self.port_name = ""
        self.closed = False

    def _start(self, mode: str, name: str) -> None:
        assert self._child is None, "a Recorder records one port"
        self._child = subprocess.Popen([sys.executable, "-c", RECORDER_CHILD, mode, name],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = self._child.stdout.readline().strip()
        if first != "ready":
            self._child.kill()
            self._child.wait()
            raise AssertionError(f"recorder could not {mode} {name!r}: {first}")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._child.stdout:
            stamp, *message = line.split()
            with self._arrived:
                self.events.append((float(stamp), [int(b) for b in message]))
                self._arrived.notify_all()

    def connect(self, source: str) -> Recorder:
        """Connect to cadenza's output port (its full name, or a unique part of it)."""
        self._start("connect", source)
        self.port_name = "recorder"
        return self

    def open_virtual(self, name: str | None = None) -> Recorder:
        """A port for cadenza to connect to by name."""
        self.port_name = name or unique("test-recorder")
        self._start("virtual", self.port_name)
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
        """Close the port (the child exits); what arrived before stays in `events`."""
        if self.closed:
            return
        self.closed = True
        if self._child is None:
            return
        try:
            self._child.stdin.write("quit\n")
            self._child.stdin.flush()
            self._child.wait(10)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self._child.kill()
            self._child.wait()
        self._reader.join(10)


class Player:
    """A JACK MIDI output for the test side: plays into cadenza's input ports."""

    def __init__(self, client_name: str = "cadenza-test") -> None:
        self.midi = jack_client(rtmidi.MidiOut, client_name)
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


def spawn_live(player: Player, *args: str, timeout: float = 20.0) -> tuple[subprocess.Popen, str]:
    """`cadenza live ARGS` in its own process on the test's JACK server, once its ports are
    open; returns the process and its port-name prefix."""
    name = unique("cadenza")
    process = subprocess.Popen(
        [sys.executable, "-m", "cadenza.cli", "live", "--port-name", name, *args],
        env={**os.environ, "CADENZA_MIDI_API": "jack"}, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while f"{name} in" not in " ".join(player.midi.get_ports()):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"cadenza live never opened its ports: {process.stderr.read()}")
        time.sleep(0.1)
    return process, name


def interrupt_live(process: subprocess.Popen, signum: int, recorder: Recorder) -> None:
    """Send `signum` to a running `cadenza live`: it must exit cleanly (status 0, no traceback)
    and leave no note sounding at the recorder."""
    try:
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    time.sleep(0.2)
    assert "Traceback" not in process.stderr.read()
    assert sounding_after(recorder.messages) == {}


def assert_live_fails_in_one_line(args: list[str], words: list[str]) -> None:
    """`cadenza live ARGS` refuses with exit status 2 and one line holding every word."""
    result = subprocess.run(
        [sys.executable, "-m", "cadenza.cli", "live", "--quiet", "--port-name",
         unique("cadenza"), *args],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "CADENZA_MIDI_API": "jack"})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(word in lines[0] for word in words), lines[0]
