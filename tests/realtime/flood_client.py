"""A hostile MIDI source on JACK, in its own process: floods one input port with random
messages at a steady rate. tests/realtime/test_input_fuzz.py and benchmarks/input_flood.py
run it as a script (one flooder for both); it is a process of its own so that its sending
neither waits on nor steals the GIL of the engine it floods, as another application would.

    python tests/realtime/flood_client.py PORT --seed 7 --count 100000 --rate 10000 [--kind K]

Kinds: `hostile` (the fuzz: any lengths, data bytes over 127, SysEx whole and broken, realtime
and undefined system bytes, fragments, data-only running-status bytes, well-formed messages
among them), `junk` (the hostile messages that change no state: malformed ones and realtime
bytes, no SysEx left open), `notes` (note-on/note-off pairs, a player gone wild).

Protocol on stdio (the Flood class below speaks it): prints `ready` once connected; each `go`
line sends a burst (the whole flood, or until a `stop` line), then prints `sent N SECONDS
REFUSED END` (END: perf_counter at the last send); `quit` or the end of input closes the port.

python-rtmidi refuses some byte sequences before they reach JACK: an empty message and one
longer than 3 bytes that does not start with 0xF0 (ValueError). Those are not generated; what
it accepts reaches the engine's JACK port byte for byte, as one event each.
"""

from __future__ import annotations

import argparse
import queue
import random
import subprocess
import sys
import threading
import time

import rtmidi

from cadenza.midi_status import well_formed
from cadenza.realtime.midi_io import release_client

REALTIME_AND_UNDEFINED = [0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF]
DATA_BYTES = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}


def _data(rng: random.Random, n: int, top: int = 0x7F) -> list[int]:
    return [rng.randint(0, top) for _ in range(n)]


def _channel_message(rng: random.Random, top: int = 0x7F) -> list[int]:
    kind = rng.randint(0x8, 0xE)
    return [kind << 4 | rng.randint(0, 15), *_data(rng, DATA_BYTES[kind], top)]


def hostile_message(rng: random.Random, *, junk_only: bool = False) -> list[int]:
    """One message of the fuzz; with `junk_only`, one that no MIDI state takes in."""
    pick = rng.random()
    if pick < 0.15:  # any bytes, any length rtmidi sends (1-3)
        message = _data(rng, rng.randint(1, 3), 0xFF)
        if junk_only and (message[0] == 0xF0 or well_formed(message)):
            message[0] &= 0x7F  # data-only: nothing a MIDI parser takes in
        return message
    if pick < 0.30:  # a data byte over 127
        message = _channel_message(rng)
        message[rng.randint(1, len(message) - 1)] = rng.randint(0x80, 0xFF)
        return message
    if pick < 0.42:  # a fragment: a status without all its data
        message = _channel_message(rng)
        return message[:rng.randint(1, len(message) - 1)]
    if pick < 0.52:  # running status: data bytes only
        return _data(rng, rng.randint(1, 3))
    if pick < 0.64:  # a realtime, undefined or lone system byte
        return [rng.choice(REALTIME_AND_UNDEFINED)]
    if pick < 0.72:  # a whole SysEx
        return [0xF0, *_data(rng, rng.randint(0, 40)), 0xF7]
    if junk_only:
        return [0xF0, 0x90, *_data(rng, rng.randint(0, 8)), 0xF7]  # closed, with a status inside
    if pick < 0.80:  # a broken SysEx: no end, a byte over 127, or a status inside
        body = _data(rng, rng.randint(0, 40), 0xFF)
        return [0xF0, *body] if rng.random() < 0.5 else [0xF0, *body, 0xF7]
    return _channel_message(rng)  # well formed


