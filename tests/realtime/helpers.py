"""Shared helpers of the realtime tests, in two layers.

Fakes, for unit tests of code that takes a protocol (Scheduler(output), Performer(schedule),
BackingLoop(generator, output, grid), LiveEngine(config, generator, midi_in, midi_out)):
- FakeOutput: an output port (send/is_alive/close/name) that records (perf_counter time,
  message) and can be "unplugged" (lose()), with the Recorder's wait_for/wait_until/messages.
- FakeInput: an input port shaped like cadenza.realtime.ports.MidiInput (poll, drain, wait,
  is_alive, reconnect_if_back, close, name, capacity, dropped): the test feeds it messages
  (play/feed) and can unplug and plug it back.
- FakeClock: a settable perf_counter-like clock for code that is handed `now`.
- fake_engine(): a LiveEngine on a real bundle with a FakeInput and a FakeOutput.

JACK end-to-end helpers, for what only a real server shows (timing through JACK, rtmidi's
callbacks, port loss and reconnection by name, the process's signals): `Player` sends into
cadenza's input ports and `Recorder` records what comes out of its output ports, stamped with
time.perf_counter; both are plain python-rtmidi JACK clients, independent of
cadenza.realtime.ports. The fixtures that make them live in tests/realtime/conftest.py.
"""

from __future__ import annotations

import collections
import itertools
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from difflib import SequenceMatcher
from pathlib import Path

import rtmidi

from cadenza.realtime.midi_io import release_client
from cadenza.realtime.ports import PortClosedError

# --- fakes ---------------------------------------------------------------------------------

class _Recording:
    """(perf_counter time, message) pairs with the Recorder's ways of waiting for them."""

    def __init__(self) -> None:
        self.events: list[tuple[float, list[int]]] = []
        self._arrived = threading.Condition()

    def _record(self, message: Sequence[int], stamp: float | None = None) -> float:
        stamp = time.perf_counter() if stamp is None else stamp
        with self._arrived:
            self.events.append((stamp, list(message)))
            self._arrived.notify_all()
        return stamp

    def wait_for(self, count: int, timeout: float = 10.0) -> list[list[int]]:
        """The first `count` messages; fails if fewer ever arrive."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.events) >= count, timeout)
            got = [message for _, message in self.events]
        assert len(got) >= count, f"only {len(got)} of {count} messages arrived: {got[-5:]}"
        return got[:count]

    def wait_until(self, predicate: Callable[[list[list[int]]], bool],
                   timeout: float = 10.0) -> list[list[int]]:
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


class FakeOutput(_Recording):
    """An output port for Scheduler(output), BackingLoop's scheduler or LiveEngine's midi_out:
    every send() is kept as (perf_counter time, message). After lose() (the cable is pulled)
    send raises PortClosedError and is_alive() is False, as MidiOutput does; `fail_with`
    makes send raise that exception instead."""

    def __init__(self, name: str = "fake out") -> None:
        super().__init__()
        self.name = name
        self.closed = False
        self.lost = False
        self.fail_with: BaseException | None = None
        self.sends = 0  # calls of send(), failed ones included

    def send(self, message: Sequence[int]) -> None:
        self.sends += 1
        if self.fail_with is not None:
            raise self.fail_with
        if self.closed or self.lost:
            state = "closed" if self.closed else "lost"
            raise PortClosedError(f"MIDI output {self.name!r} is {state}")
        self._record(message)

    def lose(self) -> None:
        self.lost = True

    def is_alive(self) -> bool:
        return not (self.closed or self.lost)

    def reconnect_if_back(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


class FakeInput:
    """An input port shaped like cadenza.realtime.ports.MidiInput: a bounded queue of
    (perf_counter time, message bytes) that the test fills with send()/feed(), read with
    poll()/drain()/wait(). unplug() makes is_alive() False (and drops what is sent meanwhile);
    plug_back() lets the next reconnect_if_back() reconnect, as a keyboard plugged back in."""

    def __init__(self, name: str = "fake in", capacity: int = 4096) -> None:
        self.name = name
        self.capacity = capacity
        self.dropped = 0
        self.reconnects = 0
        self.closed = False
        self.virtual = False
        self._plugged = True
        self._connected = True
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque(maxlen=capacity)
        self._arrived = threading.Event()
        self._lock = threading.Lock()

    # the test side: what a keyboard or a DAW would play
    def send(self, message: Sequence[int]) -> float:
        """Arrives now; returns its perf_counter time (as Player.send does)."""
        return self.feed(message)

    def feed(self, message: Sequence[int], stamp: float | None = None) -> float:
        stamp = time.perf_counter() if stamp is None else stamp
        if self.closed or not self._connected:
            return stamp
        with self._lock:
            if len(self._queue) == self.capacity:
                self.dropped += 1
            self._queue.append((stamp, bytes(message)))
        self._arrived.set()
        return stamp

    def unplug(self) -> None:
        self._plugged = False
        self._connected = False

    def plug_back(self) -> None:
        self._plugged = True

    # the engine side: cadenza.realtime.ports.MidiInput's interface
    def poll(self) -> tuple[float, bytes] | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def drain(self) -> list[tuple[float, bytes]]:
        with self._lock:
            events = list(self._queue)
            self._queue.clear()
        return events

    def wait(self, timeout: float) -> None:
        if self._arrived.wait(timeout):
            self._arrived.clear()

    def is_alive(self) -> bool:
        return not self.closed and self._connected

    def reconnect_if_back(self) -> bool:
        if self.closed or self._connected or not self._plugged:
            return False
        self._connected = True
        self.reconnects += 1
        return True

    def ignore_types(self, sysex: bool = True, timing: bool = False,
                     active_sense: bool = True) -> None:
        pass

    def close(self) -> None:
        self.closed = True
        self._arrived.set()

    def __len__(self) -> int:
        return len(self._queue)


class FakeClock:
    """A clock the test moves: call it for the time, advance() or set() it. For code that is
    handed `now` (BackingLoop.poll, PhraseDetector.poll, ClockFollower.feed)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    def set(self, t: float) -> float:
        self.now = t
        return t


