"""How soon the backing plays with the player: the player's note-on on a beat -> the first
backing note-on of that beat, through JACK.

A DAW client (a process of its own) plays a chorale's melody (from the test split), a note a
beat on the engine's grid, into `cadenza live --mode backing` (the shipped bundle, at --bpm;
following a DAW's clock only moves where the grid comes from). A recording client in another
process listens to both the DAW and Cadenza and stamps what
arrives with perf_counter, so both notes are timed by one clock after the same transport. For
each melody note-on on a beat, the first backing note-on within a 16th of it: its arrival
minus the melody note's (negative: the backing came first).

Side by side in the same run: listening (a step on which the model expects the player's note
waits up to --listen-ms for it, then plays at once; the December design) and the design before
it, which plans each step half a step ahead and plays it on the grid point without the player's
note of it.

    python benchmarks/backing_latency.py [--beats 96] [--bpm 100] [--period 256]

It starts its own JACK server (named, so it touches no running JACK session) and stops it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time

import numpy as np
from common import ms, receive, recording, start_jack

from cadenza.corpus.parts import choose_parts, read_parts
from cadenza.corpus.prepare import split_of
from cadenza.corpus.sources import resolve_source
from cadenza.midi_status import channel_of, starts_note
from cadenza.realtime.config import load_live_config
from cadenza.realtime.jack import stop_jack
from cadenza.realtime.live import open_engine


def melody_on_beats(beats: int) -> list[int]:
    """A pitch per beat: the soprano of the test chorales, one note each beat (its note
    sounding on the beat), pieces one after another."""
    pitches: list[int] = []
    for piece in resolve_source("music21:bach"):
        if split_of(piece.id) != "test":
            continue
        read = read_parts(piece)
        soprano = choose_parts(read.parts, 3)[0]
        for beat in range(int(read.bar_starts[0]), int(soprano["end"].max()), 4):
            sounding = soprano[(soprano["start"] <= beat) & (soprano["end"] > beat)]
            if len(sounding):
                pitches.append(int(sounding["pitch"][0]))
        if len(pitches) >= beats:
            return pitches[:beats]
    return pitches


# The DAW, a client in a process of its own (as a DAW is): the melody a note a beat on the
# engine's grid (each released 20 ms before the next), from the time it is given.
DAW = """
import json, sys, time, rtmidi
melody, beat = json.loads(sys.argv[1]), 60.0 / float(sys.argv[2])
midi = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="bench-daw")
midi.open_virtual_port("daw")
print("ready", flush=True)
first = float(sys.stdin.readline())
def at(t):
    while (left := t - time.perf_counter()) > 0:
        time.sleep(left)
for k, pitch in enumerate(melody):
    at(first + k * beat)
    midi.send_message([0x90, pitch, 90])
    at(first + (k + 1) * beat - 0.02)
    midi.send_message([0x80, pitch, 0])
time.sleep(0.1)
print("done", flush=True)
"""


def start_the_daw(melody: list[int], bpm: float) -> subprocess.Popen:
    daw = subprocess.Popen([sys.executable, "-c", DAW, json.dumps(melody), str(bpm)], text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert daw.stdout.readline().strip() == "ready"
    return daw


def measure(melody: list[int], bpm: float, listen_ms: float | None) -> dict:
    config = load_live_config(None, {
        "mode": "backing", "quiet": True, "seed": 1, "bpm": bpm,
        "port_name": "bench-cadenza", "input_channel": 1, "listen_ms": listen_ms or 0.0})
    engine = open_engine(config)
    if listen_ms is None:
        engine.mode.backing.listen = None  # the design before December: planned half a step ahead
    daw = start_the_daw(melody, bpm)
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    subprocess.run(["jack_connect", "bench-daw:daw", engine.midi_in.name], check=True)
    receiver = receive("bench-daw:daw")  # and Cadenza's output, into the same port:
    subprocess.run(["jack_connect", engine.midi_out.name, "bench-receiver:in"], check=True)
    time.sleep(0.3)
    try:
        first = engine.timeline.grid.time_of_beat(8)  # two bars in: the backing has found its feet
        daw.stdin.write(f"{first!r}\n")
        daw.stdin.flush()
        assert daw.stdout.readline().strip() == "done"
        time.sleep(0.3)
    finally:
        engine.stop()
        thread.join(timeout=10)
        arrived = recording(receiver)
        daw.communicate(timeout=10)
        engine.close_ports()
    player = [t for t, m in arrived if starts_note(m) and channel_of(m) == 0]
    backing = np.array([t for t, m in arrived if starts_note(m) and channel_of(m)])
    sixteenth = 60.0 / bpm / 4
    delays = []
    for t in player:
        near = backing[(backing >= t - sixteenth / 2) & (backing < t + sixteenth / 2)]
        if len(near):
            delays.append(near.min() - t)
    backing_loop = engine.mode.backing
    return {"listen": listen_ms, "beats": len(player), "answered": len(delays),
            "delays": np.array(delays), "rests": backing_loop.rests,
            "steps": backing_loop.steps, "listened": backing_loop.listened,
            "in_time": backing_loop.heard_in_time, "foreseen": backing_loop.foreseen,
            "bundle": engine.generator.bundle.name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beats", type=int, default=96)
    parser.add_argument("--bpm", type=float, default=100.0)
    parser.add_argument("--listen-ms", type=float, default=10.0)
    parser.add_argument("--period", type=int, default=256, help="JACK frames per cycle")
    args = parser.parse_args()
    melody = melody_on_beats(args.beats)
    server = start_jack(args.period)
    try:
        results = [measure(melody, args.bpm, listen) for listen in (args.listen_ms, None)]
    finally:
        stop_jack(server)
    print(f"\nThe DAW's melody note-on on a beat -> the first backing note-on within a 16th of "
          f"it, both at one JACK client in another process ({args.period}-frame cycle = "
          f"{args.period / 48:.2f} ms), {args.bpm:g} BPM, bundle {results[0]['bundle']}; ms "
          "(negative: the backing came first).\n")
    print("| design | beats with a backing note-on | p50 | p99 | max | min | steps that listened "
          "(heard the player in time; foreseen) | rests |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    for r in results:
        design = (f"listen, then play (window {r['listen']:g} ms)" if r["listen"] is not None
                  else "planned ahead, on the grid point (before December)")
        d = r["delays"]
        print(f"| {design} | {r['answered']} / {r['beats']} | {ms(d, 50)} | {ms(d, 99)} | "
              f"{ms(d)} | {np.min(d) * 1e3 if len(d) else float('nan'):.2f} | "
              f"{r['listened']} of {r['steps']} ({r['in_time']}; {r['foreseen']}) | "
              f"{r['rests']} |")


if __name__ == "__main__":
    main()