def messages(kind: str, seed: int, count: int) -> list[list[int]]:
    rng = random.Random(seed)
    if kind == "notes":
        return [[0x90 if k % 2 == 0 else 0x80, 40 + k // 2 % 40, 90 if k % 2 == 0 else 0]
                for k in range(count)]
    return [hostile_message(rng, junk_only=kind == "junk") for _ in range(count)]


class Flood:
    """This script in a child process, from the side that runs it: `with Flood(port) as
    flood: flood.go(); sent, seconds = flood.wait()`."""

    def __init__(self, port: str, *, kind: str = "hostile", seed: int = 7,
                 count: int = 100_000, rate: float = 10_000.0) -> None:
        self.child = subprocess.Popen(
            [sys.executable, __file__, port, "--kind", kind, "--seed", str(seed),
             "--count", str(count), "--rate", str(rate)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = self.child.stdout.readline().strip()
        if first != "ready":
            self.close()
            raise RuntimeError(f"the flood client could not connect to {port!r}: {first}")

    def go(self) -> float:
        """Start a burst (all `count` messages, or until stop()); returns the perf_counter
        time it was asked to."""
        self._say("go")
        return time.perf_counter()

    def stop(self) -> None:
        """End the burst now (wait() still says what was sent)."""
        self._say("stop")

    def wait(self) -> tuple[int, float]:
        """Until the burst is sent: how many messages were, over how many seconds;
        `ended` is the perf_counter time of the last send (one clock for all processes)."""
        _, sent, seconds, _, ended = self.child.stdout.readline().split()
        self.ended = float(ended)
        return int(sent), float(seconds)

    def _say(self, line: str) -> None:
        self.child.stdin.write(line + "\n")
        self.child.stdin.flush()

    def close(self) -> None:
        try:
            self.child.communicate("quit\n", timeout=10)
        except (BrokenPipeError, ValueError, subprocess.TimeoutExpired):
            self.child.kill()
            self.child.wait()

    def __enter__(self) -> Flood:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("port", help="the JACK MIDI input to flood (its name or a unique part)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=10_000.0, help="messages a second")
    parser.add_argument("--kind", choices=("hostile", "junk", "notes"), default="hostile")
    args = parser.parse_args()
    flood = messages(args.kind, args.seed, args.count)
    midi = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="cadenza-flood")
    ports = midi.get_ports()
    matches = [k for k, port in enumerate(ports) if port == args.port] or [
        k for k, port in enumerate(ports) if args.port in port]
    if len(matches) != 1:
        print(f"error: {args.port!r} matches {len(matches)} of {ports}", flush=True)
        sys.exit(1)
    midi.open_port(matches[0], "flood")
    time.sleep(0.2)  # JACK makes the connection at its next cycles
    print("ready", flush=True)
    lines: queue.Queue[str] = queue.Queue()  # stdin, read aside so a burst can be stopped
    threading.Thread(target=read_lines, args=(lines,), daemon=True).start()
    while (line := lines.get()) != "quit":
        if line == "go":  # a late "stop" (after its burst ended) is skipped
            burst(midi, flood, args.rate, lines)
    time.sleep(0.05)  # the last cycle's events leave the ring buffer
    release_client(midi)


def read_lines(lines: queue.Queue[str]) -> None:
    for line in sys.stdin:
        lines.put(line.strip())
    lines.put("quit")


def burst(midi, flood: list[list[int]], rate: float, lines: queue.Queue[str]) -> None:
    """Send `flood` at `rate` (a batch a millisecond) until a "stop" line; report it."""
    refused, sent, batch = 0, 0, max(1, int(rate / 1000))
    start = time.perf_counter()
    for first in range(0, len(flood), batch):
        for message in flood[first:first + batch]:
            try:
                midi.send_message(message)
                sent += 1
            except (ValueError, OverflowError):
                refused += 1
        if not lines.empty() and lines.queue[0] == "stop":
            lines.get()
            break
        lag = start + (first + batch) / rate - time.perf_counter()
        if lag > 0:
            time.sleep(lag)
    ended = time.perf_counter()
    print(f"sent {sent} {ended - start!r} {refused} {ended!r}", flush=True)

if __name__ == "__main__":
    main()
