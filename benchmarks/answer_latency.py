"""How soon Cadenza answers: phrase end detected -> first note of the answer, through JACK.

A player client plays short phrases into `cadenza live` (call-and-response, the shipped
bundles, an answer of 1 s); a recording client in another process stamps what arrives on
Cadenza's output port with perf_counter. Beside it, the baseline of Magenta's magenta_midi,
which generates the answer in its tick loop before playing it: the time to prime the same
generator with the same call and generate the whole answer, which is what its first note waits.

    python benchmarks/answer_latency.py [--phrases 20] [--period 256]

It starts its own JACK server (named, so it touches no running JACK session) and stops it.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
from live_latency import ms, receive, recording, start_jack

from cadenza.bundle import find_bundles, load_bundle
from cadenza.plugins import load_generator
from cadenza.realtime.config import load_live_config
from cadenza.realtime.jack import stop_jack
from cadenza.realtime.live import open_engine
from cadenza.realtime.ports import open_output

ANSWER_SECONDS = 1.0
PHRASE = [60, 64, 67, 72, 71, 67, 65, 62]


def play_phrases(player, count: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(count):
        for pitch in PHRASE:
            pitch = int(pitch + rng.integers(-2, 3))
            player.send([0x90, pitch, int(rng.integers(60, 100))])
            time.sleep(0.11)
            player.send([0x80, pitch, 0])
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
    ons = np.array([t for t, m in arrived if m[0] & 0xF0 == 0x90 and m[2] > 0])
    first = []
    for k, t in enumerate(detected):
        later = ons[(ons >= t) & (ons < (detected[k + 1] if k + 1 < len(detected) else np.inf))]
        if len(later):
            first.append(later[0] - t)
    baseline = [synchronous_seconds(bundle, r.primer, r.seed) for r in engine.performer.records]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phrases", type=int, default=20)
    parser.add_argument("--period", type=int, default=256, help="JACK frames per cycle")
    args = parser.parse_args()
    server = start_jack(args.period)
    try:
        results = [measure(bundle, args.phrases) for bundle in shipped_symbolic_bundles()]
    finally:
        stop_jack(server)
    print_table(results, args.period)


if __name__ == "__main__":
    main()