def pulses(start: float, bpm: float, count: int) -> Iterable[tuple[float, list[int]]]:
    """`count` MIDI clock pulses (24 a quarter) at `bpm` from `start`: (time, [0xF8])."""
    period = 60.0 / bpm / 24
    return ((start + k * period, [0xF8]) for k in range(count))


# --- JACK end-to-end -----------------------------------------------------------------------

JACK = rtmidi.API_UNIX_JACK
ARRIVAL_TIMEOUT = 10.0  # seconds: a functional limit ("never arrived"), not a latency target


def unique(prefix: str) -> str:
    """A port name no other test uses, so substring matches are unambiguous."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"



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


def jack_port_names() -> list[str]:
    """Every port JACK lists (`jack_lsp`)."""
    return subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout.splitlines()


def jack_connections(port: str) -> list[str]:
    """The ports JACK lists as connected to `port` (`jack_lsp -c`)."""
    lines = subprocess.run(["jack_lsp", "-c"], capture_output=True, text=True).stdout.splitlines()
    if port not in lines:
        return []
    after = lines[lines.index(port) + 1:]
    return [line.strip() for line in itertools.takewhile(lambda line: line[:1].isspace(), after)]


def connected_count(port: str, ours: str) -> int:
    """How many of the test's ports called `ours` ("player", "recorder") JACK lists as
    connected to `port`."""
    return sum(p.endswith(":" + ours) for p in jack_connections(port))


def wait_for_jack_connection(port: str, ours: str, more_than: int, timeout: float = 10.0) -> None:
    """Until JACK lists more than `more_than` of our `ours` ports connected to `port`, then two
    cycles more (the server lists a connection before its next cycle carries it): a message
    sent before then is dropped."""
    give_up = time.monotonic() + timeout
    while connected_count(port, ours) <= more_than:
        if time.monotonic() > give_up:
            raise AssertionError(f"JACK never connected a {ours} to {port!r}")
        time.sleep(0.02)
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
from cadenza.realtime.midi_io import release_client
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
# The callback runs on the client's JACK thread, waiting for the GIL while the loop below
# holds it: a late client loses its cycle's input, so the loop hands it over within 0.2 ms.
sys.setswitchinterval(0.0002)
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
release_client(midi)
for stamp, message in pending:
    sys.stdout.write(repr(stamp) + " " + " ".join(map(str, message)) + "\\n")
sys.stdout.flush()
"""


class Recorder(_Recording):
    """A JACK MIDI input for the test side (in a child process, see RECORDER_CHILD): keeps
    every message with the perf_counter time it arrived."""

    def __init__(self) -> None:
        super().__init__()
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
            self._record([int(b) for b in message], float(stamp))

    def connect(self, source: str) -> Recorder:
        """Connect to cadenza's output port (its full name, or a unique part of it), and
        return once JACK carries the connection."""
        full = [p for p in jack_port_names() if p == source] or [
            p for p in jack_port_names() if source in p]
        before = connected_count(full[0], "recorder") if len(full) == 1 else 0
        self._start("connect", source)
        self.port_name = "recorder"
        if len(full) == 1:
            wait_for_jack_connection(full[0], "recorder", more_than=before)
        return self

    def open_virtual(self, name: str | None = None) -> Recorder:
        """A port for cadenza to connect to by name."""
        self.port_name = name or unique("test-recorder")
        self._start("virtual", self.port_name)
        return self

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
        """Connect to `destination` and return once JACK carries the connection: a message
        sent before then is dropped (JACK makes a connection at one of its next cycles)."""
        ports = self.midi.get_ports()
        target = ports[_find(ports, destination)]
        before = connected_count(target, "player")
        self.midi.open_port(ports.index(target), "player")
        self.port_name = "player"
        wait_for_jack_connection(target, "player", more_than=before)
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
            release_client(self.midi)



