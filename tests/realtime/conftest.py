"""The realtime tests' fixtures: a real JACK server (dummy backend: real MIDI ports, no
hardware) and test-side clients on it. The helpers themselves (fakes, Player, Recorder, ...)
are in tests/realtime/helpers.py.

`jack_server` starts `jackd --no-realtime -d dummy` (cadenza.realtime.jack) under a name of its
own and makes cadenza (and every child process) use it; only the tests that ask for it (through
`player`, `recorder`, `audio`, ...) start it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cadenza.errors import CadenzaError
from cadenza.realtime.audio_out import rescan_audio_devices
from cadenza.realtime.jack import start_dummy_jack, stop_jack
from tests.realtime.helpers import JackLateCycles, Player, Recorder


@pytest.fixture(scope="session")
def jack_log(tmp_path_factory) -> Path:
    """Where the session's jackd writes what it says (its missed cycles among it)."""
    return tmp_path_factory.mktemp("jack") / "jackd.log"


@pytest.fixture(scope="session")
def jack_server(jack_log) -> Iterator[str]:
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
        process = start_dummy_jack(name, log_path=jack_log)
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


@pytest.fixture
def jack_late_cycles(jack_server, jack_log) -> JackLateCycles:
    """The cycles jackd reports a client late for, from the start of the test on."""
    return JackLateCycles(jack_log)


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
