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
from phrase_misses import PhraseTrace

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


def start_jack(period: int, *, realtime: bool = False) -> subprocess.Popen:
    """A JACK server of the benchmark's own (by name: no running session is touched)."""
    name = f"cadenza-bench-{os.getpid()}"
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["CADENZA_MIDI_API"] = "jack"
    try:
        return start_dummy_jack(name, period=period, realtime=realtime)
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
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
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
            time.sleep(0.08)
            player.send([NOTE_OFF, pitch, 0])
            time.sleep(0.02)
        time.sleep(0.3 + ANSWER_SECONDS + 0.2)  # the silence, the answer, a breath


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


class SendStamps:
    """The engine's output port, stamping each message as the scheduler hands it over: the
    'sent' stage of an answer, before JACK carries it."""

    def __init__(self, port) -> None:
        self.port = port
        self.sent: list[tuple[float, list[int]]] = []

    def send(self, message) -> None:
        self.sent.append((time.perf_counter(), list(message)))
        self.port.send(message)


class GenerateThenPlay:
    """The baseline through Cadenza's own scheduler and ports: the performer's notes are held
    until it has generated the whole answer (magenta_midi's order), then handed over at once.
    A watcher thread flushes them within 0.2 ms of the answer's end."""

    def __init__(self, engine) -> None:
        performer = engine.mode.performer
        performer.lookahead = ANSWER_SECONDS + 1.0  # the whole answer in one go
        performer.anticipate = lambda heard: None  # no opening made during the silence
        self.performer, self.scheduler = performer, engine.scheduler
        self.held: list[tuple[float, list[int]]] = []
        self.lock = threading.Lock()
        performer.schedule = self.hold
        self.running = True
        threading.Thread(target=self.watch, daemon=True).start()

    def hold(self, deadline: float, message: list[int]) -> None:
        with self.lock:
            self.held.append((deadline, message))

    def watch(self) -> None:
        while self.running:
            if not self.performer.busy:
                with self.lock:
                    held, self.held = self.held, []
                if held:
                    self.scheduler.schedule_many(held)
            time.sleep(0.0002)


def jack_alone(count: int = 200) -> np.ndarray:
    """JACK by itself: a port of this process sends notes 2-20 ms apart to the recording
    client; seconds from each send to its arrival (what no client can make shorter)."""
    output = open_output(None, virtual_name="bench jack alone")
    receiver = receive(output.name)
    time.sleep(0.2)
    rng = np.random.default_rng(0)
    sent = []
    for k in range(count):
        time.sleep(float(rng.uniform(0.002, 0.020)))
        sent.append(time.perf_counter())
        output.send([NOTE_ON, k % 128, 1 + k // 128])
    time.sleep(0.2)
    arrived = {tuple(m): t for t, m in recording(receiver)}
    output.close()
    return np.array([arrived[(NOTE_ON, k % 128, 1 + k // 128)] - t
                     for k, t in enumerate(sent) if (NOTE_ON, k % 128, 1 + k // 128) in arrived])


def first_after(times: np.ndarray, t: float) -> float | None:
    later = times[times >= t]
    return float(later[0]) if len(later) else None


def measure(bundle: str, phrases: int, *, baseline: bool = False,
            realtime: bool = True) -> dict:
    """Plays `phrases` calls into `cadenza live` on `bundle`; for each answer, the stages
    from the phrase's end to the first note at a client in another process (seconds):
    detect (the silence rule's moment -> the control thread acting on it), hand (-> the
    performer taking it up), generate (-> the first note handed to the scheduler), send
    (-> the port's send), carry (-> arrival), and `first`, the whole. With `baseline`, the
    performer's notes wait for the whole answer (GenerateThenPlay)."""
    config = load_live_config(None, {"quiet": True, "seed": 1, "silence_seconds": 0.3,
                                     "answer_length": f"{ANSWER_SECONDS} s", "bundle": bundle,
                                     "port_name": "bench-cadenza", "realtime": realtime})
    engine = open_engine(config)
    stamps = SendStamps(engine.scheduler.output)
    engine.scheduler.output = stamps
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    while not engine.mode.performer.is_alive():
        time.sleep(0.01)
    holder = GenerateThenPlay(engine) if baseline else None
    trace = PhraseTrace(engine)  # what happened to a phrase missed, said after the run
    receiver = receive(engine.midi_out.name)
    player = open_output(engine.midi_in.name, virtual_name="player", client_name="bench-player")
    time.sleep(0.3)
    try:
        play_phrases(trace.player(player), phrases)
    finally:
        if holder is not None:
            holder.running = False
        engine.stop()
        trace.stop()
        thread.join(timeout=10)
        arrived = recording(receiver)
        player.close()
        engine.close_ports()
    stats, records = engine.stats, engine.mode.performer.records
    ons = np.array([t for t, m in arrived if starts_note(m)])
    sent = np.array([t for t, m in stamps.sent if starts_note(m)])
    stages: dict[str, list[float]] = {k: [] for k in
                                      ("first", "detect", "hand", "generate", "send", "carry")}
    opened = 0
    for k, detected in enumerate(stats.detected_at):
        until = stats.detected_at[k + 1] if k + 1 < len(stats.detected_at) else np.inf
        arrival = first_after(ons, detected)
        if arrival is None or arrival >= until or k >= len(records):
            continue
        record, handled = records[k], stats.handled_at[k]
        scheduled = record.first_note if record.first_note is not None else np.nan
        sent_at = first_after(sent, scheduled) if record.first_note is not None else None
        sent_at = np.nan if sent_at is None else sent_at
        # An answer whose opening was made during the silence went from the control thread
        # straight to the scheduler: neither the performer nor the model was on its path.
        hand = 0.0 if record.opened else record.began - handled
        generate = 0.0 if record.opened else scheduled - record.began
        opened += record.opened
        for name, value in (("first", arrival - detected), ("detect", handled - detected),
                            ("hand", hand), ("generate", generate),
                            ("send", sent_at - scheduled), ("carry", arrival - sent_at)):
            stages[name].append(value)
    return {"name": engine.generator.bundle.name, "plugin": engine.generator.plugin,
            "played": phrases, "phrases": len(stats.detected_at),
            "answered": len(stages["first"]), "opened": opened, "dropped": engine.dropped,
            **{k: np.array(v) for k, v in stages.items()},
            "records": records, "misses": trace.misses(records, arrived)}


def synchronous_baseline(result: dict, bundle: str) -> np.ndarray:
    """The offline baseline: prime and generate each whole answer again, timed."""
    return np.array([synchronous_seconds(bundle, r.primer, r.seed) for r in result["records"]])


def shipped_symbolic_bundles(*, vae: bool = False) -> list[str]:
    plugins = ("performance-rnn", "transformer", "vae") if vae else ("performance-rnn",
                                                                     "transformer")
    return [str(p) for p in find_bundles() if load_bundle(p).plugin in plugins]


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
              f"{ms(r.get('baseline', []), 50)} | {ms(r.get('baseline', []), 99)} |")
