"""MIDI port objects: an output cadenza sends to, an input it reads from, and a router that
makes several outputs one. ports.py opens them (which rtmidi API, virtual or by name).

Two python-rtmidi hazards shape MidiInput (both reproduced on JACK under an input flood):
- its input callback runs on rtmidi's thread (JACK's process thread) and takes the GIL. A
  thread that holds the GIL while closing the port waits for that thread, which waits for the
  GIL: a deadlock. So the callback is cancelled first and the GIL released for a moment
  before the port is closed.
- cancelling the callback frees the (func, data) tuple whose address rtmidi's thread may
  already hold: a use-after-free that segfaults. So every such tuple is kept alive as long
  as the port object.
And one in MidiOut: sending after `delete()` segfaults, so every call goes through a lock and
a closed flag.
"""

from __future__ import annotations

import collections
import gc
import threading
import time
from collections.abc import Callable, Sequence

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

# Long enough for a callback already waiting for the GIL to run (a JACK period is 1-20 ms).
CALLBACK_SETTLE_SECONDS = 0.05


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
        if self._closed:
            return False
        if self.virtual:
            return True
        with self._lock:
            return self._connected and self.name in self._midi.get_ports()

    def reconnect_if_back(self) -> bool:
        """For a port connected by name: notice a loss and reconnect when a match is listed again.

        Meant to be called periodically by the control thread. Matches the original substring,
        not the old full name: a USB keyboard plugged back gets new ALSA client numbers.
        Returns True when it reconnected on this call.
        """
        if self._closed or self.virtual:
            return False
        with self._lock:
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
            self._disconnect_locked()
            self._midi.delete()

    def _disconnect_locked(self) -> None:
        self._midi.close_port()
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


class MidiInput(MidiPort):
    """A port cadenza reads from: the rtmidi callback stamps and enqueues, nothing else.

    The queue is bounded: when it is full the oldest event is dropped and counted, so a flood
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
        self._arrived = threading.Event()  # set by the callback: wakes a reader that waits
        self._callback: Callable = self._on_message  # one bound method, to find it again below
        self._held_callbacks: list[tuple] = []

    def _on_message(self, event: tuple[list[int], float], _data: object,
                    _now: Callable[[], float] = time.perf_counter) -> None:
        # rtmidi's thread (JACK's process thread): timestamp first, then enqueue. The count is
        # exact while nobody drains concurrently, and off by at most one per race otherwise.
        stamp = _now()
        queue = self._queue
        if len(queue) == self.capacity:
            self.dropped += 1
        queue.append((stamp, bytes(event[0])))
        self._arrived.set()

    def start_callback(self) -> None:
        self._midi.set_callback(self._callback)
        # See the module docstring: python-rtmidi frees this tuple on cancel while rtmidi's
        # thread may still use it. Found through gc because python-rtmidi keeps it private.
        self._held_callbacks.extend(
            ref for ref in gc.get_referents(self._midi)
            if isinstance(ref, tuple) and ref and ref[0] is self._callback
        )

    def _disconnect_locked(self) -> None:
        # Stop rtmidi calling into Python, then let a callback already waiting for the GIL
        # finish, so that close_port() does not wait on a thread that waits on us.
        self._midi.cancel_callback()
        time.sleep(CALLBACK_SETTLE_SECONDS)
        self._midi.close_port()
        self._connected = False

    def _after_open_locked(self) -> None:
        self.start_callback()

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
