"""MIDI ports: which rtmidi API to use, virtual or named ports, port loss and reconnection.

An API is chosen once per process: on Linux the ALSA sequencer, else a running JACK server
(ALSA needs /dev/snd/seq, which containers and some laptops lack); CoreMIDI on macOS; WinMM on
Windows, which has no virtual ports. `CADENZA_MIDI_API=alsa|jack|coremidi|winmm` forces one.

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
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence

import rtmidi

from cadenza.errors import CadenzaError

ENV_API = "CADENZA_MIDI_API"
API_BY_NAME: dict[str, int] = {
    "alsa": rtmidi.API_LINUX_ALSA,
    "jack": rtmidi.API_UNIX_JACK,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "winmm": rtmidi.API_WINDOWS_MM,
}
NAME_BY_API: dict[int, str] = {api: name for name, api in API_BY_NAME.items()}

NO_VIRTUAL_PORTS_ON_WINDOWS = (
    "Windows has no virtual MIDI ports: create a loopback port with loopMIDI "
    "(tobias-erichsen.de) or Windows MIDI Services, then pass its name (e.g. --out \"loopMIDI\")"
)

# Long enough for a callback already waiting for the GIL to run (a JACK period is 1-20 ms).
_CALLBACK_SETTLE_SECONDS = 0.05

_chosen_api: int | None = None


class PortError(CadenzaError):
    """A MIDI port cannot be found, opened or used."""


class PortClosedError(PortError):
    """A message was sent through a port after close(), or while its target was lost."""


def platform_apis(platform: str = sys.platform) -> list[int]:
    """The rtmidi APIs to try on this platform, best first."""
    if platform.startswith("linux"):
        return [rtmidi.API_LINUX_ALSA, rtmidi.API_UNIX_JACK]
    if platform == "darwin":
        return [rtmidi.API_MACOSX_CORE, rtmidi.API_UNIX_JACK]
    if platform.startswith(("win", "cygwin")):
        return [rtmidi.API_WINDOWS_MM]
    return [rtmidi.API_UNIX_JACK]


def _api_works(api: int) -> bool:
    # Constructing a client is the only reliable test: ALSA fails here without
    # /dev/snd/seq, JACK without a running server.
    try:
        probe = rtmidi.MidiOut(api, name="cadenza-probe")
    except (rtmidi.SystemError, RuntimeError):
        return False
    probe.delete()
    return True


def choose_api() -> int:
    """The rtmidi API for this process: `CADENZA_MIDI_API` if set, else the first that works."""
    global _chosen_api
    forced = os.environ.get(ENV_API, "").strip().lower()
    compiled = rtmidi.get_compiled_api()
    if forced:
        if forced not in API_BY_NAME:
            raise PortError(f"{ENV_API}={forced!r}: expected one of {', '.join(API_BY_NAME)}")
        api = API_BY_NAME[forced]
        if api not in compiled:
            have = ", ".join(NAME_BY_API.get(a, str(a)) for a in compiled) or "none"
            raise PortError(f"{ENV_API}={forced}: this python-rtmidi has no {forced} (has: {have})")
        return api
    if _chosen_api is not None:
        return _chosen_api
    candidates = [api for api in platform_apis() if api in compiled]
    for api in candidates:
        if api == rtmidi.API_WINDOWS_MM or _api_works(api):
            _chosen_api = api  # only success is cached: a JACK server may be started later
            return api
    tried = ", ".join(NAME_BY_API.get(a, str(a)) for a in candidates) or "none compiled in"
    raise PortError(
        f"no MIDI system available (tried {tried}): load the ALSA sequencer (snd-seq) or "
        "start a JACK server, e.g. `jackd -d dummy`"
    )


def api_name(api: int) -> str:
    return NAME_BY_API.get(api, rtmidi.get_api_name(api))


def _resolve_api(api: int | None) -> int:
    return choose_api() if api is None else api


def _new_client(kind: type, api: int, client_name: str, attempts: int = 3):
    # jackd2 refuses a new client now and then while another one is closing ("Cannot notify
    # add client"): a transient failure, so try again before giving up.
    for attempt in range(attempts):
        try:
            return kind(api, name=client_name)
        except (rtmidi.SystemError, RuntimeError) as exc:
            if attempt + 1 == attempts:
                detail = " ".join(str(exc).split())
                raise PortError(f"cannot open a {api_name(api)} MIDI client: {detail}") from None
            time.sleep(0.05)


def _new_lister(api: int, direction: str):
    """A client listing the ports others offer: 'inputs' = sources we can read, 'outputs' =
    sinks we can send to."""
    return _new_client(rtmidi.MidiIn if direction == "inputs" else rtmidi.MidiOut, api,
                       "cadenza-list")


def _listing(api: int, direction: str) -> list[str]:
    lister = _new_lister(api, direction)
    try:
        return lister.get_ports()
    finally:
        lister.delete()


def list_ports(api: int | None = None) -> dict:
    """{'api': name, 'inputs': [...], 'outputs': [...]}: ports to read from and to send to."""
    api = _resolve_api(api)
    return {
        "api": api_name(api),
        "inputs": _listing(api, "inputs"),
        "outputs": _listing(api, "outputs"),
    }


def match_port(ports: Sequence[str], pattern: str, direction: str) -> str:
    """The first port whose name contains `pattern`, ignoring case; a one-line error if none."""
    wanted = pattern.casefold()
    for name in ports:
        if wanted in name.casefold():
            return name
    available = "; ".join(ports) if ports else "none"
    raise PortError(f"no MIDI {direction} port matches {pattern!r} (available: {available})")


def _first_match(ports: Sequence[str], pattern: str) -> str | None:
    wanted = pattern.casefold()
    return next((name for name in ports if wanted in name.casefold()), None)


def _check_virtual_supported(api: int) -> None:
    if api == rtmidi.API_WINDOWS_MM:
        raise PortError(NO_VIRTUAL_PORTS_ON_WINDOWS)


def _open_virtual(midi, api: int, virtual_name: str, others_see_as: str) -> str:
    """Open a virtual port on `midi` and return its full name as other clients list it
    (`others_see_as`: our output is one of their 'inputs', our input one of their 'outputs').

    JACK renames a second client called 'cadenza' to 'cadenza-01', ALSA appends client:port
    numbers: the name is found by listing the ports before and after opening.
    """
    lister = _new_lister(api, others_see_as)
    try:
        before = set(lister.get_ports())
        try:
            midi.open_virtual_port(virtual_name)
        except (rtmidi.RtMidiError, NotImplementedError) as exc:
            raise PortError(f"cannot open virtual MIDI port {virtual_name!r}: {exc}") from None
        new = [p for p in lister.get_ports() if p not in before and virtual_name in p]
    finally:
        lister.delete()
    return new[0] if new else virtual_name


class _Port:
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
            match = _first_match(ports, self._pattern)
            if match is None:
                return False
            try:
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


class MidiOutput(_Port):
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


class MidiInput(_Port):
    """A port cadenza reads from: the rtmidi callback stamps and enqueues, nothing else.

    The queue is bounded: when it is full the oldest event is dropped and counted, so a flood
    costs neither memory nor growing latency; what is kept is the most recent input.
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

    def _start_callback(self) -> None:
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
        time.sleep(_CALLBACK_SETTLE_SECONDS)
        self._midi.close_port()
        self._connected = False

    def _after_open_locked(self) -> None:
        self._start_callback()

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


