"""BeatGrid arithmetic, following a DAW's MIDI clock, and the deadlines for sending one.

Every message carries an explicit perf_counter timestamp, so nothing here depends on how fast
the machine running the tests is; the jitter is drawn from a seeded generator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cadenza.realtime.clock import (
    CLOCK,
    CONTINUE,
    PPQN,
    START,
    STOP,
    BeatGrid,
    ClockFollower,
    ClockSender,
    song_position_message,
)

DATA = Path(__file__).parent / "data"
T0 = 1000.0  # perf_counter values are large; the arithmetic must not lose precision there


def pulse_times(bpm: float, first: float, count: int, jitter: float = 0.0, seed: int = 0):
    """Arrival times of `count` pulses at `bpm`, the first on `first`, each off by up to
    ±jitter (uniform), as timestamps taken in a MIDI input callback are."""
    rng = np.random.default_rng(seed)
    ideal = first + np.arange(count) * 60.0 / (bpm * PPQN)
    return ideal + rng.uniform(-jitter, jitter, count)


def feed_pulses(follower: ClockFollower, times) -> None:
    for t in times:
        follower.feed(float(t), [CLOCK])


def started_at(bpm: float, beats: float, jitter: float = 0.0, seed: int = 0) -> ClockFollower:
    """A follower that got Start at T0 - 1 ms and then `beats` beats of pulses from T0."""
    follower = ClockFollower()
    follower.feed(T0 - 0.001, [START])
    feed_pulses(follower, pulse_times(bpm, T0, int(beats * PPQN), jitter, seed))
    return follower


# -- BeatGrid --------------------------------------------------------------------------


def test_grid_beat_and_time_are_inverse():
    grid = BeatGrid(100.0, T0)
    assert grid.seconds_per_beat == pytest.approx(0.6)
    assert grid.beat_at(T0 + 1.5) == pytest.approx(2.5)
    assert grid.time_of_beat(2.5) == pytest.approx(T0 + 1.5)


@pytest.mark.parametrize(
    "t, division, expected_beat",
    [
        (T0 + 0.1, 1, 1.0),  # next beat
        (T0 + 0.1, 4, 4.0),  # next bar of 4/4
        (T0 + 0.7, 0.5, 1.5),  # next eighth
        (T0 + 0.7, 0.25, 1.25),  # next sixteenth
        (T0 + 1.2, 1, 2.0),  # exactly on a beat: that beat
        (T0 - 0.7, 1, -1.0),  # before the origin
    ],
)
def test_next_beat(t, division, expected_beat):
    grid = BeatGrid(100.0, T0)
    assert grid.next_beat(t, division) == pytest.approx(grid.time_of_beat(expected_beat))


@pytest.mark.parametrize("beats_per_bar, expected_beat", [(4, 4.0), (3, 3.0), (7, 7.0)])
def test_next_bar_uses_beats_per_bar(beats_per_bar, expected_beat):
    grid = BeatGrid(120.0, T0, beats_per_bar)
    assert grid.next_bar(T0 + 0.2) == pytest.approx(grid.time_of_beat(expected_beat))


def test_retimed_keeps_the_beat_at_the_change():
    grid = BeatGrid(100.0, T0)
    faster = grid.retimed(150.0, at=T0 + 3.0)
    assert faster.beat_at(T0 + 3.0) == pytest.approx(grid.beat_at(T0 + 3.0))
    assert faster.seconds_per_beat == pytest.approx(0.4)


@pytest.mark.parametrize("bpm", [0.0, -10.0, float("nan")])
def test_grid_refuses_a_bad_tempo(bpm):
    with pytest.raises(ValueError, match="bpm"):
        BeatGrid(bpm, T0)


# -- ClockFollower: tempo ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("bpm", [60.0, 100.0, 140.0, 174.0])
def test_tempo_within_half_a_bpm_under_2ms_jitter(bpm, seed):
    follower = started_at(bpm, beats=4, jitter=0.002, seed=seed)
    assert follower.bpm == pytest.approx(bpm, abs=0.5)


@pytest.mark.parametrize("seed", range(5))
def test_tempo_within_half_a_bpm_under_4ms_jitter(seed):
    follower = started_at(100.0, beats=4, jitter=0.004, seed=seed)
    assert follower.bpm == pytest.approx(100.0, abs=0.5)


@pytest.mark.parametrize("seed", range(10))
def test_next_beat_times_within_2ms_under_2ms_jitter(seed):
    follower = started_at(100.0, beats=4, jitter=0.002, seed=seed)
    grid = follower.grid()
    for beat in (4, 5):  # the next beats, not yet played: what an answer is put on
        assert abs(grid.time_of_beat(beat) - (T0 + beat * 0.6)) < 0.002


def test_no_tempo_before_enough_pulses():
    follower = started_at(100.0, beats=2 / PPQN)
    assert follower.bpm is None
    assert follower.grid() is None


@pytest.mark.parametrize("new_bpm", [130.0, 80.0, 104.0])
def test_a_tempo_change_is_followed(new_bpm):
    follower = started_at(100.0, beats=4, jitter=0.002, seed=1)
    change = T0 + 4 * 0.6
    seconds_per_beat = 60.0 / new_bpm
    feed_pulses(follower, pulse_times(new_bpm, change, 3 * PPQN, jitter=0.002, seed=2))
    assert follower.bpm == pytest.approx(new_bpm, abs=0.5)
    next_beat = follower.grid().time_of_beat(7)
    assert abs(next_beat - (change + 3 * seconds_per_beat)) < 0.002


def test_start_on_a_new_pulse_phase_keeps_the_tempo():
    follower = ClockFollower()
    feed_pulses(follower, pulse_times(100.0, T0 - 2.4, 4 * PPQN, jitter=0.002, seed=3))
    follower.feed(T0 - 0.013, [START])
    # The DAW restarts its pulses at Start, 13 ms off the phase of those it sent while stopped.
    feed_pulses(follower, pulse_times(100.0, T0 - 0.013 + 0.001, 4, jitter=0.002, seed=4))
    assert follower.bpm == pytest.approx(100.0, abs=0.5)
    assert abs(follower.grid().time_of_beat(1) - (T0 - 0.012 + 0.6)) < 0.003


def test_an_isolated_late_pulse_does_not_bend_the_tempo():
    times = pulse_times(100.0, T0, 4 * PPQN)
    times[-10] += 0.015  # one callback delayed by 15 ms (a GC pause, a busy core)
    follower = ClockFollower()
    follower.feed(T0 - 0.001, [START])
    feed_pulses(follower, times)
    assert follower.bpm == pytest.approx(100.0, abs=0.05)


def stalled(times: np.ndarray, at: int, seconds: float) -> np.ndarray:
    """`times` with the pulses due during a stall of `seconds` from pulse `at` delivered at
    its end, all at once (the sender, or the MIDI system, was held up: they come bunched)."""
    times = times.copy()
    end = times[at] + seconds
    times[at:][times[at:] < end] = end
    return times


def grid_error_after(follower: ClockFollower, bpm: float, latency: float = 0.0) -> float:
    """Seconds between the follower's next two beats and the true ones (pulses sent from T0,
    arriving `latency` later)."""
    grid, beat = follower.grid(), 60.0 / bpm
    upcoming = [np.ceil((follower.pulses + 1) / PPQN) + k for k in (0, 1)]
    return max(abs(grid.time_of_beat(b) - (T0 + latency + b * beat)) for b in upcoming)


@pytest.mark.parametrize("stall", [0.05, 0.1, 0.2])
@pytest.mark.parametrize("seed", range(3))
def test_a_stall_with_its_pulses_bunched_after_it_keeps_the_grid(stall, seed):
    times = stalled(pulse_times(120.0, T0, 8 * PPQN, jitter=0.002, seed=seed), 4 * PPQN, stall)
    follower = ClockFollower()
    follower.feed(T0 - 0.001, [START])
    for k, t in enumerate(times):
        follower.feed(float(t), [CLOCK])
        if k > 4 * PPQN:  # every moment from the stall on: an answer may be put on the grid
            assert grid_error_after(follower, 120.0) < 0.001
    assert follower.bpm == pytest.approx(120.0, abs=0.2)


@pytest.mark.parametrize("seed", range(3))
def test_pulses_in_bursts_of_skipped_cycles_keep_the_grid_within_a_cycle(seed):
    """A loaded machine's MIDI system skips cycles: pulses arrive two or three at a time,
    each up to 10 ms late, all quantised to 5.3 ms cycles."""
    rng = np.random.default_rng(seed)
    times = pulse_times(120.0, T0, 12 * PPQN)
    cycle = 256 / 48000
    late = times + rng.choice([0.0, cycle, 2 * cycle], size=len(times), p=[0.6, 0.3, 0.1])
    arrivals = np.maximum.accumulate(np.ceil(late / cycle) * cycle)
    latency = float(np.mean(arrivals - times))  # all a receiver can know of the sender
    follower = ClockFollower()
    follower.feed(T0 - 0.001, [START])
    for k, t in enumerate(arrivals):
        follower.feed(float(t), [CLOCK])
        if k > 4 * PPQN:
            assert grid_error_after(follower, 120.0, latency) < cycle  # within a cycle
    assert follower.bpm == pytest.approx(120.0, abs=0.2)


@pytest.mark.parametrize("slip", ["duplicated", "lost"])
@pytest.mark.parametrize("seed", range(3))
def test_a_pulse_counted_twice_or_lost_on_the_way_keeps_the_position(slip, seed):
    """The DAW sent 8 beats of pulses; the MIDI system delivered one pulse twice, or lost
    one: the song position and the grid are the DAW's all the same, once it shows."""
    times = pulse_times(120.0, T0, 8 * PPQN, jitter=0.002, seed=seed)
    at = 5 * PPQN + 7
    if slip == "duplicated":
        times = np.insert(times, at + 1, times[at] + 0.0002)  # just after pulse `at`
    else:
        times = np.delete(times, at)
    follower = ClockFollower()
    follower.feed(T0 - 0.001, [START])
    feed_pulses(follower, times)
    assert follower.slips == 1 and follower.pulses == 8 * PPQN
    assert follower.beat_position(T0 + 8 * 0.5) == pytest.approx(8.0, abs=0.01)
    assert grid_error_after(follower, 120.0) < 0.001


