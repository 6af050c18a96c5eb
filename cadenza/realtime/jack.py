"""A JACK server with its dummy backend: real MIDI ports and an audio device, no hardware.

For machines without a MIDI system (no ALSA sequencer, no JACK running): the demo and the
tests start one, and stop it if they started it.
"""

from __future__ import annotations

import shutil
import subprocess
import time

from cadenza.errors import CadenzaError

# 64 frames at 48 kHz: JACK delivers MIDI once a cycle, so the cycle (1.3 ms) bounds jitter.
JACKD = ["jackd", "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "64"]


def jack_running() -> bool:
    if shutil.which("jack_lsp") is None:
        return False
    try:
        return subprocess.run(["jack_lsp"], capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def start_dummy_jack(log_path: str | None = None, timeout: float = 20.0) -> subprocess.Popen:
    """Start `jackd -d dummy` and wait until it answers; the caller stops it (stop_jack)."""
    if shutil.which("jackd") is None:
        raise CadenzaError("no MIDI system and no jackd to start one: "
                           "apt-get install jackd2 (or load the ALSA sequencer, snd-seq)")
    log = open(log_path or "/dev/null", "w")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(JACKD, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    give_up = time.monotonic() + timeout
    while not jack_running():
        if process.poll() is not None or time.monotonic() > give_up:
            stop_jack(process)
            raise CadenzaError(f"jackd did not start (exit code {process.returncode})")
        time.sleep(0.1)
    return process


def stop_jack(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
