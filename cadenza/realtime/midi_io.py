"""MIDI port objects: an output cadenza sends to, an input it reads from, and a router that
makes several outputs one. ports.py opens them (which rtmidi API, virtual or by name).

MidiInput reads rtmidi's own queue from a thread of ours rather than taking rtmidi's
callback: a callback runs Python on rtmidi's thread (JACK's process thread), where waiting
for the GIL makes a JACK client late in its cycle and loses its input (see MidiInput); it
also made closing a port deadlock-prone and cancelling a callback a use-after-free.
Any rtmidi call after `delete()` segfaults, so every call goes through the port's lock and
checks the closed flag inside it; and `delete()` comes a little after `close_port()`
(release_client).
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Iterator, Sequence

import rtmidi

from cadenza.errors import CadenzaError
from cadenza.midi_status import channel_of
from cadenza.realtime.library_noise import library_noise

API_BY_NAME: dict[str, int] = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}
NAME_BY_API: dict[int, str] = {api: name for name, api in API_BY_NAME.items()}

# The reader's look at rtmidi's queue while input comes, and after IDLE_AFTER_SECONDS without
# any. A look costs a wake-up (about 30 us of CPU here): idle, 250 a second are 1.5% of a core.
ACTIVE_POLL_SECONDS = 0.0005
IDLE_POLL_SECONDS = 0.004
IDLE_AFTER_SECONDS = 0.25
CLOCK_SLEW = 0.001  # how fast the MIDI system's clock may drift from ours (s/s): a bound
# Freeing a JACK client safely. libjack's notification thread walks the client's port list
# when the server recomputes latencies (after any graph change: a port or client gone, a
# connection), while jack_port_unregister edits that list on the caller's thread: a port
# unregistered during such a notification segfaults (jack2 issue #216; upstream's advice is to
# deactivate first, which RtMidi does not). Most notifications here come from our own closes:
# closing two ports back to back unregistered the second while its client was still handling
# the first one's notification. So clients are freed one at a time, each after the graph has
# been still for RELEASE_GRACE_SECONDS. And RtMidi 5's JACK output frees its ring buffer before
# closing its client: a process cycle that began while the port was being unregistered could
# read it, so the client is freed that long after its port closes (a cycle is 1.3-21 ms).
RELEASE_GRACE_SECONDS = 0.05
# A connection JACK makes takes effect at the start of one of its next cycles: a message sent
# before then is written into a cycle that has no connection yet, and lost (a note-off lost
# so would leave a note stuck on a synth plugged back). An output connected by name holds its
# sends until two of the longest usual cycles (1024 frames at 48 kHz: 21 ms) have begun.
CONNECTION_SETTLE_SECONDS = 0.045
_release_lock = threading.Lock()
_last_change = 0.0  # perf_counter time of our last port or client freed


@contextlib.contextmanager
def _graph_change() -> Iterator[None]:
    """One change of ours to the JACK graph at a time, each once the graph has been still
    RELEASE_GRACE_SECONDS since the last."""
    global _last_change
    with _release_lock:
        time.sleep(max(0.0, _last_change + RELEASE_GRACE_SECONDS - time.perf_counter()))
        try:
            yield
        finally:
            _last_change = time.perf_counter()


def close_port_when_still(midi) -> None:
    """Unregister an rtmidi client's port once the graph has been still a while."""
    with _graph_change():
        midi.close_port()


def release_client(midi) -> None:
    """Close an rtmidi client's port, then free the client (see RELEASE_GRACE_SECONDS)."""
    close_port_when_still(midi)
    with _graph_change():  # also a grace after the port closed, for RtMidi's output ring
        midi.delete()


class Arrivals:
    """perf_counter stamps for messages read late from rtmidi's queue, from rtmidi's time
    between messages (the MIDI system's clock: JACK's, ALSA's, CoreMIDI's).

    Each message's time on rtmidi's clock is the sum of the gaps before it; `offset` maps
    that clock to perf_counter. A message read at `now` arrived at or before `now`, so
    now - its rtmidi time bounds the offset from above; the least bound seen is the offset
    (within the reader's quickest look). It may grow by CLOCK_SLEW a second, so that two
    clocks drifting apart (ntp slewing ours) are followed, and a stamp is never after `now`.
    """

    def __init__(self) -> None:
        self.offset: float | None = None
        self.rtmidi_time = 0.0  # of the last message read
        self._first = True

    def stamp(self, got: list[tuple[bytes, float]], now: float) -> list[tuple[float, bytes]]:
        times = []
        for _message, delta in got:
            if not self._first:
                self.rtmidi_time += delta
            self._first = False
            times.append(self.rtmidi_time)
        bound = now - times[-1]
        if self.offset is None or bound < self.offset:
            self.offset = bound
        else:
            span = times[-1] - times[0]
            self.offset = min(self.offset + CLOCK_SLEW * max(span, 0.0), bound)
        return [(min(self.offset + t, now), message)
                for t, (message, _delta) in zip(times, got, strict=True)]


