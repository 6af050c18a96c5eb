"""Live-engine latency through a real JACK server (dummy backend), in one run.

Answer latency: phrase end detected -> first note of the answer, for each shipped symbolic
bundle, beside magenta_midi's generate-then-play (benchmarks/answer_latency.py, also runnable
alone).

Scheduler lateness: 10,000 MIDI messages (note-on/off pairs) at deadlines 2-20 ms apart,
fed 200 ms ahead by a control thread as the engine does, through cadenza's Scheduler (sleep,
then spin) and the NaiveScheduler baseline (time.sleep to the deadline). Lateness is measured
at send time (the scheduler's own ring) and at a JACK client in another process that records
cadenza's output port with perf_counter stamps; the latter adds JACK's cycle (MIDI moves once
a period). Then CPU use (process_time over wall time) of an idle virtual input port plus an
idle scheduler. With --contention, the same with a busy pure-Python thread in the process, at
the default GIL switch interval and at 0.5 ms.

    python benchmarks/live_latency.py [--events 10000] [--period 256] [--idle-seconds 10]
                                      [--contention 2000]

It starts its own JACK server (named, so it touches no running JACK session) and stops it.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import numpy as np
from common import (
    measure,
    ms,
    print_table,
    receive,
    recording,
    shipped_symbolic_bundles,
    start_jack,
    synchronous_baseline,
)

from cadenza.midi_status import NOTE_OFF, NOTE_ON
from cadenza.realtime.jack import stop_jack
from cadenza.realtime.ports import open_input, open_output
from cadenza.realtime.scheduler import NaiveScheduler, Scheduler

LOOKAHEAD = 0.2  # seconds: how far ahead the feeding thread schedules

def note_events(count: int, seed: int) -> tuple[np.ndarray, list[list[int]]]:
    """Offsets (s) 2-20 ms apart and note-on/off messages, each message unique (pitch and
    velocity tag the pair) so that arrivals are matched even if JACK drops one."""
    rng = np.random.default_rng(seed)
    offsets = np.cumsum(rng.uniform(0.002, 0.020, count))
    messages = []
    for k in range(count):
        pair = k // 2
        tag = [pair % 128, 1 + (pair // 128) % 127]
        messages.append([NOTE_ON if k % 2 == 0 else NOTE_OFF, *tag])
    return offsets, messages


def feed(scheduler: Scheduler, deadlines: np.ndarray, messages: list[list[int]]) -> None:
    """The control thread's part: schedule what falls within the lookahead, then wait a bit."""
    k = 0
    while k < len(deadlines):
        horizon = time.perf_counter() + LOOKAHEAD
        batch = []
        while k < len(deadlines) and deadlines[k] <= horizon:
            batch.append((float(deadlines[k]), messages[k]))
            k += 1
        if batch:
            scheduler.schedule_many(batch)
        time.sleep(0.02)


def run(cls: type[Scheduler], count: int, seed: int) -> dict:
    output = open_output(None, virtual_name=f"bench {cls.__name__}")
    receiver = receive(output.name)
    time.sleep(0.2)
    scheduler = cls(output, lateness_capacity=max(count, 1))
    offsets, messages = note_events(count, seed)
    deadlines = time.perf_counter() + 0.3 + offsets
    cpu0, wall0 = time.process_time(), time.perf_counter()
    feed(scheduler, deadlines, messages)
    while time.perf_counter() < deadlines[-1] + 0.1:
        time.sleep(0.05)
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    sent = scheduler.lateness_samples()
    errors = scheduler.send_errors
    scheduler.stop()
    time.sleep(0.2)
    stamped = recording(receiver)
    output.close()
    arrived: dict[tuple[int, ...], float] = {}
    duplicates = 0
    for stamp, data in stamped:
        key = tuple(data)
        duplicates += key in arrived
        arrived.setdefault(key, stamp)
    received = np.array([arrived[tuple(m)] - d for m, d in zip(messages, deadlines, strict=True)
                         if tuple(m) in arrived])
    return {"name": cls.__name__, "count": count, "sent": sent, "received": received,
            "lost": count - len(received), "duplicates": duplicates, "errors": errors,
            "cpu": cpu}


def idle_cpu(seconds: float) -> float:
    """process_time over wall time with a virtual input port and a scheduler open, idle."""
    midi_in = open_input(None, virtual_name="bench idle in")
    output = open_output(None, virtual_name="bench idle out")
    scheduler = Scheduler(output)
    time.sleep(0.5)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    share = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    scheduler.stop()
    output.close()
    midi_in.close()
    return share


def busy_python(stop: threading.Event) -> None:
    """A thread running pure Python (a stand-in for Python-heavy control or generation)."""
    x = 0
    while not stop.is_set():
        for _ in range(1000):
            x += 1


def row(result: dict, label: str) -> str:
    sent, received = result["sent"], result["received"]
    return (f"| {label} | {result['count']} | {ms(sent, 50)} | {ms(sent, 99)} | {ms(sent)} | "
            f"{ms(received, 50)} | {ms(received, 99)} | {ms(received)} | "
            f"{result['lost']} / {result['duplicates']} | {result['cpu'] * 100:.1f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--period", type=int, default=256, help="JACK frames per cycle")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--contention", type=int, default=0,
                        help="events per run with a busy Python thread (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phrases", type=int, default=20, help="calls answered per bundle")
    args = parser.parse_args()
    server = start_jack(args.period)
    try:
        results = [(run(cls, args.events, args.seed), cls.__name__)
                   for cls in (Scheduler, NaiveScheduler)]
        default_interval = sys.getswitchinterval()
        if args.contention:
            for interval in (default_interval, 0.0005):
                sys.setswitchinterval(interval)
                stop = threading.Event()
                busy = threading.Thread(target=busy_python, args=(stop,), daemon=True)
                busy.start()
                for cls in (Scheduler, NaiveScheduler):
                    label = f"{cls.__name__}, busy Python thread, switch {interval * 1e3:g} ms"
                    results.append((run(cls, args.contention, args.seed), label))
                stop.set()
                busy.join()
            sys.setswitchinterval(default_interval)
        idle = idle_cpu(args.idle_seconds)
        answers = [measure(bundle, args.phrases) for bundle in shipped_symbolic_bundles()]
        for result, bundle in zip(answers, shipped_symbolic_bundles(), strict=True):
            result["baseline"] = synchronous_baseline(result, bundle)
    finally:
        stop_jack(server)

    period_ms = args.period / 48.0
    print(f"\nScheduler lateness through JACK (dummy backend, {args.period} frames at 48 kHz = "
          f"{period_ms:.2f} ms a cycle), deadlines 2-20 ms apart; ms, late is positive. "
          f"Received = at a JACK client in another process, so it includes JACK's cycle.\n")
    print("| scheduler | events | send p50 | send p99 | send max | received p50 | received p99 "
          "| received max | lost / doubled | CPU (process/wall) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for result, label in results:
        print(row(result, label))
    print(f"\nIdle: a virtual input port + output port + Scheduler, {args.idle_seconds:g} s: "
          f"{idle * 100:.2f}% of a core (process_time / wall).")
    print_table(answers, args.period)
    load = os.getloadavg()
    print(f"Machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}; Python {sys.version.split()[0]}, switch interval "
          f"{sys.getswitchinterval() * 1e3:g} ms.")


if __name__ == "__main__":
    main()
