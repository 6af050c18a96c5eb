"""Why a played phrase was not detected, or a detected one not answered (answer_latency.py).

A PhraseTrace is hooked onto one measured engine: it stamps what the player sends, what
the engine drains from its input port and what reaches the mode, what the redelivery
filter drops, each phrase the detector returns, and (sampled every millisecond by a
watcher thread) the detector's and the performer's state when it changes. After the run,
`misses` matches the played phrases with the detected ones and says, for each one missed,
what happened. Benchmark-only: it wraps the engine's instances, it changes no behaviour.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from cadenza.midi_status import starts_note

PHRASE_GAP = 0.5  # seconds without a send between two played phrases (they pause 1.5 s)
WATCH_PERIOD = 0.001


class SentStamps:
    """The player's port, stamping each message as it is sent."""

    def __init__(self, port, sent: list) -> None:
        self.port, self.sent = port, sent

    def send(self, message) -> None:
        self.sent.append((time.perf_counter(), list(message)))
        self.port.send(message)

    def close(self) -> None:
        self.port.close()


class PhraseTrace:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.sent: list[tuple[float, list[int]]] = []
        self.drained: list[tuple[float, float, list[int]]] = []  # (drained at, stamp, bytes)
        self.heard: list[tuple[float, list[int]]] = []  # what reached the mode
        self.repeats: list[tuple[float, list[int]]] = []  # dropped as delivered twice
        self.phrases: list = []  # (returned at, Phrase)
        self.states: list[tuple[float, tuple]] = []
        mode, midi_in, redelivered = engine.mode, engine.midi_in, engine.redelivered
        drain, player, poll = midi_in.drain, mode.player, mode.phrases.poll
        is_repeat = redelivered.is_repeat

        def traced_drain():
            got = drain()
            now = time.perf_counter()
            self.drained.extend((now, t, list(raw)) for t, raw in got)
            return got

        def traced_player(t, message):
            self.heard.append((t, list(message)))
            player(t, message)

        def traced_poll(now, grid=None):
            phrase = poll(now, grid)
            if phrase is not None:
                self.phrases.append((time.perf_counter(), phrase))
            return phrase

        def traced_is_repeat(t, raw):
            repeat = is_repeat(t, raw)
            if repeat:
                self.repeats.append((t, list(raw)))
            return repeat

        midi_in.drain, mode.player, mode.phrases.poll = traced_drain, traced_player, traced_poll
        redelivered.is_repeat = traced_is_repeat
        self.watching = True
        self.watcher = threading.Thread(target=self.watch, daemon=True)
        self.watcher.start()

    def player(self, port) -> SentStamps:
        return SentStamps(port, self.sent)

    def state(self) -> tuple:
        detector, performer = self.engine.mode.phrases, self.engine.mode.performer
        return (detector.phrase_started_at is not None, detector.sounding, performer.mode)

    def watch(self) -> None:
        last = None
        while self.watching:
            state = self.state()
            if state != last:
                self.states.append((time.perf_counter(), state))
                last = state
            time.sleep(WATCH_PERIOD)

    def stop(self) -> None:
        self.watching = False
        self.watcher.join(timeout=1.0)

    # --- after the run ----------------------------------------------------------------------
    def played(self) -> list[list[tuple[float, list[int]]]]:
        """The player's sends, phrase by phrase."""
        phrases: list[list[tuple[float, list[int]]]] = []
        for t, message in self.sent:
            if not phrases or t - phrases[-1][-1][0] > PHRASE_GAP:
                phrases.append([])
            phrases[-1].append((t, message))
        return phrases

    def misses(self, records, arrivals) -> list[str]:
        """One line per played phrase not detected, and per detected phrase not answered.
        `arrivals`: (perf_counter, message) at the recording client."""
        played = self.played()
        lines = []
        ons = [t for t, m in arrivals if starts_note(m)]
        for i, notes in enumerate(played):
            begin, last = notes[0][0], notes[-1][0]
            until = played[i + 1][0][0] if i + 1 < len(played) else float("inf")
            found = [(k, p) for k, (_, p) in enumerate(self.phrases)
                     if begin - PHRASE_GAP < p.end_time < until]
            if len(found) == 1 and found[0][1].start_time > begin - PHRASE_GAP:
                k = found[0][0]
                if not any(self.phrases[k][1].detected_at <= t < until for t in ons):
                    lines.append(f"phrase {i}: detected (#{k}) but no answer arrived; "
                                 + self.answer_of(k, records, arrivals, begin))
                continue
            lines.append(self.describe(i, notes, begin, last, until, found, records, arrivals))
        return lines

    def describe(self, i, notes, begin, last, until, found, records, arrivals) -> str:
        window = [(t, m) for t, m in self.heard if begin - 0.05 <= t < until]
        drained = [(d, t, m) for d, t, m in self.drained if begin - 0.05 <= t < until]
        got = Counter(tuple(m) for _, _, m in drained)
        # Sent and never at Cadenza's port (JACK's); at the port and dropped by Cadenza's input.
        lost = list((Counter(tuple(m) for _, m in notes) - got).elements())
        dropped = list((got - Counter(tuple(m) for _, m in window)).elements())
        states = [f"{t - begin:+.3f}:{'phrase' if s[0] else '-'}/"
                  f"{'sounding' if s[1] else 'quiet'}/{s[2]}"
                  for t, s in self.states if begin - 0.5 <= t < min(until, last + 2.0)]
        repeats = [m for t, m in self.repeats if begin - 0.05 <= t < until]
        detections = [f"#{k} {p.start_time - begin:+.3f}..{p.end_time - begin:+.3f} "
                      f"detected {p.detected_at - begin:+.3f}" for k, p in found]
        previous = [k for k, (_, p) in enumerate(self.phrases) if p.end_time < begin]
        answer = self.answer_of(previous[-1], records, arrivals, begin) if previous else ""
        late = max((d - t for d, t, _ in drained), default=0.0)
        # The player sends every 20 or 80 ms: a longer gap is its thread held up.
        stall = max((b[0] - a[0] for a, b in zip(notes, notes[1:], strict=False)), default=0.0)
        if lost:
            verdict = "JACK lost some of it before Cadenza's port"
        elif dropped:
            verdict = "Cadenza's input dropped some of it"
        elif found:
            verdict = "heard whole, ended with another phrase"
        else:
            verdict = "heard whole, never ended"
        return (f"phrase {i} at {begin:.3f} [{verdict}]: sent {len(notes)} msgs over "
                f"{last - begin:.3f} s (longest gap {stall * 1e3:.0f} ms); engine heard "
                f"{len(window)} (drained {len(drained)}, "
                f"latest drain {late * 1e3:.1f} ms after its stamp); lost before the port "
                f"{lost}; dropped by the input {dropped} (as repeats {repeats}); "
                f"detections {detections or 'none'}; "
                f"heard {[(round(t - begin, 3), m) for t, m in window]}; "
                f"states {states}; {answer}")

    def answer_of(self, k: int, records, arrivals, begin: float) -> str:
        """The k-th answer's timing against `begin`, the next phrase's first send."""
        if k >= len(records):
            return f"answer #{k}: no record"
        record = records[k]
        out = [t for t, _ in arrivals if record.start - 0.01 <= t < begin + 1.0]
        ends = record.start + record.seconds
        during = [round(t - begin, 3) for t in out if t >= begin]
        return (f"previous answer #{k} {record.start - begin:+.3f}..{ends - begin:+.3f} "
                f"(last arrival {max(out, default=float('nan')) - begin:+.3f}; "
                f"arrivals after this phrase began {during[:6]})")
