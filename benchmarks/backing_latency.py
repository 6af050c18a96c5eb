"""How soon the backing plays with the player: the player's note-on on a beat -> the first
backing note-on of that beat, through JACK.

A DAW client sends 24 ppqn MIDI clock, Start, and a chorale's melody (from the test split) on
the beats into `cadenza live --mode backing` (the shipped bundle, following the clock). A
recording client in another process listens to both the DAW and Cadenza and stamps what
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
import subprocess
import sys
import threading
import time

import numpy as np
from live_latency import ms, recording, start_jack

from cadenza.corpus.parts import choose_parts, read_parts
from cadenza.corpus.prepare import split_of
from cadenza.corpus.sources import resolve_source
from cadenza.realtime.config import load_live_config
from cadenza.realtime.jack import stop_jack
from cadenza.realtime.live import open_engine
from cadenza.realtime.ports import open_output

PPQN = 24
CLOCK, START, STOP = 0xF8, 0xFA, 0xFC

# The receiving client listens to two ports at once (the DAW's and Cadenza's), in a child
# process so that the engine's threads cannot delay its callback.
RECEIVER = """
import sys, time, rtmidi
midi = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="bench-receiver")
midi.ignore_types(timing=True)
stamps = []
def on_message(event, data, now=time.perf_counter, append=stamps.append):
    append((now(), event[0]))
midi.set_callback(on_message)
midi.open_virtual_port("in")
print("ready", flush=True)
sys.stdin.readline()
midi.cancel_callback()
time.sleep(0.05)
midi.close_port()
out = [repr(t) + " " + " ".join(map(str, m)) for t, m in stamps]
sys.stdout.write("\\n".join(out) + "\\n")
"""


def receive_both(*sources: str) -> subprocess.Popen:
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert receiver.stdout.readline().strip() == "ready"
    for source in sources:
        subprocess.run(["jack_connect", source, "bench-receiver:in"], check=True)
    return receiver


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


def play_the_daw(daw, melody: list[int], bpm: float) -> None:
    """A bar of clock stopped, Start, the melody a beat a note (released just before the
    next), Stop, half a bar of clock."""
    pulse = 60.0 / bpm / PPQN
    first = time.perf_counter() + 0.01
    pre, playing = 4 * PPQN, len(melody) * PPQN
    for k in range(pre + playing + 2 * PPQN):
        while time.perf_counter() < first + k * pulse:
            time.sleep(0.0002)
        song = k - pre
        if 0 <= song < playing and song % PPQN == PPQN - 1:
            daw.send([0x80, melody[song // PPQN], 0])
        daw.send([CLOCK])  # a note on the beat goes right after its pulse
        if song == -1:
            daw.send([START])
        elif 0 <= song < playing and song % PPQN == 0:
            daw.send([0x90, melody[song // PPQN], 90])
        elif song == playing:
            daw.send([STOP])


def measure(melody: list[int], bpm: float, listen_ms: float | None) -> dict:
    config = load_live_config(None, {
        "mode": "backing", "quiet": True, "seed": 1, "follow_clock": True,
        "port_name": "bench-cadenza", "input_channel": 1, "listen_ms": listen_ms or 0.0})
    engine = open_engine(config)
    if listen_ms is None:
        engine.backing.listen = None  # the design before December: planned half a step ahead
    daw = open_output(None, virtual_name="daw", client_name="bench-daw")
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    subprocess.run(["jack_connect", "bench-daw:daw", engine.midi_in.name], check=True)
    receiver = receive_both("bench-daw:daw", engine.midi_out.name)
    time.sleep(0.3)
    try:
        play_the_daw(daw, melody, bpm)
        time.sleep(0.3)
    finally:
        engine.stop()
        thread.join(timeout=10)
        arrived = recording(receiver)
        daw.close()
        engine.close_ports()
    player = [t for t, m in arrived if m[0] == 0x90 and m[2] > 0]
    backing = np.array([t for t, m in arrived if m[0] & 0xF0 == 0x90 and m[0] & 0x0F and m[2]])
    sixteenth = 60.0 / bpm / 4
    delays = []
    for t in player:
        near = backing[(backing >= t - sixteenth / 2) & (backing < t + sixteenth / 2)]
        if len(near):
            delays.append(near.min() - t)
    return {"listen": listen_ms, "beats": len(player), "answered": len(delays),
            "delays": np.array(delays), "rests": engine.backing.rests,
            "steps": engine.backing.steps, "listened": engine.backing.listened,
            "in_time": engine.backing.heard_in_time,
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
          "(heard the player in time) | rests |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    for r in results:
        design = (f"listen, then play (window {r['listen']:g} ms)" if r["listen"] is not None
                  else "planned ahead, on the grid point (before December)")
        d = r["delays"]
        print(f"| {design} | {r['answered']} / {r['beats']} | {ms(d, 50)} | {ms(d, 99)} | "
              f"{ms(d)} | {np.min(d) * 1e3 if len(d) else float('nan'):.2f} | "
              f"{r['listened']} of {r['steps']} ({r['in_time']}) | {r['rests']} |")


if __name__ == "__main__":
    main()
