"""`--offset-ms` (cadenza.realtime.offset): every generated note sent that much later, or, in
backing mode, earlier; an answer can only be delayed."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.realtime.config import load_live_config
from cadenza.realtime.jack import PERIOD_FRAMES
from cadenza.realtime.offset import clamped_note, offset_seconds
from tests.realtime.helpers import (
    PHRASE,
    FakeRunningEngine,
    RunningEngine,
    answer_played,
    connect,
    note_ons,
    play_phrase,
    wait_for,
)

CYCLE = PERIOD_FRAMES / 48000


def test_a_negative_offset_is_clamped_where_only_delay_is_possible():
    answers = load_live_config(None, {"offset_ms": -20})
    assert offset_seconds(answers) == 0 and "clamped to 0" in clamped_note(answers)
    backing = load_live_config(None, {"offset_ms": -20, "mode": "backing"})
    assert offset_seconds(backing) == pytest.approx(-0.02) and clamped_note(backing) is None
    assert clamped_note(load_live_config(None, {"offset_ms": 30})) is None


@pytest.mark.timing
def test_an_answer_is_sent_later_by_the_offset(tiny_bundle, player, recorder):
    offset = 0.08
    with RunningEngine(tiny_bundle, answer_length="1 s", offset_ms=offset * 1000) as running:
        connect(running, player, recorder)
        play_phrase(player, PHRASE[:4])
        wait_for(lambda: answer_played(running.engine))
        stats = running.engine.stats
        start = stats.detected_at[0] + stats.detect_to_start[0]  # where the answer starts
        recorder.wait_for(running.engine.scheduler.lateness_stats()["count"])
    first = note_ons(recorder.events)[0][0]  # the answer's first note is at its start
    assert 0 <= first - start - offset <= CYCLE + 0.001


@pytest.mark.timing
@pytest.mark.parametrize("offset_ms", [-30.0, 25.0])
def test_the_backing_moves_by_the_offset_earlier_or_later(tiny_backing_bundle, offset_ms):
    """Where the backing puts its notes: the deadlines it asks the scheduler for. (When they
    leave also depends on the listening window and on the machine; the backing's own tests
    and the soak benchmark see to that.)"""
    with FakeRunningEngine(tiny_backing_bundle, mode="backing", bpm=150.0, density=2.0,
                           offset_ms=offset_ms) as running:
        scheduler = running.engine.scheduler
        planned, schedule_many = [], scheduler.schedule_many

        def plan(events):
            events = list(events)
            planned.extend(events)
            schedule_many(events)

        scheduler.schedule_many = plan  # as the backing loop calls it
        backing = running.engine.mode.backing
        wait_for(lambda: backing.steps >= 8 and note_ons(list(planned)))
        grid = running.engine.timeline.grid  # the engine's own grid, not moved
    sixteenth = grid.seconds_per_beat / 4
    at = np.array([(t - grid.origin - offset_ms / 1000) / sixteenth for t, _ in note_ons(planned)])
    assert np.abs(at - np.round(at)).max() * sixteenth < 0.002