def test_a_pulse_delivered_twice_is_not_counted_even_as_the_last_one():
    """A repeated pulse sits on top of the one before it: the count and the position are
    right at once, before any later pulse could show a slip."""
    times = pulse_times(120.0, T0, 4 * PPQN, jitter=0.002, seed=1)
    follower = ClockFollower()
    follower.feed(T0 - 0.001, [START])
    feed_pulses(follower, times)
    follower.feed(float(times[-1]) + 0.00004, [CLOCK])
    assert follower.pulses == 4 * PPQN and follower.slips == 1
    assert follower.beat_position(float(times[-1])) == pytest.approx(4.0 - 1 / PPQN, abs=0.01)


def test_a_backlog_after_a_held_up_pulse_is_counted_whole():
    """Pulses held up and delivered together (the same stamp) are each a pulse the DAW sent."""
    times = pulse_times(120.0, T0, 4 * PPQN, seed=2)
    held = times.copy()
    held[50:54] = times[53] + 0.0001  # four pulses arrive together, with the fourth
    follower = ClockFollower()
    feed_pulses(follower, held)
    assert follower.pulses == 4 * PPQN and follower.slips == 0


def recorded(name: str) -> list[tuple[float, list[int]]]:
    """A clock stream as `cadenza live` received it through JACK (tests/realtime/data)."""
    lines = (DATA / name).read_text().splitlines()
    return [(float(t), [int(status)]) for t, status in
            (line.split() for line in lines if not line.startswith("#"))]


