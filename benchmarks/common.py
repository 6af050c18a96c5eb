"""What the live benchmarks share: their own JACK server, a recording client in another
process, the figures' format, and the answer-latency measurement (answer_latency.py runs it
alone, live_latency.py with the scheduler's figures). Imported by the scripts as `common`
(they run as `python benchmarks/NAME.py`, with this folder on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np

from cadenza.bundle import find_bundles, load_bundle
from cadenza.errors import CadenzaError
from cadenza.midi_status import NOTE_OFF, NOTE_ON, starts_note
from cadenza.plugins import load_generator
from cadenza.realtime.config import load_live_config
from cadenza.realtime.jack import start_dummy_jack
from cadenza.realtime.live import open_engine
from cadenza.realtime.ports import open_output

# The receiving client, in a child process so that our threads cannot delay its callback.
RECEIVER = """
import sys, time, rtmidi
midi = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="bench-receiver")
stamps = []
def on_message(event, data, now=time.perf_counter, append=stamps.append):
    append((now(), event[0]))
midi.set_callback(on_message)
ports = midi.get_ports()
midi.open_port(ports.index(sys.argv[1]), "in")
print("ready", flush=True)
sys.stdin.readline()
midi.cancel_callback()
time.sleep(0.05)
midi.close_port()
out = [repr(t) + " " + " ".join(map(str, m)) for t, m in stamps]
sys.stdout.write("\\n".join(out) + "\\n")
"""


def start_jack(period: int) -> subprocess.Popen:
    """A JACK server of the benchmark's own (by name: no running session is touched)."""
    name = f"cadenza-bench-{os.getpid()}"
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["CADENZA_MIDI_API"] = "jack"
    try:
        return start_dummy_jack(name, period=period)
    except CadenzaError as e:
        sys.exit(str(e))


def receive(port_name: str) -> subprocess.Popen:
    """The recording JACK client, in its own process, connected to `port_name`."""
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, port_name], text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert receiver.stdout.readline().strip() == "ready"
    return receiver


def recording(receiver: subprocess.Popen) -> list[tuple[float, list[int]]]:
    """Stop the recording client; what it got, stamped with perf_counter."""
    out, _ = receiver.communicate("quit\n", timeout=30)
    stamped = []
    for line in out.splitlines():
        if line:
            stamp, *data = line.split()
            stamped.append((float(stamp), [int(b) for b in data]))
    return stamped


def ms(values: np.ndarray, q: float | None = None) -> str:
    if len(values) == 0:
        return "-"
    return f"{(values.max() if q is None else np.percentile(values, q)) * 1e3:.3f}"


# --- answer latency: phrase end detected -> the answer's first note -----------------------
ANSWER_SECONDS = 1.0
PHRASE = [60, 64, 67, 72, 71, 67, 65, 62]


def play_phrases(player, count: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(count):
        for pitch in PHRASE:
            pitch = int(pitch + rng.integers(-2, 3))
            player.send([NOTE_ON, pitch, int(rng.integers(60, 100))])
            time.sleep(0.11)
            player.send([NOTE_OFF, pitch, 0])
            time.sleep(0.02)
        time.sleep(0.3 + ANSWER_SECONDS + 0.5)  # the silence, the answer, a breath


def synchronous_seconds(bundle: str, primer: list[int], seed: int | None) -> float:
    """magenta_midi's way: the first note waits for the whole answer to be generated."""
    generator = load_generator(bundle, seed=seed)
    codec = generator.codec
    t0 = time.perf_counter()
    generator.prime(np.array(primer, dtype=np.int64))
    steps, target = 0, ANSWER_SECONDS * codec.steps_per_second
    while steps < target:
        event = generator.step()
        if codec.time_shift < event <= codec.velocity:
            steps += event - codec.time_shift
    return time.perf_counter() - t0


def measure(bundle: str, phrases: int) -> dict:
    config = load_live_config(None, {"quiet": True, "seed": 1, "silence_seconds": 0.3,
                                     "answer_length": f"{ANSWER_SECONDS} s", "bundle": bundle,
                                     "port_name": "bench-cadenza"})
    engine = open_engine(config)
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    receiver = receive(engine.midi_out.name)
    player = open_output(engine.midi_in.name, virtual_name="player", client_name="bench-player")
    time.sleep(0.3)
    try:
        play_phrases(player, phrases)
    finally:
        engine.stop()
        thread.join(timeout=10)
        arrived = recording(receiver)
        player.close()
        engine.close_ports()
    detected = engine.stats.detected_at
    ons = np.array([t for t, m in arrived if starts_note(m)])
    first = []
    for k, t in enumerate(detected):
        later = ons[(ons >= t) & (ons < (detected[k + 1] if k + 1 < len(detected) else np.inf))]
        if len(later):
            first.append(later[0] - t)
    records = engine.mode.performer.records
    baseline = [synchronous_seconds(bundle, r.primer, r.seed) for r in records]
    return {"name": engine.generator.bundle.name, "plugin": engine.generator.plugin,
            "phrases": len(detected), "answered": len(first), "first": np.array(first),
            "baseline": np.array(baseline)}


def shipped_symbolic_bundles() -> list[str]:
    return [str(p) for p in find_bundles()
            if load_bundle(p).plugin in ("performance-rnn", "transformer")]


def print_table(results: list[dict], period: int) -> None:
    print(f"\nPhrase end detected -> first note-on of the answer at a JACK client in another "
          f"process ({period}-frame cycle = {period / 48:.2f} ms), answers of "
          f"{ANSWER_SECONDS:g} s; ms. Baseline: generate the whole answer, then play "
          "(magenta_midi).\n")
    print("| bundle | plugin | phrases answered | Cadenza p50 | Cadenza p99 | Cadenza max | "
          "baseline p50 | baseline p99 |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['name']} | {r['plugin']} | {r['answered']} / {r['phrases']} | "
              f"{ms(r['first'], 50)} | {ms(r['first'], 99)} | {ms(r['first'])} | "
              f"{ms(r['baseline'], 50)} | {ms(r['baseline'], 99)} |")