def open_output(name_or_substring: str | None = None, *, virtual_name: str = "cadenza out",
                client_name: str = "cadenza", api: int | None = None) -> MidiOutput:
    """A virtual output port (None) or a connection to the first output whose name contains
    the given text, ignoring case."""
    api = _resolve_api(api)
    if name_or_substring is None:
        _check_virtual_supported(api)
        midi = _new_client(rtmidi.MidiOut, api, client_name)
        name = _open_virtual(midi, api, virtual_name, others_see_as="inputs")
        return MidiOutput(midi, api, name=name, pattern=None, local_name=virtual_name)
    midi = _new_client(rtmidi.MidiOut, api, client_name)
    try:
        ports = midi.get_ports()
        target = match_port(ports, name_or_substring, "output")
        midi.open_port(ports.index(target), virtual_name)
    except BaseException:
        midi.delete()
        raise
    return MidiOutput(midi, api, name=target, pattern=name_or_substring, local_name=virtual_name)


def open_input(name_or_substring: str | None = None, *, virtual_name: str = "cadenza in",
               client_name: str = "cadenza", capacity: int = 4096,
               api: int | None = None) -> MidiInput:
    """A virtual input port (None) or a connection to the first input whose name contains the
    given text, ignoring case. MIDI clock passes, sysex and active sensing are filtered."""
    if capacity < 1:
        raise ValueError(f"capacity must be at least 1, got {capacity}")
    api = _resolve_api(api)
    if name_or_substring is None:
        _check_virtual_supported(api)
    midi = _new_client(rtmidi.MidiIn, api, client_name)
    midi.ignore_types(sysex=True, timing=False, active_sense=True)
    try:
        if name_or_substring is None:
            pattern, target = None, virtual_name
        else:
            ports = midi.get_ports()
            pattern, target = name_or_substring, match_port(ports, name_or_substring, "input")
        port = MidiInput(midi, api, name=target, pattern=pattern, local_name=virtual_name,
                         capacity=capacity)
        # The callback goes in before the port opens, so the first message is not missed.
        port._start_callback()
        if pattern is None:
            port.name = _open_virtual(midi, api, virtual_name, others_see_as="outputs")
        else:
            midi.open_port(ports.index(target), virtual_name)
    except BaseException:
        midi.delete()
        raise
    return port


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
        port = self.main
        if message and 0x80 <= message[0] < 0xF0:
            port = self.routes.get(message[0] & 0x0F, self.main)
        port.send(message)

    def is_alive(self) -> bool:
        return all(port.is_alive() for port in self.ports)

    def close(self) -> None:
        for port in self.ports:
            port.close()
