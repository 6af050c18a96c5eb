"""The Performer as a unit: a real tiny bundle's generator, a schedule callable that records
what the performer hands over, and the player's notes given with their times (no port, no
sleeping through a phrase). test_engine.py shows the same in a running engine, on fake ports
and (the answer) through real JACK ports."""

from __future__ import annotations

import threading
import time

import pytest

from cadenza.midi_status import starts_note
from cadenza.plugins import load_generator
from cadenza.realtime.performer import Performer
from tests.realtime.helpers import NOTE_OFF, NOTE_ON, PHRASE, sounding_after

CHANNEL = 3


class Schedule:
    """What the performer schedules: (deadline, message), in the order it was handed over."""

    def __init__(self) -> None:
        self.entries: list[tuple[float, list[int]]] = []
        self.lock = threading.Lock()

    def __call__(self, deadline: float, message: list[int]) -> None:
        with self.lock:
            self.entries.append((deadline, list(message)))

    def between(self, low: float, high: float) -> list[tuple[float, list[int]]]:
        with self.lock:
            return sorted(((t, m) for t, m in self.entries if low <= t < high),
                          key=lambda entry: entry[0])  # stable: same-time order kept


def wait_until(predicate, timeout: float = 10.0) -> None:
    give_up = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < give_up, "never happened"
        time.sleep(0.002)


@pytest.fixture
def performer_of(tiny_bundle):
    made: list[Performer] = []

    def make(**settings) -> tuple[Performer, Schedule]:
        schedule = Schedule()
        performer = Performer(load_generator(tiny_bundle), schedule, channel=CHANNEL,
                              lookahead=5.0, seed=11, **settings)
        performer.start()
        made.append(performer)
        return performer, schedule

    yield make
    for performer in made:
        performer.close()
        performer.join(5)
        assert not performer.is_alive()


def play_call(performer: Performer, start: float) -> float:
    """The phrase, 0.15 s a note, given with its times; returns the time of its end."""
    t = start
    for pitch in PHRASE:
        performer.player(t, [NOTE_ON, pitch, 90])
        performer.player(t + 0.12, [NOTE_OFF, pitch, 0])
        t += 0.15
    return t


def test_an_answer_is_the_generators_seeded_continuation_of_the_call(performer_of, tiny_bundle):
    performer, schedule = performer_of()
    call_end = play_call(performer, time.perf_counter())
    start = call_end + 0.3
    performer.answer(start, 1.5)
    wait_until(lambda: performer.records and not performer.busy)
    record = performer.records[0]
    assert len(record.primer) >= 2 * len(PHRASE)  # the call is the primer
    assert record.seed == 11 and record.start == start and record.seconds == 1.5

    # The same generator, primed and seeded the same way, makes the same events.
    # (The performer was never primed: the call went straight into a fresh generator.)
    generator = load_generator(tiny_bundle)
    generator.reset()
    generator.extend(record.primer)
    generator.seed(record.seed)
    assert generator.generate(len(record.events)).tolist() == record.events

    # Within the answer's time, on its channel, and every note it starts ends.
    messages = schedule.between(0, float("inf"))
    assert messages and all(start <= t <= start + 1.5 for t, _ in messages)
    assert all(m[0] & 0x0F == CHANNEL for _, m in messages)
    ons = [m[1] for _, m in messages if m[0] & 0xF0 == NOTE_ON and m[2] > 0]
    answered = iter(e for e in record.events if e < 128)
    assert ons and all(pitch in answered for pitch in ons)  # in order; a few may be dropped
    # by the polyphony limit
    assert sounding_after([m for _, m in messages]) == {}


def test_a_loop_repeats_the_answer_until_the_player_plays(performer_of):
    period = 0.6
    performer, schedule = performer_of(loop=True)
    start = play_call(performer, time.perf_counter()) + 0.3
    performer.answer(start, period)
    wait_until(lambda: len(schedule.between(start + 2 * period, start + 3 * period)) > 0)

    def window(k):  # the note-ons of period k, shifted back onto the first
        # A repeat starts exactly on a period's edge: a microsecond of slack keeps its first
        # notes in their own period whichever way the float arithmetic rounds.
        edge = start - 1e-6
        return [(round(t - k * period, 6), m)
                for t, m in schedule.between(edge + k * period, edge + (k + 1) * period)
                if m[0] & 0xF0 == NOTE_ON and m[2] > 0]

    assert window(0) and window(1) == window(0) and window(2) == window(0)
    performer.player(time.perf_counter(), [NOTE_ON, 40, 90])  # the player is back
    wait_until(lambda: performer.mode != "loop")
    count = len(schedule.entries)
    time.sleep(0.05)  # a repeat would be scheduled at once (the look-ahead is 5 s)
    assert len(schedule.entries) == count


