"""`cadenza live --mode backing`, in two layers. Through a real JACK server, a test client
playing the DAW (MIDI clock, Start, a melody, Stop) into Cadenza and recording what it sends:
the DAW's grid as JACK delivers it, a port per part, signals to a real `cadenza live`. On fake
ports (tests/realtime/helpers.py), what the engine does with what it hears: Continue, the
internal grid, knobs, keys and CCs, a lost port, a failing model, the shipped model's harmony.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import numpy as np
import pytest

from cadenza.realtime.clock import song_position_message
from cadenza.realtime.keys import TerminalKeys
from cadenza.realtime.live import status_line
from tests.realtime.helpers import (
    FakeRunningEngine,
    RunningEngine,
    StampedOutput,
    assert_all_ended,
    assert_arrived_as_sent,
    assert_live_fails_in_one_line,
    has_note_on,
    interrupt_live,
    note_ons,
    sounding_after,
    spawn_live,
    unique,
    wait_for,
)

CLOCK, START, CONTINUE, STOP = 0xF8, 0xFA, 0xFB, 0xFC
MELODY = [67, 69, 71, 72, 74, 72, 71, 69]


def pulse_at(bpm: float) -> float:
    """Seconds between two pulses of 24 ppqn MIDI clock at `bpm`."""
    return 60.0 / bpm / 24


class PlannedSteps:
    """The deadlines the backing asked the scheduler for, beside what it sends: where the
    engine put each note on the clock's grid. (When it is sent depends also on whether the
    machine gave the scheduler's thread the core in time: the soak benchmark measures that,
    and a test does not fail on it.)"""

    def __init__(self, scheduler) -> None:
        self.schedule_many = scheduler.schedule_many
        self.planned: list[tuple[float, list[int]]] = []
        scheduler.schedule_many = self  # the instance's method, as the backing loop calls it

    def __call__(self, events) -> None:
        events = list(events)
        self.planned.extend((deadline, list(message)) for deadline, message in events)
        self.schedule_many(events)


# --- through JACK ------------------------------------------------------------------------


def play_the_daw(daw, *, bpm: float, before: int, bars: int, after: float) -> tuple[float, int]:
    """What a DAW synced by MIDI clock sends: clock while stopped (`before` pulses), Start just
    after a pulse (the next pulse is the downbeat of bar 1), `bars` bars with a melody in
    eighths on channel 1, Stop a pulse after the last 16th (5 pulses before the next step
    would be due: 78 ms at 160 bpm), and clock on for `after` seconds. Returns when pulse 0
    was due and how many pulses were sent (pulse k was due `k` periods after pulse 0)."""
    pulse = pulse_at(bpm)
    playing = bars * 4 * 24 - 6 + 2  # Stop goes after the pulse of song position playing - 1
    first = time.perf_counter() + 0.01
    count = before + playing + int(after / pulse)
    for k in range(count):
        while time.perf_counter() < first + k * pulse:
            time.sleep(0.0002)
        daw.send([CLOCK])
        song = k - before  # the song position of this pulse, in pulses
        if song == -1:
            daw.send([START])
        elif song == playing - 1:
            daw.send([STOP])
        elif 0 <= song and song - song % 12 + 9 < playing and song % 12 in (0, 9):
            pitch = MELODY[song // 12 % len(MELODY)]
            daw.send([0x90, pitch, 90] if song % 12 == 0 else [0x80, pitch, 0])
        elif 0 <= song < playing and song % 48 in (3, 7):  # another channel's notes
            daw.send([0x94, 40, 90] if song % 48 == 3 else [0x84, 40, 0])
    return first, count


@pytest.mark.timing
def test_backing_plays_on_the_daws_grid_and_stops_with_it(
    tiny_backing_bundle, make_player, make_recorder, jack_late_cycles
):
    bars = 3
    daw = make_player().open_virtual(unique("daw"))
    tap = make_recorder().connect(daw.port_name)  # the clock as it arrives
    with RunningEngine(tiny_backing_bundle, mode="backing", input_port=daw.port_name,
                       follow_clock=True, density=2.0, input_channel=1,
                       passthrough=True) as running:
        stamped = StampedOutput.around(running.engine.scheduler)
        planned = PlannedSteps(running.engine.scheduler)
        out = make_recorder().connect(f"{running.name} out")
        time.sleep(0.3)  # JACK makes connections at its next cycles
        # A bar of clock before Start: the backing needs a beat of it to lock, and its tempo
        # line a bar to hold the grid to 2 ms from the first step on.
        first, count = play_the_daw(daw, bpm=160.0, before=96, bars=bars, after=0.3)
        assert running.engine.mode.backing.steps >= bars * 16 - 1
        arrived = list(out.events)  # before the engine closes (and sends its panic)
        sent = list(stamped.sent)
        lateness = running.engine.scheduler.lateness_stats()
        heard = running.engine.generator.history
        time.sleep(0.05)  # the last pulse is a JACK cycle on its way
        engine_pulses = running.engine.timeline.clock.pulses
        slips = running.engine.timeline.clock.slips

    # The 16th-note grid of the clock as received: a line through the pulses at the tap, each
    # by the number the DAW sent it under (JACK now and then loses one on the way, or delivers
    # one twice: counting them at the tap would bend the line), the downbeat of bar 1 on the
    # first pulse after Start.
    pulses = np.array([t for t, m in tap.events if m == [CLOCK]])
    due = (pulses - first) / pulse_at(160.0)  # periods since pulse 0 was due, plus latency
    numbers = np.round(due - np.median(due - np.round(due)))  # less the typical latency
    downbeat = 96
    stop_at = next(t for t, m in tap.events if m == [STOP])
    slope, intercept = np.polyfit(numbers, pulses, 1)
    # The engine counted the pulses the DAW sent, a lost or doubled one corrected.
    assert engine_pulses == count, f"engine {engine_pulses}, sent {count}, {slips=}"
    ons = [(t, m) for t, m in note_ons(planned.planned) if m[0] & 0x0F]  # not channel 1's
    assert len(ons) >= 4
    errors = []
    for t, _ in ons:
        sixteenth = round(((t - intercept) / slope - downbeat) / 6)
        errors.append(t - (intercept + (downbeat + 6 * sixteenth) * slope))
    assert np.abs(errors).max() < 0.002, np.round(np.array(errors) * 1e3, 2)
    print(f"sent late by p50 {lateness['p50'] * 1e3:.3f} ms, max {lateness['max'] * 1e3:.3f} ms")
    backing_sent = [m for _, m in note_ons(sent) if m[0] & 0x0F]
    assert backing_sent == [m for _, m in ons][:len(backing_sent)]  # Stop cancels what's due

    # The backing parts, each on its channel (2, 3, 4 after the default output channel 1).
    assert {m[0] & 0x0F for _, m in ons} <= {1, 2, 3}
    assert len({m[0] & 0x0F for _, m in ons}) >= 2
    # The melody on channel 1 passed through, and the model heard it; channel 5 did neither.
    passed = [m[1] for _, m in note_ons(sent) if m[0] & 0x0F == 0]
    assert passed == [MELODY[k % len(MELODY)] for k in range(len(passed))] and len(passed) > 20
    parts = running.engine.generator.parts
    player = {pitch for kind, _, pitch in map(parts.describe, heard) if kind == "player_on"}
    assert player and player <= set(MELODY)
    # All of it arrived (but what JACK's server says it lost); with Stop every note ended at
    # once, and nothing else came after it (the next step was due 78 ms after the Stop),
    # though the clock went on. (Program changes left out: the first ones went out before the
    # recorder was connected; the DAW's Start sends them again.)
    assert_arrived_as_sent([m for _, m in sent if m[0] & 0xF0 != 0xC0],
                           [m for _, m in arrived if m[0] & 0xF0 != 0xC0], jack_late_cycles)
    assert sounding_after([m for _, m in sent]) == {}
    before = [m for t, m in sent if t <= stop_at]
    after = [m for t, m in sent if t > stop_at]
    assert all(m[0] & 0xF0 == 0x80 for m in after), after
    assert Counter((m[0] & 0x0F, m[1]) for m in after) == Counter(sounding_after(before))


def test_a_port_per_part(tiny_backing_bundle, player, make_recorder, jack_late_cycles):
    with RunningEngine(tiny_backing_bundle, mode="backing", backing_ports=True, density=3.0,
                       bpm=200.0, passthrough=True) as running:
        names = ("alto", "tenor", "bass")
        parts = [make_recorder().connect(f"{running.name} {name}") for name in names]
        main = make_recorder().connect(f"{running.name} out")
        player.connect(f"{running.name} in")
        time.sleep(0.2)
        player.send([0x90, 60, 90])
        wait_for(lambda: sum(len(note_ons(p.events)) for p in parts) >= 6)
        player.send([0x80, 60, 0])
        time.sleep(0.2)
    for channel, part in zip((1, 2, 3), parts, strict=True):
        assert {m[0] & 0x0F for m in part.messages if m[0] < 0xF0} <= {channel}
        assert_all_ended(part.messages, jack_late_cycles)
    assert [m for m in main.messages if m[0] & 0xF0 == 0x90] == [[0x90, 60, 90]]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_leaves_no_backing_note_sounding(tiny_backing_bundle, player, recorder, signum):
    process, name = spawn_live(
        player, "--mode", "backing", "--bundle", str(tiny_backing_bundle), "--quiet", "--bpm",
        "200", "--density", "3", "--seed", "1")
    try:
        recorder.connect(f"{name} out")
        recorder.wait_until(lambda messages: len(note_ons([(0, m) for m in messages])) >= 3)
    except BaseException:
        process.kill()
        raise
    interrupt_live(process, signum, recorder)


# --- on fake ports -------------------------------------------------------------------------


def send_pulses(daw, bpm: float, count: int, extra=None,
                stop: threading.Event | None = None) -> float:
    """Up to `count` pulses of clock at `bpm` into `daw` (a FakeInput), each at its time, until
    `stop` is set; after pulse k, whatever extra(k) returns goes too. Returns the time of the
    first pulse."""
    pulse = pulse_at(bpm)
    first = time.perf_counter() + 0.01
    for k in range(count):
        if stop is not None and stop.is_set():
            break
        while time.perf_counter() < first + k * pulse:
            time.sleep(0.0002)
        daw.send([CLOCK])
        for message in extra(k) if extra is not None else ():
            daw.send(message)
    return first


def test_continue_plays_from_the_song_position(tiny_backing_bundle):
    with FakeRunningEngine(tiny_backing_bundle, mode="backing", follow_clock=True) as running:
        engine, daw = running.engine, running.input
        stopped = []

        def continue_at_37(k):
            """Two beats of clock stopped, then the pointer to 16th number 37 (bar 3, beat 2,
            its 2nd 16th) and Continue; then up to two beats playing."""
            if k != 47:
                return []
            stopped.append(engine.mode.backing.steps)
            return [song_position_message(37), [CONTINUE]]

        enough = threading.Event()
        clock = threading.Thread(target=send_pulses,
                                 args=(daw, 200.0, 48 + 48, continue_at_37, enough))
        clock.start()
        try:
            wait_for(lambda: engine.mode.backing.steps >= 3)
        finally:
            enough.set()
            clock.join()
        parts = engine.generator.parts
        steps = [parts.describe(t)[2] for t in engine.generator.history if parts.is_step(t)]
    assert stopped == [0]  # nothing played while stopped
    assert steps[:3] == [5, 6, 7]  # 37 % 16: no downbeat armed and left in the model's context


def test_a_lost_output_port_stops_the_backing_cleanly(tiny_backing_bundle):
    with FakeRunningEngine(tiny_backing_bundle, mode="backing", bpm=200.0,
                           density=3.0) as running:
        running.output.wait_until(has_note_on)
        running.output.lose()  # the cable is pulled
        running.thread.join(timeout=5)
        assert not running.thread.is_alive()
        assert "lost" in running.engine.stats.error


@pytest.mark.timing
def test_without_a_clock_it_plays_at_once_on_the_internal_grid(tiny_backing_bundle):
    with FakeRunningEngine(tiny_backing_bundle, mode="backing", bpm=150.0,
                           density=2.0) as running:
        planned = PlannedSteps(running.engine.scheduler)
        backing = running.engine.mode.backing
        wait_for(lambda: backing.steps >= 8 and note_ons(list(planned.planned)))  # two beats
        grid = running.engine.timeline.grid
    ons = note_ons(planned.planned)
    assert ons and {m[0] & 0x0F for _, m in ons} <= {1, 2, 3}
    sixteenths = np.array([(t - grid.origin) / (grid.seconds_per_beat / 4) for t, _ in ons])
    assert np.abs(sixteenths - np.round(sixteenths)).max() * grid.seconds_per_beat / 4 < 0.002
    assert sounding_after(running.output.messages) == {}  # closing the engine ended every note


def test_knobs_keys_and_ccs_of_the_backing(tiny_backing_bundle):
    with FakeRunningEngine(tiny_backing_bundle, mode="backing", density=0.0, loop_bars=0,
                           **{"cc.density": 20, "cc.loop": 21, "cc.mutate": 22}) as running:
        engine, keys = running.engine, TerminalKeys(running.engine.controls)
        player = running.input
        backing = engine.mode.backing
        keys.press(")")
        keys.press(")")
        keys.press("(")
        assert engine.generator.density == 0.5
        keys.press("l")
        assert backing.looping
        keys.press("]")
        assert backing.loop_bars == 3
        player.send([0xB0, 20, 127])  # density knob fully up
        player.send([0xB0, 21, 127])  # loop button: off
        wait_for(lambda: engine.generator.density == 3.0 and not backing.looping)
        player.send([0xB0, 22, 127])  # mutate
        wait_for(lambda: backing._mutate is False and backing.steps > 2)
        assert "density +3.0" in status_line(engine) and "loop off" in status_line(engine)
        assert f"bar {backing.bar}:" in status_line(engine)
        keys.press("p")  # panic: every backing note ends, the backing plays on
        steps = backing.steps
        wait_for(lambda: backing.steps > steps + 2)
    assert sounding_after(running.output.messages) == {}


def test_a_failing_generator_stops_the_engine_with_every_note_ended(tiny_backing_bundle):
    running = FakeRunningEngine(tiny_backing_bundle, mode="backing", bpm=200.0, density=3.0)
    generator = running.engine.generator
    play, calls = generator.play, []

    def failing(forced=None, emit=None):
        calls.append(forced)
        if len(calls) > 24:
            raise RuntimeError("the model fell over")
        return play(forced, emit)

    generator.play = failing
    with running:
        running.thread.join(timeout=10)
        assert not running.thread.is_alive()
        assert "generator failed: RuntimeError: the model fell over" in running.engine.stats.error
    assert note_ons(running.output.events) and sounding_after(running.output.messages) == {}


@pytest.mark.parametrize("args, words", [
    (["--backing-channels", "2,3"], ["backing_channels", "3 backing parts", "2 channels"]),
    (["--backing-channels", "2,3,17"], ["backing_channels", "1..16"]),
    (["--backing-velocity", "80,90"], ["backing_velocity", "3 backing parts"]),
    (["--backing-programs", "48,48"], ["backing_programs", "3 backing parts", "2 programs"]),
    (["--backing-programs", "48,48,128"], ["backing_programs", "0..127"]),
    (["--listen-ms", "80"], ["listen_ms", "0..50"]),
    (["--density", "5"], ["density", "-3..3"]),
    (["--loop-bars", "-1"], ["loop_bars", "0..16"]),
])
def test_bad_backing_settings_are_one_line_and_exit_2(tiny_backing_bundle, jack_server, args,
                                                      words):
    backing = ["--mode", "backing", "--bundle", str(tiny_backing_bundle)]
    assert_live_fails_in_one_line([*backing, *args], words)


def test_a_bundle_of_the_wrong_kind_is_one_line(tiny_backing_bundle, tiny_bundle, jack_server):
    assert_live_fails_in_one_line(["--mode", "backing", "--bundle", str(tiny_bundle)],
                                  ["bundle", "no backing parts"])
    assert_live_fails_in_one_line(["--bundle", str(tiny_backing_bundle)],
                                  ["mode", "--mode backing"])


def melody_of_a_chorale(bars: int) -> list[tuple[int, int, int]]:
    """(start, end, pitch) in 16ths of a real chorale's soprano from its first bar line (a
    test-split piece, which the shipped model never trained on)."""
    from cadenza.corpus.parts import choose_parts, read_parts
    from cadenza.corpus.prepare import split_of
    from cadenza.corpus.sources import resolve_source

    piece = next(p for p in resolve_source("music21:bach") if split_of(p.id) == "test")
    read = read_parts(piece)
    soprano, first = choose_parts(read.parts, 3)[0], int(read.bar_starts[0])
    return [(int(n["start"]) - first, int(n["end"]) - first, int(n["pitch"])) for n in soprano
            if first <= n["start"] < first + 16 * bars]


def test_the_backing_plays_in_the_melodys_harmony_with_each_parts_program():
    """The shipped bundle under a DAW (on fake ports): clock, Start, a chorale's melody; on
    every beat the parts sound notes consonant with the melody's, each part on its channel
    after its program, and Stop ends every note."""
    melody = melody_of_a_chorale(bars=6)
    pulse = pulse_at(180.0)  # the chorale a little quicker than it is sung: beats are beats
    before = 48  # two beats of clock stopped (the backing locks to one)
    sixteenth = 6  # pulses
    starts = {(start * sixteenth, pitch) for start, _, pitch in melody}
    offs = {(end * sixteenth, pitch) for _, end, pitch in melody}
    length = max(end for _, end, _ in melody) * sixteenth
    with FakeRunningEngine(None, mode="backing", follow_clock=True,
                           backing_programs=(52, 49, 33)) as running:
        daw = running.input
        first = time.perf_counter() + 0.01
        for k in range(before + length + 24):  # the clock stopped, the melody, a beat more
            while time.perf_counter() < first + k * pulse:
                time.sleep(0.0002)
            song = k - before
            if song == -1:
                daw.send([CLOCK])
                daw.send([START])
                continue
            for pitch in sorted(p for s, p in offs if s == song):
                daw.send([0x80, pitch, 0])
            for pitch in sorted(p for s, p in starts if s == song):
                daw.send([0x90, pitch, 90])
            daw.send([CLOCK])
            if song == length:
                daw.send([STOP])
        downbeat = first + before * pulse
        arrived = list(running.output.events)  # a beat after the Stop, before the engine
        # closes (and sends its panic)
    # Each part's program on its channel, when the engine started and again at Start (for a
    # DAW track or synth connected since), before the first note.
    kinds = [m[0] & 0xF0 for _, m in arrived]
    programs = [m for _, m in arrived[: kinds.index(0x90)] if m[0] & 0xF0 == 0xC0]
    assert programs == [[0xC1, 52], [0xC2, 49], [0xC3, 33]] * 2
    ons = note_ons(arrived)
    assert {m[0] & 0x0F for _, m in ons} <= {1, 2, 3} and len(ons) > 20
    # Stop ended every note Cadenza sent.
    assert sounding_after([m for _, m in arrived]) == {}
    # On each beat, 30 ms after it (the backing answers within a few ms of the melody's note):
    # the melody's one note against the pitch classes the parts sound.
    sounding: dict[tuple[int, int], float] = {}
    spans = []
    for t, m in arrived:
        key = (m[0] & 0x0F, m[1])
        if m[0] & 0xF0 == 0x90 and m[2] > 0:
            sounding[key] = t
        elif m[0] & 0xF0 in (0x80, 0x90) and key in sounding:
            spans.append((sounding.pop(key), t, m[1]))
    beat_seconds = 24 * pulse
    consonant = counted = 0
    for beat in range(length // 24):
        at = downbeat + beat * beat_seconds + 0.03
        tune = [p for s, e, p in melody if s <= 4 * beat < e]
        classes = {p % 12 for start, end, p in spans if start <= at < end}
        if len(tune) == 1 and classes:
            consonant += sum((tune[0] - pc) % 12 in (0, 3, 4, 7, 8, 9) for pc in classes)
            counted += len(classes)
    assert counted > 20
    print(f"consonant with the melody on the beat: {consonant / counted:.3f} of {counted}")
    assert consonant / counted > 0.6, consonant / counted  # random pitch classes: 0.5
