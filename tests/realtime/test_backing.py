"""The backing loop on explicit times: the real tiny backing model, the grid arithmetic, the
player's notes quantised into the model's frames, the loop, density, stop and start.

Nothing here waits: the loop reads no clock, so each test says when it is polled."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.parts import PLAYER_OFF, PLAYER_ON, STEP
from cadenza.plugins import load_generator
from cadenza.realtime.backing import (
    LATE_MARGIN,
    MAX_PLAYER_NOTES,
    BackingLoop,
    seam,
)
from cadenza.realtime.clock import CLOCK, PPQN, START, BeatGrid, ClockFollower

T0 = 100_000.0  # perf_counter values are large: the arithmetic must hold there
BPM = 120.0
STEP_SECONDS = 60.0 / BPM / 4
CHANNELS = [1, 2, 3]


class Sink:
    """Where the loop's messages go (what the engine's Scheduler would send, and when)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, list[int]]] = []
        self.ended: list[list[int]] = []

    def schedule_many(self, events) -> None:
        self.events.extend((t, list(m)) for t, m in events)

    def end_channels(self, channels) -> None:
        self.ended.append(list(channels))

    def ons(self) -> list[tuple[int, int, int]]:
        """(step, channel, pitch) of every note-on."""
        return [(round((t - T0) / STEP_SECONDS), m[0] & 0x0F, m[1])
                for t, m in self.events if m[0] & 0xF0 == 0x90]


def make_loop(bundle, *, density=2.0, seed=5, loop_bars=0, grid=None, listen=None,
              listen_above=0.0):
    """A loop that plans every step ahead (listen None), or listens for `listen` seconds (on
    every step: the tiny model's guess of the player is no test's business)."""
    generator = load_generator(bundle, seed=seed)
    generator.density = density
    sink = Sink()
    grid = grid or BeatGrid(BPM, T0)
    loop = BackingLoop(generator, sink, lambda: grid, channels=CHANNELS, velocities=[80] * 3,
                       steps_per_quarter=4, loop_bars=loop_bars, listen=listen,
                       listen_above=listen_above)
    return loop, sink


def run(loop: BackingLoop, until: float, *, now: float | None = None, player=()) -> float:
    """Poll as the control loop does (when due), with `player` notes (t, message) fed when
    their time has come; returns the time reached."""
    notes = sorted(player)
    now = T0 - 0.2 if now is None else now
    while now < until:
        while notes and notes[0][0] <= now:
            loop.player(*notes.pop(0))
        due = loop.poll(now)
        nxt = min(due if due is not None else until, notes[0][0] if notes else until, until)
        now = max(nxt, now + 1e-6)
    return now


def frames(generator) -> list[list[tuple[str, int]]]:
    """The model's context split into step frames: (kind, pitch) of the player's tokens."""
    out: list[list[tuple[str, int]]] = []
    for token in generator.history:
        kind, _, value = generator.parts.describe(token)
        if kind == STEP:
            out.append([])
        elif kind in (PLAYER_ON, PLAYER_OFF) and out:
            out[-1].append((kind, value))
    return out


def at(step: float) -> float:
    return T0 + step * STEP_SECONDS


# --- the grid -------------------------------------------------------------------------------
def test_every_step_is_on_the_grid_and_none_is_skipped(tiny_backing_bundle):
    loop, sink = make_loop(tiny_backing_bundle)
    loop.start(0.0)
    run(loop, at(400))
    assert loop.steps == 401 and loop.rests == 0
    steps = np.array([(t - T0) / STEP_SECONDS for t, _ in sink.events])
    assert len(steps) > 20
    # origin + k x step, computed, never summed: exact to float precision at T0 = 1e5 s.
    assert np.abs(steps - np.round(steps)).max() * STEP_SECONDS < 1e-9
    assert (loop.bar, loop.position) == (26, 0)  # step 400 is the downbeat of bar 26