def api_name(api: int) -> str:
    return NAME_BY_API.get(api, rtmidi.get_api_name(api))


def first_match(ports: Sequence[str], pattern: str) -> str | None:
    wanted = pattern.casefold()
    return next((name for name in ports if wanted in name.casefold()), None)


class PortError(CadenzaError):
    """A MIDI port cannot be found, opened or used."""


class PortClosedError(PortError):
    """A message was sent through a port after close(), or while its target was lost."""


class MidiPort:
    """What inputs and outputs share: a name, a lock around rtmidi calls, loss and reconnection."""

    direction = ""  # 'input' or 'output', as seen by cadenza

    def __init__(self, midi, api: int, *, name: str, pattern: str | None, local_name: str):
        self._midi = midi
        self.api = api
        self.name = name  # the full name of our virtual port, or of the port we connected to
        self._pattern = pattern  # what the user asked for; None for a virtual port
        self._local_name = local_name
        self._lock = threading.Lock()
        self._closed = False
        self._connected = True
        self.reconnects = 0

    @property
    def virtual(self) -> bool:
        return self._pattern is None

    @property
    def closed(self) -> bool:
        return self._closed

    def is_alive(self) -> bool:
        """False once closed, or when the port we connected to is no longer listed.

        A virtual port is alive until closed. A port that vanished and came back under the
        same name between two calls looks alive here although its connection is gone (rtmidi
        cannot tell): reconnect_if_back() after a loss, not this, restores it.
        """
        if self.virtual:
            return not self._closed
        with self._lock:  # closed is checked under the lock: close() may have freed the client
            return not self._closed and self._connected and self.name in self._midi.get_ports()

    def reconnect_if_back(self) -> bool:
        """For a port connected by name: notice a loss and reconnect when a match is listed again.

        Meant to be called periodically by the control thread. Matches the original substring,
        not the old full name: a USB keyboard plugged back gets new ALSA client numbers.
        Returns True when it reconnected on this call.
        """
        if self.virtual:
            return False
        with self._lock:
            if self._closed:
                return False
            ports = self._midi.get_ports()
            if self._connected and self.name in ports:
                return False
            if self._connected:
                self._disconnect_locked()
            match = first_match(ports, self._pattern)
            if match is None:
                return False
            try:
                with library_noise():  # libjack reports a refused connection on fd 2
                    self._midi.open_port(ports.index(match), self._local_name)
            except rtmidi.RtMidiError:  # gone again since the listing: try on the next call
                return False
            self._after_open_locked()
            self.name = match
            self._connected = True
            self.reconnects += 1
            return True

    def close(self) -> None:
        """Close the port and free the client; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._connected = False
            release_client(self._midi)

    def _disconnect_locked(self) -> None:
        close_port_when_still(self._midi)
        self._connected = False

    def _after_open_locked(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "virtual" if self.virtual else "connected"
        return f"<{type(self).__name__} {kind} {self.name!r} ({api_name(self.api)})>"


class MidiOutput(MidiPort):
    """A port cadenza sends to. send() is safe against a concurrent close()."""

    direction = "output"

    def send(self, message: Sequence[int]) -> None:
        """Send one MIDI message now. Raises PortClosedError after close() or while lost.

        Note for JACK: rtmidi queues the bytes in a 16 KiB ring read once per JACK period and
        silently drops what does not fit (about 2,300 three-byte messages per period).
        """
        with self._lock:
            if self._closed or not self._connected:
                state = "closed" if self._closed else "lost"
                raise PortClosedError(f"MIDI output {self.name!r} is {state}")
            self._midi.send_message(message)

    def _after_open_locked(self) -> None:
        time.sleep(CONNECTION_SETTLE_SECONDS)  # under the lock: a send waits, see the constant


class MidiInput(MidiPort):
    """A port cadenza reads from, through rtmidi's own queue.

    No Python runs on rtmidi's thread: on JACK that thread is the client's process thread,
    and a Python callback there waits for the GIL whenever another thread holds it; a JACK
    client late in its cycle loses its input or reads the previous cycle's again (measured:
    a DAW's clock doubled, a player's note-offs lost, 24k of a 40k flood gone). rtmidi's
    thread fills its queue in C instead, and a reader thread of ours drains it every
    ACTIVE_POLL_SECONDS (IDLE_POLL_SECONDS when nothing came for a while).

    The stamps do not depend on when the reader ran: rtmidi gives each message's time since
    the one before, on the MIDI system's clock, so a message is stamped at the first time the
    reader could have seen it, less what rtmidi says came after it (Arrivals).

    Our queue is bounded: when it is full the oldest event is dropped and counted, so a flood
    costs neither memory nor growing latency; what is kept is the most recent input.
    It passes bytes as they came (raw-byte backends such as JACK and CoreMIDI pass any): the
    engine checks each with midi_status.well_formed where it reads them (LiveEngine.step).
    """

    direction = "input"

    def __init__(self, midi, api: int, *, name: str, pattern: str | None, local_name: str,
                 capacity: int):
        super().__init__(midi, api, name=name, pattern=pattern, local_name=local_name)
        self.capacity = capacity
        self.dropped = 0
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque(maxlen=capacity)
        self._arrived = threading.Event()  # set by the reader: wakes whoever waits for input
        self._arrivals = Arrivals()
        self._reader: threading.Thread | None = None

    def start_reading(self) -> None:
        """Start the reader thread (before the port opens, so the first message is read)."""
        if self._reader is None:
            self._reader = threading.Thread(target=self._read, name="cadenza-midi-in",
                                             daemon=True)
            self._reader.start()

    def _read(self) -> None:
        idle_since = time.perf_counter()
        while not self._closed:
            with self._lock:
                got = self._take_waiting() if self._connected and not self._closed else []
            now = time.perf_counter()
            if got:
                queue = self._queue
                for stamp, message in self._arrivals.stamp(got, now):
                    if len(queue) == self.capacity:
                        self.dropped += 1
                    queue.append((stamp, message))
                self._arrived.set()
                idle_since = now
            idle = now - idle_since > IDLE_AFTER_SECONDS
            time.sleep(IDLE_POLL_SECONDS if idle else ACTIVE_POLL_SECONDS)

    def _take_waiting(self) -> list[tuple[bytes, float]]:
        """What rtmidi queued since the last look: (bytes, seconds since the message before)."""
        got = []
        while (event := self._midi.get_message()) is not None:
            got.append((bytes(event[0]), event[1]))
        return got

    def share_arrival(self, arrived: threading.Event) -> None:
        """Set `arrived` when a message comes in: one event for several ports, so that a
        reader waits on all of them at once (cadenza.realtime.inputs.InputPorts)."""
        self._arrived = arrived

    def _after_open_locked(self) -> None:
        self._arrivals = Arrivals()  # rtmidi's clock starts again with the new connection

    def ignore_types(self, sysex: bool = True, timing: bool = False,
                     active_sense: bool = True) -> None:
        """Which message kinds rtmidi filters out; by default MIDI clock passes (for clock sync)."""
        with self._lock:
            if not self._closed:
                self._midi.ignore_types(sysex=sysex, timing=timing, active_sense=active_sense)

    def poll(self) -> tuple[float, bytes] | None:
        """The oldest waiting (perf_counter time, message bytes), or None."""
        try:
            return self._queue.popleft()
        except IndexError:
            return None

    def wait(self, timeout: float) -> None:
        """Sleep up to `timeout` seconds, or until an event comes in (then drain it)."""
        if self._arrived.wait(timeout):
            self._arrived.clear()

    def drain(self) -> list[tuple[float, bytes]]:
        """Every waiting event, oldest first."""
        queue = self._queue
        return [queue.popleft() for _ in range(len(queue))]

    def __len__(self) -> int:
        return len(self._queue)


class ChannelRouter:
    """One output made of several ports: a channel message on a routed channel goes to that
    channel's port, anything else to the main port. With it each backing part has a port of
    its own (a DAW track per part) while the scheduler still sees one output."""

    def __init__(self, main: MidiOutput, routes: dict[int, MidiOutput]):
        self.main = main
        self.routes = dict(routes)  # wire channel (0..15) -> port

    @property
    def name(self) -> str:
        return self.main.name

    @property
    def ports(self) -> list[MidiOutput]:
        return [self.main, *self.routes.values()]

    def send(self, message: Sequence[int]) -> None:
        channel = channel_of(message) if message else None
        port = self.routes.get(channel, self.main) if channel is not None else self.main
        port.send(message)

    def is_alive(self) -> bool:
        return all(port.is_alive() for port in self.ports)

    def close(self) -> None:
        for port in self.ports:
            port.close()