@pytest.mark.parametrize("name", ["clock-160bpm-jack.txt", "clock-160bpm-jack-lost-pulse.txt"])
def test_a_recorded_jack_stream_keeps_the_grid_within_a_millisecond(name):
    """Pulses through JACK on a loaded machine arrive up to 8 ms off their time, one now and
    then lost: from the first bar on, the grid stays within 1 ms of the DAW's (its pulses
    due every period from Start, arriving after the stream's typical latency), and the song
    position counts what the DAW sent."""
    stream = recorded(name)
    period = 60.0 / 160.0 / PPQN
    start = next(k for k, (_, m) in enumerate(stream) if m == [START])
    pulses = np.array([t for t, m in stream if m == [CLOCK]])
    numbers = np.round((pulses - pulses[0]) / period)  # as the DAW sent them
    latency = float(np.median(pulses - pulses[0] - numbers * period))
    first = numbers[pulses > stream[start][0]][0]  # the first pulse after Start: position 0
    downbeat = pulses[0] + latency + first * period
    follower = ClockFollower()
    errors = []
    for t, message in stream:
        follower.feed(t, message)
        if message == [CLOCK] and follower.running and follower.beat_position(t) >= 4:
            grid = follower.grid()
            beat = np.ceil(follower.beat_position(t))
            errors.append(grid.time_of_beat(beat) - (downbeat + beat * PPQN * period))
        if message == [STOP]:
            t_stop = t
            break
    assert len(errors) > 150
    assert np.abs(errors).max() < 0.001, np.round(np.abs(errors).max() * 1e3, 3)
    # Stopped: the position is the pulses the DAW sent from Start to Stop, a lost one counted.
    assert round(follower.beat_position(t_stop) * PPQN) == numbers[pulses <= t_stop][-1] - first + 1