# --- the opening, made during the silence that may end the call --------------------------

OPENED_SECONDS = 1.5


def relative(entries, start: float) -> list[tuple[float, list[int]]]:
    return sorted(((round(t - start, 6), m) for t, m in entries), key=lambda e: e[0])


def answered(performer, schedule, start: float, *, opening: bool) -> list:
    """The call, the silence (with or without an opening made in it), the answer from
    `start`: what was scheduled for it, timed from its start."""
    heard = 2 * 8  # play_call's messages
    if opening:
        performer.anticipate(heard)
        wait_until(lambda: performer.opening is not None)
        assert performer.play_opening(heard, start, OPENED_SECONDS)
        assert any(starts_note(m) for _, m in schedule.entries)  # before the answer command
    performer.answer(start, OPENED_SECONDS)
    wait_until(lambda: performer.records and not performer.busy)
    return relative(schedule.entries, start)


def test_an_opening_changes_nothing_of_the_answer(performer_of):
    with_opening, schedule = performer_of()
    start = play_call(with_opening, time.perf_counter()) + 0.3
    opened = answered(with_opening, schedule, start, opening=True)
    plain, schedule = performer_of()
    start = play_call(plain, time.perf_counter()) + 0.3
    assert answered(plain, schedule, start, opening=False) == opened
    assert with_opening.records[0].opened and not plain.records[0].opened
    assert with_opening.records[0].events == plain.records[0].events
    assert sum(starts_note(m) for _, m in opened) >= 2


def test_a_phrase_that_goes_on_puts_the_generator_back(performer_of):
    """The player let go, an opening was made, then the phrase went on: it is not sent, and
    the answer to the longer phrase is the one a performer that never made it gives."""
    anticipating, schedule = performer_of()
    t = play_call(anticipating, time.perf_counter())
    anticipating.anticipate(16)
    wait_until(lambda: anticipating.opening is not None)
    anticipating.player(t + 0.2, [NOTE_ON, 64, 80])  # the phrase goes on
    anticipating.player(t + 0.3, [NOTE_OFF, 64, 0])
    assert not anticipating.play_opening(18, t + 1.0, OPENED_SECONDS)  # made for 16 heard
    wait_until(lambda: anticipating.opening is None)
    assert schedule.entries == []
    longer = answered(anticipating, schedule, t + 1.0, opening=False)

    plain, schedule = performer_of()
    t = play_call(plain, time.perf_counter())
    plain.player(t + 0.2, [NOTE_ON, 64, 80])
    plain.player(t + 0.3, [NOTE_OFF, 64, 0])
    assert answered(plain, schedule, t + 1.0, opening=False) == longer


def test_an_opening_is_cut_at_a_short_answers_end(performer_of):
    performer, schedule = performer_of()
    start = play_call(performer, time.perf_counter()) + 0.3
    performer.anticipate(16)
    wait_until(lambda: performer.opening is not None)
    first = min(t for t, m in performer.opening.messages if starts_note(m))
    assert performer.play_opening(16, start, first + 1e-6)  # an answer that ends after a note
    performer.answer(start, first + 1e-6)
    wait_until(lambda: performer.records and not performer.busy)
    sent = relative(schedule.entries, start)
    assert all(t <= first + 1e-6 for t, _ in sent)
    assert any(starts_note(m) for _, m in sent)
    assert sounding_after([m for _, m in sent]) == {}  # every note it began ends with it


def test_an_answer_is_busy_from_the_moment_it_is_asked_for(tiny_bundle):
    """The player may come in between the phrase's end and the performer's thread taking
    the answer up: the answer must already count as playing, so that it is interrupted."""
    performer = Performer(load_generator(tiny_bundle), Schedule(), channel=CHANNEL,
                          lookahead=5.0, seed=11)  # its thread not started: nothing taken up
    assert not performer.busy
    performer.answer(time.perf_counter(), 2.0)
    assert performer.busy
