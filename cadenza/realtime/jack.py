"""A JACK server with its dummy backend: real MIDI ports and an audio device, no hardware.

For machines without a MIDI system (no ALSA sequencer, no JACK running): the demo and the
tests start one, and stop it if they started it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cadenza.errors import CadenzaError
from cadenza.realtime.audio_out import release_audio_devices
from cadenza.realtime.library_noise import library_noise

# 256 frames at 48 kHz (5.3 ms). JACK moves MIDI once a cycle, so a shorter cycle bounds
# delivery jitter tighter, but with --no-realtime a client thread that is late for its cycle
# (a busy 2-core machine) makes JACK lose or repeat that client's MIDI: at 64 frames tests
# saw doubled and missing messages, at 256 none.
PERIOD_FRAMES = 256


def jackd_command(server_name: str | None = None, period: int = PERIOD_FRAMES, *,
                  realtime: bool = False) -> list[str]:
    """`realtime`: JACK's threads (the server's and each client's process thread) on the
    SCHED_FIFO policy, as a musician's JACK runs; it needs the right to (root, or the
    `audio` group's rtprio limit)."""
    name = ["--name", server_name] if server_name else []
    scheduling = ["--realtime"] if realtime else ["--no-realtime"]
    return ["jackd", *name, *scheduling, "-d", "dummy", "-r", "48000", "-p", str(period)]


def server_env(server_name: str | None) -> dict[str, str]:
    """The environment that makes libjack (and jack_lsp, and child processes) use a server:
    JACK_DEFAULT_SERVER names it; None is the default server."""
    env = dict(os.environ)
    if server_name:
        env["JACK_DEFAULT_SERVER"] = server_name
    return env


def jack_running(server_name: str | None = None) -> bool:
    if shutil.which("jack_lsp") is None:
        return False
    try:
        listing = subprocess.run(["jack_lsp"], capture_output=True, timeout=10,
                                 env=server_env(server_name))
    except subprocess.TimeoutExpired:
        return False
    return listing.returncode == 0


def start_dummy_jack(
    server_name: str | None = None,
    *,
    period: int = PERIOD_FRAMES,
    log_path: Path | None = None,
    timeout: float = 20.0,
    realtime: bool = False,
) -> subprocess.Popen:
    """Start `jackd -d dummy` and wait until it answers; the caller stops it (stop_jack)."""
    if shutil.which("jackd") is None:
        raise CadenzaError("no MIDI system and no jackd to start one: "
                           "apt-get install jackd2 (or load the ALSA sequencer, snd-seq)")
    with open(log_path or os.devnull, "w") as log:  # the child keeps its own copy of the fd
        command = jackd_command(server_name, period, realtime=realtime)
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env=server_env(server_name), start_new_session=True)
    give_up = time.monotonic() + timeout
    while not jack_running(server_name):
        if process.poll() is not None or time.monotonic() > give_up:
            stop_jack(process)
            tail = Path(log_path).read_text()[-2000:] if log_path else ""
            raise CadenzaError(f"jackd did not start (exit code {process.returncode}) {tail}")
        time.sleep(0.1)
    return process


def stop_jack(process: subprocess.Popen | None) -> None:
    """Stop a server started by start_dummy_jack, detaching PortAudio from it first: PortAudio
    aborts the process at exit (an assertion in its JACK host API) when its server went away
    before it."""
    if process is None or process.poll() is not None:
        return
    if "sounddevice" in sys.modules:  # only a process that played audio attached PortAudio
        with library_noise():  # PortAudio's JACK host API says goodbye on fd 2
            release_audio_devices()
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