class StampedOutput:
    """The engine's real output port, with the perf_counter time each message was handed to
    it: where the engine put a note, before the transport carries it."""

    def __init__(self, port) -> None:
        self.port = port
        self.sent: list[tuple[float, list[int]]] = []

    @classmethod
    def around(cls, scheduler) -> StampedOutput:
        """Put one between a running engine's scheduler and its port (from its next send)."""
        stamped = cls(scheduler.output)
        scheduler.output = stamped
        return stamped

    def send(self, message: Sequence[int]) -> None:
        self.sent.append((time.perf_counter(), list(message)))
        self.port.send(message)

    def __getattr__(self, name: str):
        return getattr(self.port, name)  # is_alive, name...: the port's own


class JackLateCycles:
    """The cycles jackd's log says a client was late for ("JackEngine::XRun: client = NAME was
    not finished"), from when this was made on.

    Not run real-time (as the tests run it), JACK loses a late client's MIDI of that cycle,
    or hands its readers the cycle before it again: a message lost on the way between two
    clients is JACK's only where its server says a cycle was missed."""

    MISSED = re.compile(r"JackEngine::XRun: client = (.+) was not finished")

    def __init__(self, log: Path) -> None:
        self.log = log
        self.start = log.stat().st_size if log.exists() else 0

    def clients(self) -> list[str]:
        """The late client of each missed cycle since this was made (one entry per cycle
        and client)."""
        with open(self.log, "rb") as text:
            text.seek(self.start)
            return self.MISSED.findall(text.read().decode(errors="replace"))


def assert_arrived_as_sent(sent: Sequence[Sequence[int]], arrived: Sequence[Sequence[int]],
                           late: JackLateCycles) -> None:
    """Everything sent arrived, in order, and nothing else did; except where JACK's server
    said it missed a cycle. Then each stretch that differs must be a loss, or a repeat of
    messages sent near it (the cycle before, delivered again), and there may be no
    more such stretches than missed cycles."""
    sent = [tuple(m) for m in sent]
    arrived = [tuple(m) for m in arrived]
    stretches = [op for op in SequenceMatcher(None, sent, arrived, autojunk=False).get_opcodes()
                 if op[0] != "equal"]
    if not stretches:
        return
    missed = late.clients()
    shown = [(i1, sent[i1:i2], arrived[j1:j2]) for _, i1, i2, j1, j2 in stretches]
    print(f"differs from sent (sent index, sent, arrived): {shown[:5]}; missed: {missed[:5]}")
    assert len(stretches) <= len(missed), (
        f"sent and arrived differ in {len(stretches)} places (sent index, sent, arrived): "
        f"{shown[:5]}; jackd missed {len(missed)} cycles: {missed[:5]}")
    for _, i1, i2, j1, j2 in stretches:
        near = sent[max(0, i1 - 8):i2 + 8]  # (where a repeat is placed is up to difflib)
        assert all(m in near for m in arrived[j1:j2]), (
            f"arrived {arrived[j1:j2]} at sent index {i1}: never sent near it")


def assert_all_ended(messages: Sequence[Sequence[int]], late: JackLateCycles) -> None:
    """Every note a recorder heard begin, it heard end; a note left sounding is JACK's only
    where its server said it missed a cycle (one note-off lost each)."""
    sounding = sounding_after(messages)
    if sounding:
        missed = late.clients()
        assert sum(sounding.values()) <= len(missed), (
            f"still sounding: {sounding}; jackd missed {len(missed)} cycles: {missed[:5]}")
        print(f"still sounding: {sounding}; jackd missed: {missed[:5]}")


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


# --- playing into an engine --------------------------------------------------------------

PHRASE = [60, 64, 67, 72, 67, 64]
NOTE_ON = 0x90
NOTE_OFF = 0x80


def play_phrase(player, pitches=PHRASE, length=0.12, gap=0.03) -> float:
    """Plays the phrase (on a Player or a FakeInput); returns the time of the last note-off."""
    last = 0.0
    for pitch in pitches:
        player.send([NOTE_ON, pitch, 90])
        time.sleep(length)
        last = player.send([NOTE_OFF, pitch, 0])
        time.sleep(gap)
    return last


