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

from common import measure, print_table, shipped_symbolic_bundles, start_jack

from cadenza.realtime.jack import stop_jack


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