def test_note_offs_come_first_and_each_part_has_its_channel(tiny_backing_bundle):
    loop, sink = make_loop(tiny_backing_bundle)
    loop.start(0.0)
    run(loop, at(200))
    assert {m[0] & 0x0F for _, m in sink.events} <= set(CHANNELS)
    assert all(m[2] == 80 for _, m in sink.events if m[0] & 0xF0 == 0x90)
    by_time: dict[float, list[int]] = {}
    for t, m in sink.events:
        by_time.setdefault(t, []).append(m[0] & 0xF0)
    assert all(kinds == sorted(kinds) for kinds in by_time.values())  # 0x80 before 0x90


def test_a_late_step_is_a_rest_and_nothing_is_scheduled_in_the_past(tiny_backing_bundle):
    loop, sink = make_loop(tiny_backing_bundle)
    loop.start(0.0)
    now = run(loop, at(10))
    stalled = at(13.2)  # the control thread comes back three steps late
    loop.poll(stalled)
    assert loop.rests == 3  # steps 11, 12, 13 were due too soon: rests
    assert all(t >= stalled + LATE_MARGIN for t, _ in sink.events if t > now)
    run(loop, at(30), now=stalled)
    assert loop.rests == 3 and loop.steps == 31


def test_a_stall_of_over_a_bar_goes_on_from_now(tiny_backing_bundle):
    loop, _ = make_loop(tiny_backing_bundle)
    loop.start(0.0)
    run(loop, at(4))
    loop.poll(at(100.6))  # a laptop waking up: no 96 rests, the next step is step 101
    assert loop.steps == 6 and loop.position == 101 % 16


# --- the player -----------------------------------------------------------------------------
def test_planned_ahead_the_player_is_heard_a_step_late(tiny_backing_bundle):
    loop, _ = make_loop(tiny_backing_bundle)
    loop.start(0.0)
    run(loop, at(6), player=[(at(2.0), [0x90, 60, 90])])
    heard = frames(loop.generator)
    assert heard[2] == [] and heard[3] == [(PLAYER_ON, 60)]  # step 3's backing knows it


def test_player_notes_go_to_the_nearest_step(tiny_backing_bundle):
    loop, _ = make_loop(tiny_backing_bundle)
    loop.start(0.0)
    played = [
        (at(2.4), [0x90, 60, 90]),  # nearer step 2
        (at(4.6), [0x90, 62, 90]),  # nearer step 5, though played before it
        (at(4.55), [0x80, 60, 0]),  # nearer step 5
        (at(7.45), [0x90, 64, 0]),  # a note-on of velocity 0 ends a note: step 7
    ]
    run(loop, at(10), player=played)
    heard = frames(loop.generator)[1:]  # planned ahead, frame n + 1 holds step n's notes
    assert heard[2] == [(PLAYER_ON, 60)]
    assert heard[5] == [(PLAYER_OFF, 60), (PLAYER_ON, 62)]
    assert heard[7] == []  # 64 never sounded: nothing to end
    assert sum(map(len, heard)) == 3


def test_a_note_after_its_frame_closed_goes_to_the_next_open_frame(tiny_backing_bundle):
    loop, _ = make_loop(tiny_backing_bundle)
    loop.start(0.0)
    run(loop, at(4))  # step 3's notes went into step 4's frame half a step before step 4
    loop.player(at(3.1), [0x90, 65, 90])  # stamped in step 3, drained too late for it
    run(loop, at(6), now=at(4))
    assert frames(loop.generator)[5] == [(PLAYER_ON, 65)]


def test_a_note_shorter_than_a_step_lasts_the_step(tiny_backing_bundle):
    loop, _ = make_loop(tiny_backing_bundle)
    loop.start(0.0)
    run(loop, at(8), player=[(at(3.0), [0x90, 70, 90]), (at(3.2), [0x80, 70, 0])])
    heard = frames(loop.generator)
    assert heard[4] == [(PLAYER_ON, 70)] and heard[5] == [(PLAYER_OFF, 70)]


def test_a_flood_of_player_notes_is_bounded(tiny_backing_bundle):
    loop, _ = make_loop(tiny_backing_bundle)
    loop.start(0.0)
    for k in range(5 * MAX_PLAYER_NOTES):
        loop.player(T0, [0x90, k % 128, 90])
    assert len(loop._player) == MAX_PLAYER_NOTES