def test_a_gap_restarts_the_estimate():
    follower = started_at(100.0, beats=2)
    restart = T0 + 10.0  # the DAW's clock stopped for seconds, then came back at 60 BPM
    feed_pulses(follower, pulse_times(60.0, restart, PPQN))
    assert follower.bpm == pytest.approx(60.0, abs=0.01)


def test_clock_while_stopped_gives_a_tempo_but_no_grid():
    follower = ClockFollower()
    feed_pulses(follower, pulse_times(100.0, T0, 2 * PPQN))
    assert follower.bpm == pytest.approx(100.0, abs=0.01)
    assert not follower.running
    assert follower.grid() is None


# -- ClockFollower: transport and position ---------------------------------------------------


def test_position_counts_pulses_from_start():
    follower = started_at(100.0, beats=2)
    assert follower.running
    # The first pulse after Start is beat 0, so the 48th (at T0 + 47 * 25 ms) is 47/24.
    assert follower.beat_position(T0 + 47 * 0.025) == pytest.approx(47 / 24)
    assert follower.beat_position(T0 + 2 * 0.6) == pytest.approx(2.0)


def test_position_is_zero_between_start_and_the_first_pulse():
    follower = ClockFollower()
    feed_pulses(follower, pulse_times(100.0, T0 - 1.0, 40))  # a DAW clocking while stopped
    follower.feed(T0 - 0.01, [START])
    assert follower.beat_position(T0 - 0.005) == 0.0


def test_grid_origin_is_the_first_pulse_after_start():
    follower = started_at(100.0, beats=2)
    assert follower.grid().origin == pytest.approx(T0)
    assert follower.grid().beat_at(T0 + 1.8) == pytest.approx(follower.beat_position(T0 + 1.8))


def test_stop_freezes_the_position():
    follower = started_at(100.0, beats=2)
    follower.feed(T0 + 1.21, [STOP])
    assert not follower.running
    assert follower.beat_position(T0 + 5.0) == pytest.approx(2.0)
    feed_pulses(follower, pulse_times(100.0, T0 + 1.225, PPQN))  # clock goes on while stopped
    assert follower.beat_position(T0 + 9.0) == pytest.approx(2.0)


def test_continue_resumes_from_the_stopped_position():
    follower = started_at(100.0, beats=2)
    follower.feed(T0 + 1.21, [STOP])
    follower.feed(T0 + 3.0, [CONTINUE])
    resume = T0 + 3.01
    feed_pulses(follower, pulse_times(100.0, resume, PPQN))
    assert follower.beat_position(resume) == pytest.approx(2.0)
    assert follower.beat_position(resume + 0.6) == pytest.approx(3.0)


def test_start_resets_the_position_to_zero():
    follower = started_at(100.0, beats=2)
    follower.feed(T0 + 1.21, [STOP])
    follower.feed(T0 + 3.0, [START])
    again = T0 + 3.01
    feed_pulses(follower, pulse_times(100.0, again, PPQN))
    assert follower.beat_position(again + 0.3) == pytest.approx(0.5)
    assert follower.grid().origin == pytest.approx(again)