def feed_phrase(midi_in: FakeInput, pitches=PHRASE, length=0.12, gap=0.03) -> float:
    """The phrase play_phrase plays, as a FakeInput hands it over when it was played up to
    now: every message stamped with the time it was played, its last note-off now (no
    sleeping through it). Returns the time of the last note-off."""
    step = length + gap
    start = time.perf_counter() - (len(pitches) - 1) * step - length
    for k, pitch in enumerate(pitches):
        midi_in.feed([NOTE_ON, pitch, 90], start + k * step)
        last = midi_in.feed([NOTE_OFF, pitch, 0], start + k * step + length)
    return last


def wait_for(condition: Callable[[], bool], timeout: float = ARRIVAL_TIMEOUT,
             what: str = "the engine never got there") -> None:
    """Wait until condition() holds (polled every 5 ms); fails if it never does."""
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, what
        time.sleep(0.005)


def answer_played(engine) -> bool:
    """A call-and-response engine answered, and the answer is over: generated, and every
    message of it sent."""
    performer = engine.mode.performer
    return bool(performer.records) and not performer.busy and engine.scheduler.pending == 0


def note_ons(events):
    """The (time, message) pairs of `events` that start a note."""
    return [(t, m) for t, m in events if m[0] & 0xF0 == NOTE_ON and m[2] > 0]


def has_note_on(messages) -> bool:
    return any(m[0] & 0xF0 == NOTE_ON and (len(m) < 3 or m[2] > 0) for m in messages)


def connect(running, player=None, recorder=None) -> None:
    """Connect a Player to the engine's input and a Recorder to its output, and wait for JACK."""
    if player is not None:
        player.connect(f"{running.name} in")
    if recorder is not None:
        recorder.connect(f"{running.name} out")
    time.sleep(0.2)  # JACK makes connections at its next cycles


def live_config(bundle, **settings):
    """The LiveConfig the engine tests use: quiet, seeded, 0.3 s of silence ends a phrase."""
    from cadenza.realtime.config import load_live_config

    config = load_live_config(None, {"port_name": unique("cadenza"), "quiet": True, "seed": 11,
                                     "silence_seconds": 0.3, **settings})
    config.bundle = None if bundle is None else str(bundle)  # None: the shipped one
    return config


class RunningEngine:
    """`cadenza live` in a thread of the test process, with real JACK ports (open_engine)."""

    def __init__(self, bundle, **settings):
        from cadenza.realtime.live import open_engine

        config = live_config(bundle, **settings)
        self.name = config.port_name
        self.engine = open_engine(config)
        self.thread = threading.Thread(target=self.engine.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        stop_running(self.engine, self.thread)


def fake_engine(bundle, *, midi_in: FakeInput | None = None,
                midi_out: FakeOutput | None = None, **settings):
    """A LiveEngine on a real bundle whose ports are fakes: the same generator and checks as
    open_engine, without JACK. Run it with FakeRunningEngine (or call step() yourself)."""
    from cadenza.realtime.engine import LiveEngine
    from cadenza.realtime.live import live_generator

    config = live_config(bundle, **settings)
    generator = live_generator(config)
    midi_in = midi_in if midi_in is not None else FakeInput(f"{config.port_name} in")
    midi_out = midi_out if midi_out is not None else FakeOutput(f"{config.port_name} out")
    return LiveEngine(config, generator, midi_in, midi_out)


class FakeRunningEngine:
    """Like RunningEngine, on fake ports: `.input` is what the player plays into, `.output`
    what the engine sent."""

    def __init__(self, bundle, *, midi_in: FakeInput | None = None,
                 midi_out: FakeOutput | None = None, **settings):
        self.input = midi_in if midi_in is not None else FakeInput()
        self.output = midi_out if midi_out is not None else FakeOutput()
        self.engine = fake_engine(bundle, midi_in=self.input, midi_out=self.output, **settings)
        self.name = self.engine.config.port_name
        self.thread = threading.Thread(target=self.engine.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        stop_running(self.engine, self.thread)


def stop_running(engine, thread: threading.Thread) -> None:
    """End an engine run on `thread` as `cadenza live` does: stop, wait, close its ports."""
    engine.stop()
    thread.join(timeout=10)
    engine.close_ports()


def send_clock(player, period: float, stop: threading.Event) -> None:
    """24 ppqn from `player`, each pulse at its time, until `stop` is set."""
    start = time.perf_counter() + 0.001
    k = 0
    while not stop.is_set():
        while time.perf_counter() < start + k * period:
            time.sleep(0.0002)
        player.send([0xF8])
        k += 1