# --- knobs ----------------------------------------------------------------------------------
def test_density_makes_the_backing_busier(tiny_backing_bundle):
    # From silence, over two bars: later the tiny model's voices are all taken (it has
    # learnt to start notes far better than to end them) and only note-offs free them.
    counts = {}
    for density in (-3.0, 3.0):
        loop, sink = make_loop(tiny_backing_bundle, density=density, seed=9)
        loop.start(0.0)
        run(loop, at(31))
        counts[density] = len(sink.ons())
    assert counts[3.0] > counts[-3.0] + 6, counts


# --- the loop -------------------------------------------------------------------------------
def bars_of(ons, first: int, count: int) -> list[tuple[int, int, int]]:
    """Note-ons of bars first .. first+count-1, their steps counted from the first's start."""
    low, high = 16 * first, 16 * (first + count)
    return [(s - low, c, p) for s, c, p in ons if low <= s < high]


def test_the_loop_repeats_the_last_bars_with_their_period(tiny_backing_bundle):
    loop, sink = make_loop(tiny_backing_bundle, loop_bars=2)
    loop.start(0.0)
    run(loop, at(16 * 8))
    ons = sink.ons()
    first = bars_of(ons, 0, 2)
    assert len(first) >= 6
    assert bars_of(ons, 2, 2) == first and bars_of(ons, 4, 2) == first
    assert bars_of(ons, 6, 2) == first
    assert loop.loop_state == "2 bars playing"
    assert_no_note_doubled(sink)


def test_mutate_loops_new_bars_and_loop_off_generates_on(tiny_backing_bundle):
    loop, sink = make_loop(tiny_backing_bundle, loop_bars=1)
    loop.start(0.0)
    run(loop, at(16 * 3 - 4))
    loop.mutate()  # mid bar 3: bar 4 is generated afresh, then looped
    run(loop, at(16 * 7 - 4), now=at(16 * 3 - 4))
    ons = sink.ons()
    old, new = bars_of(ons, 2, 1), bars_of(ons, 4, 1)
    assert new != old and bars_of(ons, 5, 1) == new
    assert bars_of(ons, 6, 1) == [n for n in new if n[0] <= 12]  # the run ends at its step 12
    loop.toggle_loop()  # off: generation goes on from bar 8
    run(loop, at(16 * 12), now=at(16 * 7 - 4))
    ons = sink.ons()
    assert any(bars_of(ons, bar, 1) != new for bar in range(8, 12))
    assert_no_note_doubled(sink)


def test_switching_the_loop_on_repeats_what_was_just_played(tiny_backing_bundle):
    loop, sink = make_loop(tiny_backing_bundle, loop_bars=0)
    loop.start(0.0)
    run(loop, at(16 * 4 - 5))
    loop.toggle_loop()  # in bar 4: bars 3 and 4 (the last two whole ones) are the loop
    run(loop, at(16 * 10), now=at(16 * 4 - 5))
    ons = sink.ons()
    recorded, replayed = bars_of(ons, 2, 2), bars_of(ons, 4, 2)
    assert replayed == bars_of(ons, 6, 2) == bars_of(ons, 8, 2)
    # As recorded, but for notes held into a recorded bar, which are struck at its start.
    assert set(recorded) <= set(replayed)
    assert all(step in (0, 16) for step, _, _ in set(replayed) - set(recorded))


def assert_no_note_doubled(sink: Sink) -> None:
    """No note-on for a note already sounding on its channel, no note-off for a silent one:
    the replayed loop keeps the stream consistent across its seams."""
    sounding: set[tuple[int, int]] = set()
    for _, m in sorted(sink.events, key=lambda e: e[0]):  # stable: offs stay before ons
        key = (m[0] & 0x0F, m[1])
        if m[0] & 0xF0 == 0x90:
            assert key not in sounding, key
            sounding.add(key)
        else:
            assert key in sounding, key
            sounding.remove(key)


def test_seam_restores_the_recorded_bar_start():
    start = frozenset({(0, 60), (2, 40)})  # sounding when the recorded bar began
    first = [(0, 60, False), (1, 55, True), (2, 40, False), (2, 40, True)]
    now = {(0, 60), (1, 50), (1, 55)}  # sounding at the seam
    changes = seam(now, start, first)
    assert changes == [(0, 60, False), (1, 50, False), (1, 55, False),
                       (1, 55, True), (2, 40, True)]


