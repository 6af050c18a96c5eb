"""How soon Cadenza answers: phrase end -> first note of the answer, through JACK, stage by
stage, at several JACK periods and under load.

A player client plays short phrases into `cadenza live` (call-and-response, each shipped
symbolic bundle, answers of 1 s); a recording client in another process stamps what arrives
on Cadenza's output port with perf_counter. Each answer's time is split into its stages
(benchmarks/common.py `measure`): detect, hand, generate, send, carry. Beside it, the baseline
through the same scheduler and ports: the performer's notes held until the whole answer is
generated, then sent (magenta_midi's order).

    python benchmarks/answer_latency.py [--phrases 200] [--period 64 128 256] [--contention 2]

Under the table, one line per phrase played and not detected (or detected and not answered):
what was sent, what reached Cadenza's port and its phrase detector, what the input dropped,
the detector's and performer's states, and the answer before it (benchmarks/phrase_misses.py).

`--contention N` runs N busy processes (pure Python loops) beside it. It starts its own JACK
server per period (named, so it touches no running JACK session) and stops it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from contextlib import contextmanager

from common import jack_alone, measure, ms, shipped_symbolic_bundles, start_jack

from cadenza.realtime.jack import stop_jack

STAGES = ("detect", "hand", "generate", "send", "carry")
BUSY = "while True: pass"


@contextmanager
def contention(processes: int):
    """`processes` busy Python processes, for the run's duration."""
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(processes)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait()


def row(r: dict, period: int, load: int, label: str) -> str:
    stages = " | ".join(f"{ms(r[s], 50)} / {ms(r[s], 99)}" for s in STAGES)
    return (f"| {period} | {load} | {r['name']} | {label} | {r['played']} / {r['phrases']} / "
            f"{r['answered']} / {r['opened']} | {ms(r['first'], 50)} | {ms(r['first'], 99)} | "
            f"{ms(r['first'])} | {stages} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phrases", type=int, default=20, help="calls played per bundle")
    parser.add_argument("--period", type=int, nargs="+", default=[256],
                        help="JACK frames per cycle (several: one run each)")
    parser.add_argument("--contention", type=int, default=0,
                        help="busy processes beside the engine")
    parser.add_argument("--jack-rt", action="store_true",
                        help="run JACK's threads SCHED_FIFO (as a musician's JACK runs)")
    parser.add_argument("--no-rt", action="store_true",
                        help="Cadenza's threads without real-time scheduling (live --no-rt)")
    parser.add_argument("--baseline-phrases", type=int, default=20,
                        help="calls played per bundle for the baseline")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the generate-then-play baseline")
    parser.add_argument("--bundle", action="append",
                        help="a bundle to measure (default: every shipped symbolic one)")
    args = parser.parse_args()
    bundles = args.bundle or shipped_symbolic_bundles(vae=True)
    rows, misses = [], []
    for period in args.period:
        server = start_jack(period, realtime=args.jack_rt)
        try:
            with contention(args.contention):
                alone = jack_alone()
                rows.append(f"| {period} | {args.contention} | - | JACK alone | {len(alone)} "
                            f"notes | {ms(alone, 50)} | {ms(alone, 99)} | {ms(alone)} |"
                            + " |" * len(STAGES))
                for bundle in bundles:
                    result = measure(bundle, args.phrases, realtime=not args.no_rt)
                    rows.append(row(result, period, args.contention, "Cadenza"))
                    misses += [f"{period} {result['name']}: {m}" for m in result["misses"]]
                    if not args.no_baseline:
                        result = measure(bundle, args.baseline_phrases, baseline=True,
                                         realtime=not args.no_rt)
                        rows.append(row(result, period, args.contention, "generate, then play"))
                        misses += [f"{period} {result['name']} (baseline): {m}"
                                   for m in result["misses"]]
        finally:
            stop_jack(server)
    print("\nPhrase end (the silence rule's moment) -> first note-on of the answer at a JACK "
          "client in another process; ms. Stages p50 / p99: detect (control thread acts), "
          "hand (performer takes it up), generate (first note to the scheduler), send (port "
          "send), carry (JACK to the client). One JACK cycle is period / 48 ms.\n")
    print("| period | busy processes | bundle | answering | played / detected / answered | "
          "first p50 | first p99 | first max | " + " | ".join(STAGES) + " |")
    print("|---:|---:|---|---|---|---:|---:|---:|" + "---|" * len(STAGES))
    print("\n".join(rows))
    if misses:  # each phrase played and not detected, or detected and not answered: why
        print("\nMissed (period, bundle: phrase, times in s from its first note sent):")
        print("\n".join(misses))
    load = os.getloadavg()
    print(f"\nMachine: {os.cpu_count()} cores, load average {load[0]:.2f}; "
          f"Python {sys.version.split()[0]}.")


if __name__ == "__main__":
    main()
