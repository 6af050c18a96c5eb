"""Backing soak: a long performance of `cadenza live --mode backing` in compressed time.

The live code path on simulated time: a DAW sends 24 ppqn MIDI clock (its crystal `--ppm`
off ours, each pulse stamped with up to ±`--jitter-ms` of input jitter), clock while stopped
and then Start; the engine's ClockFollower follows it; the BackingLoop (cadenza/realtime/
backing.py, the same class `cadenza live` runs) steps the real backing model, polled as the
control loop polls it (up to 1 ms late; each poll's model work advances the simulated clock by
the time it really took, so that guesses of the player's next note are limited as live); a
simulated player plays a melody in eighths, humanised, into it. Only the clock is simulated: the
loop reads no clock of its own.

Reported: steps, rests (steps whose deadline could not be met), notes; the model's time per
step; drift, each scheduled event's deadline against the DAW's ideal grid (its own pulses,
without jitter), beside three naive schedulers run on the same steps, each adding a step length
to the last deadline: of the nominal --bpm, to a float32 "seconds since start" (at 120 BPM a
step, 0.125 s, is exact in float32: that one drifts by the DAW's ppm alone); of the tempo it
measured at Start, float32 too; of the current tempo estimate, each step (float64). And memory:
tracemalloc's current and peak, and the RSS, after the first simulated minute and at the end.

    python benchmarks/backing_soak.py [--minutes 30] [--bpm 120] [--bundle models/backing]
                                      [--ppm 30] [--jitter-ms 0.5] [--seed 0]
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np

from cadenza.midi_status import CLOCK, NOTE_OFF, NOTE_ON, START
from cadenza.plugins import load_generator
from cadenza.realtime.backing import BackingLoop
from cadenza.realtime.clock import PPQN, ClockFollower

T0 = 86_400.0  # a perf_counter a day after boot: the arithmetic must hold at large times
PRE_ROLL = 2 * 4 * PPQN  # pulses of clock while the DAW is stopped (two bars)
SCALE = [60, 62, 64, 65, 67, 69, 71, 72, 74, 76]


class DriftSink:
    """Where the loop's messages go: each deadline is compared with the DAW's ideal grid and
    forgotten (the sink keeps no history, so the memory figures are the loop's own)."""

    def __init__(self, start: float, step: float, minute_steps: int):
        self.start, self.step, self.minute_steps = start, step, minute_steps
        self.events = 0
        self.worst = 0.0
        self.first_minute = 0.0
        self.last_minute = 0.0
        self.last_minute_from = math.inf  # set when the last minute begins

    def error(self, deadline: float) -> tuple[int, float]:
        n = round((deadline - self.start) / self.step)
        return n, deadline - (self.start + n * self.step)

    def schedule_many(self, events) -> None:
        for deadline, _ in events:
            n, error = self.error(deadline)
            self.events += 1
            self.worst = max(self.worst, abs(error))
            if n < self.minute_steps:
                self.first_minute = max(self.first_minute, abs(error))
            if n >= self.last_minute_from:
                self.last_minute = max(self.last_minute, abs(error))

    def end_channels(self, channels) -> None:
        pass


class Baseline:
    """A naive scheduler's deadline for each step, against the ideal grid."""

    def __init__(self, sink: DriftSink):
        self.sink = sink
        self.worst = self.first_minute = self.last_minute = 0.0

    def judge(self, deadline: float, n: int) -> None:
        error = abs(deadline - (self.sink.start + n * self.sink.step))
        self.worst = max(self.worst, error)
        if n < self.sink.minute_steps:
            self.first_minute = max(self.first_minute, error)
        if n >= self.sink.last_minute_from:
            self.last_minute = max(self.last_minute, error)


class Player:
    """A melody in eighths on the DAW's grid, humanised (±10 ms), a random walk on a scale;
    made a little ahead of time, so it holds a bounded handful of notes."""

    def __init__(self, start: float, eighth: float, rng: random.Random):
        self.start, self.eighth, self.rng = start, eighth, rng
        self.pending: list[tuple[float, int, list[int]]] = []
        self.slot = 0
        self.degree = 4
        self.order = 0
        self.played = 0

    def due(self, now: float) -> list[tuple[float, list[int]]]:
        while self.start + self.slot * self.eighth < now + 1.0:
            self._compose()
        out = []
        while self.pending and self.pending[0][0] <= now:
            t, _, message = heapq.heappop(self.pending)
            out.append((t, message))
        return out

    def next_time(self) -> float:
        return self.pending[0][0] if self.pending else math.inf

    def _compose(self) -> None:
        rng = self.rng
        at = self.start + self.slot * self.eighth + rng.gauss(0.0, 0.01)
        self.slot += 1
        if rng.random() > 0.6:
            return
        self.degree = min(len(SCALE) - 1, max(0, self.degree + rng.choice((-2, -1, 1, 2))))
        pitch = SCALE[self.degree]
        length = rng.randint(1, 3) * self.eighth - 0.03
        self.order += 2
        heapq.heappush(self.pending, (at, self.order, [NOTE_ON, pitch, 90]))
        heapq.heappush(self.pending, (at + length, self.order + 1, [NOTE_OFF, pitch, 0]))
        self.played += 1


def rss_mb() -> float:
    """Resident set size now (Linux), else the peak so far."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * resource.getpagesize() / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory() -> tuple[float, float, float]:
    current, peak = tracemalloc.get_traced_memory()
    return current / 2**20, peak / 2**20, rss_mb()


def soak(args: argparse.Namespace) -> dict:
    tracemalloc.start()
    rng = random.Random(args.seed)
    generator = load_generator(args.bundle, plugin=None if args.bundle else "backing",
                               seed=args.seed)
    spq = generator.parts.steps_per_quarter
    period = 60.0 / (args.bpm * PPQN) / (1.0 + args.ppm * 1e-6)  # the DAW's pulse, our seconds
    jitter = args.jitter_ms * 1e-3
    start = T0 + PRE_ROLL * period  # the first pulse after Start: the downbeat of bar 1
    step = PPQN // spq * period
    minute_steps = round(60.0 / step)
    total_steps = args.minutes * minute_steps
    sink = DriftSink(start, step, minute_steps)
    sink.last_minute_from = total_steps - minute_steps
    follower = ClockFollower(min_pulses=PPQN)
    loop = BackingLoop(generator, sink, lambda: follower.grid(4), channels=[1, 2, 3],
                       velocities=[80] * 3, steps_per_quarter=spq)
    player = Player(start, 2 * step, rng)
    nominal, float32_tempo, float64_tempo = Baseline(sink), Baseline(sink), Baseline(sink)
    t32 = t_nominal = np.float32(0.0)
    step32, step_nominal = np.float32(0.0), np.float32(60.0 / (spq * args.bpm))
    t64 = base = 0.0
    compute = np.zeros(total_steps + 64)  # seconds of model work per step, preallocated

    pulse, due, now = 0, None, T0 - 0.01
    stamp = T0 + rng.uniform(-jitter, jitter)
    memory_at_minute = None
    wall = time.perf_counter()
    while loop.steps < total_steps:
        # The control loop wakes for the next input or the backing's next action, up to 1 ms
        # late (its sleep), drains the input, then polls.
        nxt = min(stamp, player.next_time(), due if due is not None else math.inf)
        now = max(now, nxt) + rng.uniform(0.0, 0.001)
        while stamp <= now:
            follower.feed(stamp, [CLOCK])
            if pulse == PRE_ROLL - 1:  # Start, just after this pulse
                follower.feed(stamp + 0.0001, [START])
                loop.start(0.0)
            pulse += 1
            stamp = T0 + pulse * period + rng.uniform(-jitter, jitter)
        for t, message in player.due(now):
            loop.player(t, message)
        played = loop.last_deadline
        began = time.perf_counter()
        due = loop.poll(now)
        now += time.perf_counter() - began  # the model's work takes real time on the clock
        # A step played (listening, a step opens in one poll and plays in a later one).
        if loop.last_deadline != played:
            n = round((loop.last_deadline - start) / step)  # the step's number on the grid
            if n >= len(compute):
                break
            compute[n] += time.perf_counter() - began
            if played is None:  # both naive schedulers start where cadenza started
                base = t64 = loop.last_deadline
                step32 = np.float32(60.0 / (spq * follower.bpm))  # the tempo measured at Start
            else:
                t_nominal = np.float32(t_nominal + step_nominal)  # float32 "seconds since start"
                t32 = np.float32(t32 + step32)
                t64 += 60.0 / (spq * follower.bpm)  # the current estimate's step, summed
            nominal.judge(base + float(t_nominal), n)
            float32_tempo.judge(base + float(t32), n)
            float64_tempo.judge(t64, n)
            if memory_at_minute is None and loop.steps >= minute_steps:
                memory_at_minute = memory()
    wall = time.perf_counter() - wall
    return {
        "loop": loop, "sink": sink, "player": player, "wall": wall,
        "compute": compute[:total_steps],
        "baselines": (nominal, float32_tempo, float64_tempo),
        "memory": (memory_at_minute, memory()),
        "bundle": generator.bundle.name,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30, help="simulated minutes (default 30)")
    parser.add_argument("--bpm", type=float, default=120.0)
    parser.add_argument("--bundle", help="a backing bundle (default: the shipped models/backing)")
    parser.add_argument("--ppm", type=float, default=30.0,
                        help="how far the DAW's clock crystal is off ours (default 30 ppm)")
    parser.add_argument("--jitter-ms", type=float, default=0.5,
                        help="input timestamp jitter of each pulse, ± (default 0.5 ms)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.minutes < 2:
        parser.error("--minutes: at least 2 (the first minute is the warm-up)")

    result = soak(args)
    loop, sink, player = result["loop"], result["sink"], result["player"]
    compute = result["compute"] * 1e3
    (cur0, peak0, rss0), (cur1, peak1, rss1) = result["memory"]
    nominal, naive32, naive64 = result["baselines"]
    print(
        f"backing soak: {args.minutes} min of simulated performance at {args.bpm:g} BPM in "
        f"{result['wall']:.0f} s (bundle {result['bundle']}; DAW clock {args.ppm:+g} ppm, pulse "
        f"stamps ±{args.jitter_ms:g} ms, polls up to 1 ms late)\n"
    )
    print(f"steps {loop.steps} ({loop.rests} rests), note-ons sent {loop.notes_sent}, "
          f"messages {sink.events}, player notes {player.played}; work per step (traced) "
          f"p50 {np.percentile(compute, 50):.2f} ms, p99 {np.percentile(compute, 99):.2f} ms, "
          f"max {compute.max():.2f} ms\n")
    print("| deadlines against the DAW's grid | max abs error ms | first minute | last minute |")
    print("|---|---|---|---|")
    rows = [
        ("cadenza: grid origin + n x step, re-read from the clock each step", sink),
        (f"naive: t += step of {args.bpm:g} BPM (float32 s)", nominal),
        ("naive: t += step of the tempo measured at Start (float32 s)", naive32),
        ("naive: t += step of the current tempo estimate (float64 s)", naive64),
    ]
    for name, figures in rows:
        print(f"| {name} | {figures.worst * 1e3:.3f} | {figures.first_minute * 1e3:.3f} | "
              f"{figures.last_minute * 1e3:.3f} |")
    print()
    print("| memory | tracemalloc current MB | tracemalloc peak MB | RSS MB |")
    print("|---|---|---|---|")
    print(f"| after minute 1 | {cur0:.2f} | {peak0:.2f} | {rss0:.0f} |")
    print(f"| after minute {args.minutes} | {cur1:.2f} | {peak1:.2f} | {rss1:.0f} |")


if __name__ == "__main__":
    main()