@pytest.mark.parametrize("sixteenths", [0, 1, 16, 37, 300, 16383])
def test_song_position_pointer_then_continue(sixteenths):
    follower = started_at(100.0, beats=1)
    follower.feed(T0 + 0.61, [STOP])
    follower.feed(T0 + 1.0, song_position_message(sixteenths))
    assert follower.beat_position(T0 + 1.0) == pytest.approx(sixteenths / 4)
    follower.feed(T0 + 1.001, [CONTINUE])
    resume = T0 + 1.01
    feed_pulses(follower, pulse_times(100.0, resume, PPQN))
    assert follower.beat_position(resume + 0.15) == pytest.approx(sixteenths / 4 + 0.25)


def test_song_position_pointer_while_running_jumps_on_the_next_pulse():
    follower = started_at(100.0, beats=4)  # the DAW's loop: beats 0..4, then back to 0
    follower.feed(T0 + 2.39, song_position_message(0))
    feed_pulses(follower, pulse_times(100.0, T0 + 2.4, PPQN))
    assert follower.beat_position(T0 + 2.4 + 0.3) == pytest.approx(0.5)
    assert follower.grid().origin == pytest.approx(T0 + 2.4)


def test_other_messages_are_ignored():
    follower = started_at(100.0, beats=1)
    before = follower.beat_position(T0 + 0.5)
    for message in ([0x90, 60, 100], [0xFE], [0xB0, 64, 127], []):
        follower.feed(T0 + 0.55, message)
    assert follower.beat_position(T0 + 0.5) == before
    assert follower.running


# -- ClockSender -----------------------------------------------------------------------------


def test_sender_deadlines_are_the_pulses_of_the_grid():
    sender = ClockSender(BeatGrid(100.0, T0))
    deadlines = sender.deadlines(after=T0 + 0.6)
    got = [next(deadlines) for _ in range(25)]
    assert got == pytest.approx(T0 + 0.6 + np.arange(25) * 0.025)


def test_sender_follows_a_tempo_change_without_a_jump():
    sender = ClockSender(BeatGrid(100.0, T0))
    deadlines = sender.deadlines(after=T0)
    got = [next(deadlines) for _ in range(24)]  # beat 0 up to the last pulse before beat 1
    sender.grid = sender.grid.retimed(120.0, at=T0 + 0.6)
    got += [next(deadlines) for _ in range(24)]
    assert got[24] == pytest.approx(T0 + 0.6)  # beat 1 is where it was
    assert np.diff(got[24:]) == pytest.approx(np.full(23, 0.5 / PPQN))
    assert all(np.diff(got) > 0)


def test_sender_never_goes_back_in_time_when_the_grid_jumps():
    sender = ClockSender(BeatGrid(100.0, T0))
    deadlines = sender.deadlines(after=T0)
    last = [next(deadlines) for _ in range(10)][-1]
    sender.grid = BeatGrid(100.0, T0 + 0.1)  # moved later: pulses 0..9 come round again
    assert next(deadlines) > last


def test_a_follower_follows_the_sender():
    grid = BeatGrid(126.0, T0)
    sender = ClockSender(grid)
    follower = ClockFollower()
    for message in sender.start_messages(0.0):
        follower.feed(T0 - 0.001, message)
    deadlines = sender.deadlines(after=T0)
    feed_pulses(follower, [next(deadlines) for _ in range(3 * PPQN)])
    assert follower.bpm == pytest.approx(126.0, abs=1e-6)
    assert follower.grid().time_of_beat(8) == pytest.approx(grid.time_of_beat(8), abs=1e-6)


@pytest.mark.parametrize(
    "beat, expected",
    [(0.0, [[START]]), (4.0, [[0xF2, 16, 0], [CONTINUE]]), (64.0, [[0xF2, 0, 2], [CONTINUE]])],
)
def test_sender_start_messages(beat, expected):
    assert ClockSender(BeatGrid(100.0, T0)).start_messages(beat) == expected