# --- transport ------------------------------------------------------------------------------
def test_stop_ends_every_note_and_nothing_more_comes(tiny_backing_bundle):
    loop, sink = make_loop(tiny_backing_bundle)
    loop.start(0.0)
    run(loop, at(40))
    assert any(loop.generator.sounding)
    loop.stop()
    assert sink.ended == [CHANNELS]  # the scheduler drops what is pending, ends what sounds
    count = len(sink.events)
    assert loop.poll(at(41)) is None and loop.poll(at(60)) is None
    assert len(sink.events) == count
    loop.start(None)  # e.g. Continue
    run(loop, at(70), now=at(60))
    # The model heard every note of before the Stop end: what it holds now began after it.
    restarted = {(m[0] & 0x0F, m[1]) for t, m in sink.events[count:] if m[0] & 0xF0 == 0x90}
    held = {(CHANNELS[part], pitch) for part, pitches in enumerate(loop.generator.sounding)
            for pitch in pitches}
    assert held <= restarted


def test_start_plays_the_downbeat_generated_while_stopped(tiny_backing_bundle):
    follower = ClockFollower(min_pulses=PPQN)
    loop, sink = make_loop(tiny_backing_bundle, grid=None)
    loop.grid = lambda: follower.grid(4)
    period = 60.0 / BPM / PPQN
    for k in range(96):  # a bar of clock while the DAW is stopped
        follower.feed(T0 + k * period, [CLOCK])
        assert loop.poll(T0 + k * period + 0.0001) is None
    assert loop._armed is not None
    # Start, and the first pulse (the downbeat) 0.5 ms later: too soon to generate it.
    follower.feed(T0 + 95 * period + 0.0001, [START])
    loop.start(0.0)
    loop.poll(T0 + 95 * period + 0.0002)
    downbeat = T0 + 96 * period
    assert loop.steps == 1 and loop.rests == 0 and loop.bar == 1 and loop.position == 0
    assert loop.last_deadline == pytest.approx(downbeat, abs=1e-6)


def test_continue_starts_at_the_song_position(tiny_backing_bundle):
    loop, _ = make_loop(tiny_backing_bundle)
    loop.start(6.25)  # Continue from beat 6.25: bar 2, beat 3, its 2nd sixteenth
    run(loop, at(26), now=at(24))
    assert loop.steps == 2 and loop.bar == 2 and loop.beat_in_bar == 3
    assert frames(loop.generator) and loop.position == 26 % 16


# --- listen, then play ----------------------------------------------------------------------
LISTEN = 0.01


def test_listening_plays_a_step_the_moment_the_players_note_of_it_comes(tiny_backing_bundle):
    loop, sink = make_loop(tiny_backing_bundle, listen=LISTEN, density=3.0)
    loop.start(0.0)
    run(loop, at(4.9))
    assert loop.last_deadline == pytest.approx(at(4))  # step 5 is open, waiting
    count = len(sink.events)
    loop.player(at(5) + 0.003, [0x90, 67, 90])  # 3 ms late
    loop.poll(at(5) + 0.0031)
    assert loop.last_deadline == pytest.approx(at(5))  # played at once, on its deadline
    heard = frames(loop.generator)
    assert heard[5] == [(PLAYER_ON, 67)]
    kinds = [loop.generator.parts.describe(t)[0] for t in loop.generator.history]
    last_step = len(kinds) - 1 - kinds[::-1].index("step")
    assert kinds[last_step + 1] == "player_on"  # the backing of step 5 came after it
    assert all(t == pytest.approx(at(5)) for t, _ in sink.events[count:])


def test_a_step_with_no_note_waits_the_listen_window_then_plays(tiny_backing_bundle):
    loop, _ = make_loop(tiny_backing_bundle, listen=LISTEN)
    loop.start(0.0)
    run(loop, at(4.9))
    assert loop.poll(at(5) + 0.004) == pytest.approx(at(5) + LISTEN)  # when it next looks
    assert loop.last_deadline == pytest.approx(at(4))
    loop.poll(at(5) + LISTEN)
    assert loop.last_deadline == pytest.approx(at(5)) and loop.rests == 0


