"""MIDI ports: which rtmidi API to use, and opening virtual or named ports (the port objects,
their loss and reconnection, are midi_io.py's).

An API is chosen once per process: on Linux the ALSA sequencer, else a running JACK server
(ALSA needs /dev/snd/seq, which containers and some laptops lack); CoreMIDI on macOS; WinMM on
Windows, which has no virtual ports. `CADENZA_MIDI_API=alsa|jack|coremidi|winmm` forces one.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import rtmidi

from cadenza.realtime.library_noise import library_noise
from cadenza.realtime.midi_io import (
    API_BY_NAME,
    CONNECTION_SETTLE_SECONDS,
    NAME_BY_API,
    ChannelRouter,
    MidiInput,
    MidiOutput,
    PortClosedError,
    PortError,
    api_name,
    release_client,
)

__all__ = ["ChannelRouter", "MidiInput", "MidiOutput", "PortClosedError", "PortError",
           "api_name", "choose_api", "list_ports", "match_port", "open_input", "open_output",
           "platform_apis"]

ENV_API = "CADENZA_MIDI_API"

NO_VIRTUAL_PORTS_ON_WINDOWS = (
    "Windows has no virtual MIDI ports: create a loopback port with loopMIDI "
    "(tobias-erichsen.de) or Windows MIDI Services, then pass its name (e.g. --out \"loopMIDI\")"
)

_chosen_api: int | None = None


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
    # /dev/snd/seq, JACK without a running server; both say so on fd 2 (library_noise.py).
    with library_noise():
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


def _resolve_api(api: int | None) -> int:
    return choose_api() if api is None else api


def _new_client(kind: type, api: int, client_name: str, attempts: int = 3):
    # jackd2 refuses a new client now and then while another one is closing ("Cannot notify
    # add client"): a transient failure, so try again before giving up.
    for attempt in range(attempts):
        try:
            with library_noise():  # libjack's "Cannot connect to server socket..." lines
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
            with library_noise():  # libjack prints a name it refuses on fd 2
                midi.open_virtual_port(virtual_name)
        except (rtmidi.RtMidiError, NotImplementedError) as exc:
            raise PortError(f"cannot open virtual MIDI port {virtual_name!r}: {exc}") from None
        new = [p for p in lister.get_ports() if p not in before and virtual_name in p]
    finally:
        lister.delete()
    return new[0] if new else virtual_name


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
        release_client(midi)
        raise
    time.sleep(CONNECTION_SETTLE_SECONDS)  # the connection takes effect at a cycle to come
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
    port = None
    try:
        if name_or_substring is None:
            pattern, target = None, virtual_name
        else:
            ports = midi.get_ports()
            pattern, target = name_or_substring, match_port(ports, name_or_substring, "input")
        port = MidiInput(midi, api, name=target, pattern=pattern, local_name=virtual_name,
                         capacity=capacity)
        port.start_reading()  # before the port opens, so the first message is read
        if pattern is None:
            port.name = _open_virtual(midi, api, virtual_name, others_see_as="outputs")
        else:
            midi.open_port(ports.index(target), virtual_name)
    except BaseException:
        if port is not None:
            port.close()  # its reader is running: close() stops it before freeing the client
        else:
            release_client(midi)
        raise
    return port
