"""A quiet start: only Cadenza's own lines on the terminal. What ALSA and JACK print to fd 2
while the MIDI API is probed and ports open is kept, and shown with --verbose; Python's own
errors still reach the terminal."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cadenza.realtime import library_noise
from cadenza.realtime.library_noise import captured, set_verbose
from tests.realtime.helpers import unique

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "models" / "performance-rnn"
NOISE = ("ALSA lib", "Jack", "Cannot connect", "jack server")
NO_ALSA_SEQUENCER = not os.path.exists("/dev/snd/seq")
needs_jackd = pytest.mark.skipif(shutil.which("jackd") is None, reason="no jackd (jackd2)")


def noise_in(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(word in line for word in NOISE)]


def probing_env(**more: str) -> dict[str, str]:
    """No API forced: cadenza probes ALSA first (no /dev/snd/seq here: ALSA prints), then JACK."""
    env = {k: v for k, v in os.environ.items() if k != "CADENZA_MIDI_API"}
    return {**env, "PYTHONWARNINGS": "", **more}


def cadenza(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cadenza.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=env)


# ----- the capture itself -----


@pytest.fixture
def fresh_capture(monkeypatch):
    monkeypatch.setattr(library_noise, "_kept", type(library_noise._kept)(maxlen=50))
    yield
    set_verbose(False)


def test_c_level_writes_are_kept_off_stderr(capfd, fresh_capture):
    with library_noise.library_noise():
        os.write(2, b"ALSA lib seq_hw.c:466: open /dev/snd/seq failed\n")
        with library_noise.library_noise():  # nested: one capture
            os.write(2, b"Cannot connect to server socket\n")
    assert capfd.readouterr().err == ""
    assert captured() == ["ALSA lib seq_hw.c:466: open /dev/snd/seq failed",
                          "Cannot connect to server socket"]


def test_verbose_shows_them(capfd, fresh_capture):
    set_verbose(True)
    with library_noise.library_noise():
        os.write(2, b"JackShmReadWritePtr::~JackShmReadWritePtr - Init not done\n")
    assert "JackShmReadWritePtr" in capfd.readouterr().err


def test_python_errors_still_reach_the_terminal():
    """In a process of its own, with the real fd 2: Python's writes during a capture go to the
    terminal, a C-level write does not, and an exception raised inside is printed after."""
    code = textwrap.dedent("""
        import os, sys
        from cadenza.realtime.library_noise import library_noise
        with library_noise():
            print("python says", file=sys.stderr)
            os.write(2, b"ALSA lib says\\n")
        with library_noise():
            raise RuntimeError("a real error")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "python says" in result.stderr
    assert "RuntimeError: a real error" in result.stderr
    assert "ALSA lib" not in result.stderr


# ----- real commands -----


@needs_jackd
def test_no_midi_system_is_one_line_and_no_library_noise():
    """No ALSA sequencer and no JACK server of that name: both libraries complain on fd 2."""
    env = probing_env(JACK_DEFAULT_SERVER=unique("cadenza-absent"))
    quiet = cadenza("ports", env=env)
    assert quiet.returncode == 2
    assert quiet.stderr.strip().splitlines() == [
        line for line in quiet.stderr.strip().splitlines() if line.startswith("cadenza: error:")
    ], quiet.stderr
    assert "no MIDI system available" in quiet.stderr
    assert noise_in(quiet.stderr) == []
    loud = cadenza("ports", "--verbose", env=env)
    assert loud.returncode == 2
    assert any("Cannot connect" in line for line in noise_in(loud.stderr)), loud.stderr
    assert "no MIDI system available" in loud.stderr


def test_ports_on_jack_says_nothing_else(jack_server):
    env = probing_env()
    quiet = cadenza("ports", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert "MIDI (jack)" in quiet.stdout
    assert quiet.stderr == ""
    if NO_ALSA_SEQUENCER:  # the ALSA probe failed on the way: kept, and shown when asked
        loud = cadenza("ports", "--verbose", env=env)
        assert "ALSA lib" in loud.stderr


@pytest.mark.parametrize("verbose", [False, True])
def test_live_opens_its_ports_quietly(jack_server, verbose):
    """`cadenza live` with no API forced: ALSA is probed (and fails here), JACK ports open; on
    the terminal only Cadenza's own lines."""
    name = unique("cadenza")
    process = subprocess.Popen(
        [sys.executable, "-m", "cadenza.cli", "live", "--bundle", str(BUNDLE), "--port-name",
         name, *(["--verbose"] if verbose else [])],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT, env=probing_env())
    try:
        deadline = time.monotonic() + 30
        listed = ""
        while f"{name} in" not in listed:
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            listed = subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read()
    assert "Traceback" not in stderr
    assert "cadenza live: call-response, in '" in stderr  # Cadenza's own line is there
    if verbose and NO_ALSA_SEQUENCER:
        assert "ALSA lib" in stderr
    elif not verbose:
        assert noise_in(stderr) == [], stderr
