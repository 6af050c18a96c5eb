"""Answer latency under a flood of input, and how soon a flood's backlog clears (issue 15).

Answer latency (phrase end -> the answer's first note at a JACK client in another process,
benchmarks/common.py `measure`, as answer_latency.py) in three conditions, one run each:
- quiet: the phrases alone (the baseline);
- during a flood: a hostile JACK client (tests/realtime/flood_client.py, its own process)
  sends `--rate` junk messages a second into the engine's input the whole time: malformed
  messages (fragments, data bytes over 127, data-only bytes, SysEx with a status inside) and
  realtime bytes, which change no MIDI state, so phrases still end;
- right after a flood: a burst of `--burst` junk messages at `--burst-rate` starts with each
  phrase and ends about when the phrase does.
Then the backlog: `--backlog` note messages (note-on/off pairs: a player gone wild, what made
a 32,521-command backlog before) at `--backlog-rate` into an engine; the time from the last
send until the engine's input queue and the performer's queue are empty with nothing more
coming in (taken in / sent says how many reached the engine at all). Target: under 100 ms.
Beside it, the same for one note-on/off pair.

    python benchmarks/input_flood.py [--phrases 10] [--rate 10000] [--backlog 40000]

JACK itself loses messages in floods far beyond a MIDI cable's ~1,000 messages a second (a
2-core machine, 40,000 a second: most never reach the engine; JACK prints "MidiBufferMixdown
- got invalid next event"), so "taken in / sent" is printed beside the backlog.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import common
import numpy as np
import rtmidi
from common import measure, ms, shipped_symbolic_bundles, start_jack

from cadenza.realtime.config import load_live_config
from cadenza.realtime.jack import stop_jack
from cadenza.realtime.live import open_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the flooder the tests use
from tests.realtime.flood_client import Flood  # noqa: E402

ENGINE_IN = "bench-cadenza in"  # the input port `measure` opens
CLEAR_POLL = 0.0001  # seconds between looks at the engine's queues
STILL = 0.05  # seconds with empty queues and no input that mean the backlog is gone


def wait_for_port(name: str, timeout: float = 30.0) -> None:
    lister = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="bench-lister")
    try:
        give_up = time.monotonic() + timeout
        while not any(name in port for port in lister.get_ports()):
            if time.monotonic() > give_up:
                sys.exit(f"{name!r} never appeared")
            time.sleep(0.02)
    finally:
        lister.delete()


def during_flood(bundle: str, phrases: int, rate: float) -> dict:
    """measure() with a junk flood into the engine from its start to its end."""
    started = threading.Event()
    finished = threading.Event()
    sent: list[tuple[int, float]] = []

    def flood() -> None:
        wait_for_port(ENGINE_IN)
        count = int(rate * (phrases * 3.5 + 30))  # more than the phrases last; stopped after
        with Flood(ENGINE_IN, kind="junk", count=count, rate=rate, seed=1) as client:
            client.go()
            started.set()
            finished.wait()
            client.stop()
            sent.append(client.wait())

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    real_play = common.play_phrases

    def play_once_flooding(player, count: int) -> None:  # the phrases wait for the flood
        started.wait(30)
        real_play(player, count)

    common.play_phrases = play_once_flooding
    try:
        result = measure(bundle, phrases)
    finally:
        common.play_phrases = real_play
        finished.set()
        thread.join(30)
    count, seconds = sent[0] if sent else (0, 1.0)
    result["flood"] = f"{count} junk at {count / seconds:.0f}/s"
    return result


def after_bursts(bundle: str, phrases: int, burst: int, burst_rate: float) -> dict:
    """measure() with a burst of junk starting with each phrase and ending about with it."""
    real_play = common.play_phrases
    bursts: list[tuple[int, float]] = []

    def play_after_bursts(player, count: int) -> None:
        with Flood(ENGINE_IN, kind="junk", count=burst, rate=burst_rate, seed=2) as client:
            for _ in range(count):
                client.go()
                real_play(player, 1)  # the phrase, then the silence, the answer, a breath
                bursts.append(client.wait())  # long over: a burst lasts about a phrase

    common.play_phrases = play_after_bursts
    try:
        result = measure(bundle, phrases)
    finally:
        common.play_phrases = real_play
    rate = np.mean([n / s for n, s in bursts]) if bursts else 0.0
    result["flood"] = f"{len(bursts)} bursts of {burst} junk at {rate:.0f}/s"
    return result


def backlog_clear(bundle: str, count: int, rate: float) -> dict:
    """Seconds from the last of `count` note messages sent until the engine took every one in
    and its performer's queue is empty (in this process: the engine's own queues are read)."""
    config = load_live_config(None, {"quiet": True, "seed": 1, "silence_seconds": 0.3,
                                     "answer_length": "1 s", "bundle": bundle,
                                     "port_name": "bench-backlog"})
    engine = open_engine(config)
    handed = [0]
    real_on_message = engine.on_message

    def counting(t: float, message: list[int]) -> None:  # instrument: count what was taken in
        handed[0] += 1
        real_on_message(t, message)

    engine.on_message = counting
    thread = threading.Thread(target=engine.run, daemon=True)
    thread.start()
    performer = engine.mode.performer

    def taken_in() -> int:  # handed on, or counted as dropped on the way
        return (handed[0] + engine.stats.malformed + engine.redelivered.dropped
                + engine.midi_in.dropped)

    try:
        with Flood("bench-backlog in", kind="notes", count=count, rate=rate) as client:
            before, most, sends = taken_in(), 0, []
            client.go()
            waiter = threading.Thread(target=lambda: sends.append(client.wait()), daemon=True)
            waiter.start()
            while waiter.is_alive():
                most = max(most, performer.commands.qsize())
                time.sleep(0.001)
            sent = sends[0][0]
            # Cleared: the queues empty and nothing more coming in. Not "every message taken
            # in": some never reach the engine (its JACK client misses cycles under a flood).
            busy, seen, give_up = time.perf_counter(), taken_in(), time.perf_counter() + 30
            while time.perf_counter() - busy < STILL and time.perf_counter() < give_up:
                now, arrived = time.perf_counter(), taken_in()
                if arrived != seen or len(engine.midi_in) or not performer.commands.empty():
                    busy, seen = now, arrived
                time.sleep(CLEAR_POLL)
            cleared = busy - client.ended
        arrived = taken_in() - before
    finally:
        engine.stop()
        thread.join(10)
        engine.close_ports()
    return {"cleared": cleared, "arrived": arrived, "sent": sent, "most": most,
            "dropped": engine.dropped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phrases", type=int, default=10, help="calls played per condition")
    parser.add_argument("--rate", type=float, default=10_000.0,
                        help="junk messages a second during the flood")
    parser.add_argument("--burst", type=int, default=40_000, help="junk messages a burst")
    parser.add_argument("--burst-rate", type=float, default=40_000.0,
                        help="messages a second of a burst and of the backlog flood")
    parser.add_argument("--backlog", type=int, default=40_000, help="note messages flooded")
    parser.add_argument("--backlog-rate", type=float, default=10_000.0,
                        help="messages a second of the backlog flood (faster, JACK loses "
                             "most of them on a 2-core machine before the engine sees them)")
    parser.add_argument("--repeats", type=int, default=5, help="backlog floods measured")
    parser.add_argument("--period", type=int, default=256, help="JACK frames per cycle")
    parser.add_argument("--bundle", help="default: the first shipped symbolic bundle")
    args = parser.parse_args()
    bundle = args.bundle or shipped_symbolic_bundles()[0]
    server = start_jack(args.period)
    try:
        rows = [("quiet (baseline)", measure(bundle, args.phrases) | {"flood": "-"}),
                ("during a flood", during_flood(bundle, args.phrases, args.rate)),
                ("right after a flood", after_bursts(bundle, args.phrases, args.burst,
                                                     args.burst_rate))]
        one = [backlog_clear(bundle, 2, args.backlog_rate) for _ in range(args.repeats)]
        floods = [backlog_clear(bundle, args.backlog, args.backlog_rate)
                  for _ in range(args.repeats)]
    finally:
        stop_jack(server)
    print(f"\nPhrase end (the silence rule's moment) -> first note-on of the answer at a JACK "
          f"client in another process; ms ({args.period}-frame cycle = {args.period / 48:.2f} "
          f"ms). Bundle {Path(bundle).name}.\n")
    print("| condition | flood | played / detected / answered | first p50 | first p99 | "
          "first max | dropped |")
    print("|---|---|---|---:|---:|---:|---:|")
    for label, r in rows:
        print(f"| {label} | {r['flood']} | {r['played']} / {r['phrases']} / {r['answered']} | "
              f"{ms(r['first'], 50)} | {ms(r['first'], 99)} | {ms(r['first'])} | "
              f"{r['dropped']} |")
    print(f"\nBacklog: last message sent -> the engine's input and the performer's queues "
          f"empty, nothing more coming in; ms over {args.repeats} floods at "
          f"{args.backlog_rate:.0f}/s. Target < 100 ms.\n")
    print("| flood | taken in / sent | most commands queued | cleared p50 | cleared max |")
    print("|---|---|---:|---:|---:|")
    for label, runs in (("one note-on/off pair (baseline)", one),
                        (f"{args.backlog} note messages", floods)):
        cleared = np.array([r["cleared"] for r in runs])
        print(f"| {label} | {min(r['arrived'] for r in runs)} / {runs[0]['sent']} | "
              f"{max(r['most'] for r in runs)} | {ms(cleared, 50)} | {ms(cleared)} |")
    load = os.getloadavg()
    print(f"\nMachine: {os.cpu_count()} cores, load average {load[0]:.2f}; "
          f"Python {sys.version.split()[0]}.")


if __name__ == "__main__":
    main()