def test_an_early_note_is_heard_and_its_step_still_sounds_on_the_grid(tiny_backing_bundle):
    loop, sink = make_loop(tiny_backing_bundle, listen=LISTEN, density=3.0)
    loop.start(0.0)
    run(loop, at(8), player=[(at(5) - 0.02, [0x90, 72, 90])])  # 20 ms early
    assert frames(loop.generator)[5] == [(PLAYER_ON, 72)]
    steps = np.array([(t - T0) / STEP_SECONDS for t, _ in sink.events])
    assert len(steps) and np.abs(steps - np.round(steps)).max() * STEP_SECONDS < 1e-9


def test_a_note_later_than_the_window_is_heard_on_the_next_step(tiny_backing_bundle):
    loop, _ = make_loop(tiny_backing_bundle, listen=LISTEN)
    loop.start(0.0)
    run(loop, at(8), player=[(at(5) + 0.03, [0x90, 72, 90])])  # 30 ms late
    heard = frames(loop.generator)
    assert heard[5] == [] and heard[6] == [(PLAYER_ON, 72)]


def test_listening_keeps_every_step_and_a_stall_is_a_rest(tiny_backing_bundle):
    loop, _ = make_loop(tiny_backing_bundle, listen=LISTEN)
    loop.start(0.0)
    run(loop, at(100))
    assert loop.steps == 101 and loop.rests == 0
    loop.poll(at(103.3))  # the control thread comes back three steps late
    assert loop.rests >= 1
    run(loop, at(120), now=at(103.3))
    assert loop.last_deadline == pytest.approx(at(119))  # step 120 still listens


def test_a_step_the_player_is_unlikely_to_play_on_sounds_on_the_grid_point(tiny_backing_bundle):
    loop, _ = make_loop(tiny_backing_bundle, listen=LISTEN, listen_above=1.01)  # none likely
    loop.start(0.0)
    run(loop, at(4.9), player=[(at(3) + 0.002, [0x90, 72, 90])])
    assert loop.last_deadline == pytest.approx(at(5))  # planned half a step ahead
    assert loop.listened == 0
    assert frames(loop.generator)[4] == [(PLAYER_ON, 72)]  # heard on the next step


def test_the_model_says_how_likely_the_player_is_to_start_a_note(tiny_backing_bundle):
    generator = load_generator(tiny_backing_bundle, seed=1)
    generator.open_step(0)
    chance = generator.player_probability()
    generator.hear(ons=[67])
    generator.play()
    assert 0.0 < chance < 1.0
    loop, _ = make_loop(tiny_backing_bundle, listen=LISTEN, listen_above=0.0)
    loop.start(0.0)
    run(loop, at(8), player=[(at(4) + 0.002, [0x90, 72, 90])])
    assert loop.listened == 9 and loop.heard_in_time == 1  # steps 0..8 waited; step 4 heard


def test_a_backing_first_bundle_plans_ahead_even_when_asked_to_listen(tiny_backing_bundle,
                                                                       tmp_path):
    import shutil

    from tests.helpers import edit_manifest

    bundle = shutil.copytree(tiny_backing_bundle, tmp_path / "old")
    edit_manifest(bundle, lambda m: m["representation"].pop("order"))
    loop, _ = make_loop(bundle, listen=LISTEN)
    assert not loop.listening
    loop.start(0.0)
    run(loop, at(4.9))
    assert loop.last_deadline == pytest.approx(at(5))  # step 5 was planned half a step ahead


def test_a_foreseen_note_gets_its_backing_with_no_model_work(tiny_backing_bundle):
    loop, sink = make_loop(tiny_backing_bundle, listen=LISTEN, density=3.0)
    loop.start(0.0)
    run(loop, at(4.9))  # step 5 is open, its guesses computed while it waited
    guesses = loop._anticipation
    assert guesses is not None and not guesses.pending
    (_, (pitch,)) = guesses.candidates[0]
    loop.player(at(5) + 0.001, [0x90, pitch, 90])
    loop.poll(at(5) + 0.0011)
    assert loop.foreseen == 1 and loop.last_deadline == pytest.approx(at(5))
    assert frames(loop.generator)[5] == [(PLAYER_ON, pitch)]
