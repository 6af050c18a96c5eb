"""cadenza.realtime.scheduler: order, completeness, and no note left sounding after stop,
panic, cancel or a lost port.

Units: the scheduler takes an `Output` protocol, so most tests hand it a FakeOutput that
records (perf_counter time, message) of each send. Waits are for arrival, not fixed sleeps: to
show that nothing else is sent up to a time, a marker (active sensing, which the scheduler's
note bookkeeping ignores) is scheduled just after it and waited for, since messages leave in
deadline order. Two end-to-end tests keep a real JACK port (see the JACK section).

No assertion here is about how late a message is (benchmarks/live_latency.py measures that).
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid

import pytest

from cadenza.realtime.ports import PortClosedError, open_output
from cadenza.realtime.scheduler import NaiveScheduler, Scheduler
from tests.realtime.helpers import FakeOutput, sounding_after

SCHEDULERS = [Scheduler, NaiveScheduler]
LONG = 30.0  # seconds: a note-off this far ahead is still pending when the test acts
AHEAD = 0.25  # seconds: a message this far ahead is still pending when the test acts
MARKER = [0xFE]  # active sensing: no channel, no note; only marks a point in time


def note_on(pitch: int, channel: int = 0, velocity: int = 100) -> list[int]:
    return [0x90 | channel, pitch, velocity]


def note_off(pitch: int, channel: int = 0) -> list[int]:
    return [0x80 | channel, pitch, 0]


def sent_up_to(scheduler, output: FakeOutput, t: float) -> list[list[int]]:
    """What the scheduler has sent once every deadline up to `t` has passed (the marker it
    sends just after `t` left out)."""
    scheduler.schedule(t + 0.001, MARKER)
    messages = output.wait_until(lambda messages: MARKER in messages)
    return [m for m in messages if m != MARKER]


@pytest.fixture(params=SCHEDULERS, ids=lambda cls: cls.__name__)
def scheduler_class(request):
    return request.param


@pytest.fixture
def output() -> FakeOutput:
    return FakeOutput()


@pytest.fixture
def started(output, scheduler_class):
    """A scheduler on a fake output that records what it sends."""
    scheduler = scheduler_class(output)
    yield scheduler, output
    scheduler.stop()


def schedule_shuffled_from_three_threads(scheduler, count: int, spacing: float):
    start = time.perf_counter() + 0.05
    expected = [[0xB0, 7, k % 128] if k % 3 else note_on(k % 128, velocity=1 + k % 127)
                for k in range(count)]
    entries = [(start + spacing * k, message) for k, message in enumerate(expected)]
    random.Random(3).shuffle(entries)
    # Three threads schedule at once, out of order.
    threads = [threading.Thread(target=lambda part=part: [scheduler.schedule(*e) for e in part])
               for part in (entries[0::3], entries[1::3], entries[2::3])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return expected, entries


def test_every_message_is_sent_once_in_deadline_order_not_before_it(started):
    scheduler, output = started
    expected, entries = schedule_shuffled_from_three_threads(scheduler, 300, 0.0005)
    assert output.wait_for(300) == expected
    assert sent_up_to(scheduler, output, max(d for d, _ in entries)) == expected  # none twice
    deadlines = sorted(d for d, _ in entries)
    assert all(t >= d for (t, _), d in zip(output.events, deadlines, strict=False))
    assert scheduler.lateness_stats()["count"] == 301 and scheduler.send_errors == 0


def test_schedule_many_and_an_earlier_message_scheduled_later(started):
    scheduler, output = started
    now = time.perf_counter()
    scheduler.schedule(now + 0.15, note_on(72))
    scheduler.schedule_many([(now + 0.05, note_on(60)), (now + 0.1, note_on(64))])
    scheduler.schedule(now + 0.2, [0xB0, 123, 0])
    assert output.wait_for(4) == [note_on(60), note_on(64), note_on(72), [0xB0, 123, 0]]


@pytest.mark.parametrize("with_panic", [False, True])
def test_stop_ends_every_sounding_note(started, with_panic):
    scheduler, output = started
    now = time.perf_counter()
    notes = [(pitch, channel) for channel in (0, 9) for pitch in (60, 64, 67)]
    for pitch, channel in notes:
        scheduler.schedule(now + 0.01, note_on(pitch, channel))
        scheduler.schedule(now + LONG, note_off(pitch, channel))
    scheduler.schedule(now + 0.01, [0xB0, 64, 127])  # sustain pedal down on channel 0
    output.wait_for(7)
    assert sounding_after(output.messages) == {(c, p): 1 for p, c in notes}
    scheduler.stop(panic=with_panic)
    assert not scheduler.running and scheduler.pending == 0 and not scheduler.sounding
    # Every note ended, and the pedal lifted too: sent by stop() itself, before it returned.
    messages = output.messages
    assert not sounding_after(messages) and [0xB0, 64, 0] in messages
    assert ([0xB0, 123, 0] in messages and [0xB9, 123, 0] in messages) == with_panic
    with pytest.raises(RuntimeError, match="stopped"):
        scheduler.schedule(time.perf_counter(), note_on(1))
    scheduler.stop()  # twice is fine
    assert output.messages == messages


def test_panic_silences_and_drops_what_is_pending(started):
    scheduler, output = started
    now = time.perf_counter()
    scheduler.schedule_many([(now + 0.01, note_on(50, 2)), (now + LONG, note_off(50, 2)),
                             (now + 0.01, note_on(51, 3)), (now + LONG, note_off(51, 3)),
                             (now + AHEAD, note_on(90, 2))])
    output.wait_for(2)
    scheduler.panic()
    assert scheduler.pending == 0 and not scheduler.sounding
    expected_tail = [note_off(50, 2), note_off(51, 3),
                     [0xB2, 123, 0], [0xB2, 64, 0], [0xB3, 123, 0], [0xB3, 64, 0]]
    assert output.messages[2:] == expected_tail  # sent by panic() itself
    # Past the deadline of the dropped note-on, nothing more was sent.
    assert sent_up_to(scheduler, output, now + AHEAD)[2:] == expected_tail
    assert scheduler.running  # panic does not stop the scheduler
    scheduler.schedule(time.perf_counter(), note_on(40))
    assert output.wait_for(10)[-1] == note_on(40)


def test_end_channels_stops_those_channels_only_and_leaves_nothing_of_them_to_come(started):
    scheduler, output = started
    now = time.perf_counter()
    scheduler.schedule_many([
        (now + 0.01, note_on(50, 1)), (now + LONG, note_off(50, 1)),  # sounding: ended now
        (now + 0.01, note_on(52, 2)), (now + AHEAD, note_on(53, 2)),  # one pending: dropped
        (now + 0.01, [0xB1, 64, 127]),  # a pedal down on an ended channel: lifted
        (now + 0.01, note_on(60, 0)), (now + AHEAD - 0.05, note_off(60, 0)),  # plays on
    ])
    output.wait_for(4)
    scheduler.end_channels([1, 2])
    assert scheduler.sounding == {(0, 60)} and scheduler.pending == 1
    # Past every deadline:
    assert sent_up_to(scheduler, output, now + AHEAD)[4:] == [
        note_off(50, 1), note_off(52, 2), [0xB1, 64, 0], note_off(60, 0)]
    assert not scheduler.sounding


def test_cancel_keeps_the_note_off_of_a_sounding_note(started):
    scheduler, output = started
    now = time.perf_counter()
    scheduler.schedule_many([
        (now + 0.01, note_on(60)), (now + 0.15, note_off(60)),  # sounding when cancelled
        (now + AHEAD, note_on(62)), (now + AHEAD + 0.1, note_off(62)),  # not yet started: dropped
        (now + AHEAD + 0.05, [0xB0, 1, 64]),
    ])
    output.wait_for(1)
    assert scheduler.cancel() == 3
    assert scheduler.pending == 1
    # Past every cancelled deadline:
    assert sent_up_to(scheduler, output, now + AHEAD + 0.1) == [note_on(60), note_off(60)]
    assert not scheduler.sounding


def test_cancel_after_a_time_keeps_the_earlier_part_whole(started):
    scheduler, output = started
    now = time.perf_counter()
    scheduler.schedule_many([
        (now + 0.03, note_on(70)), (now + 0.2, note_off(70)),  # starts before `after`
        (now + 0.15, note_on(72)), (now + 0.22, note_off(72)),  # starts after: dropped
        (now + 0.04, [0xB0, 64, 127]), (now + 0.18, [0xB0, 64, 0]),  # pedal: lifted as written
    ])
    assert scheduler.cancel(after=now + 0.1) == 2
    assert sent_up_to(scheduler, output, now + 0.22) == [
        note_on(70), [0xB0, 64, 127], [0xB0, 64, 0], note_off(70)]


def test_a_cancelled_note_on_takes_its_note_off_along(started):
    scheduler, output = started
    now = time.perf_counter()
    scheduler.schedule_many([(now + 0.1, note_on(80)), (now + 0.15, note_off(80))])
    assert scheduler.cancel() == 2 and scheduler.pending == 0
    scheduler.release_all()  # nothing sounds: sends nothing
    assert sent_up_to(scheduler, output, now + 0.15) == []


def test_release_all_counts_overlapping_notes_of_one_pitch(started):
    scheduler, output = started
    now = time.perf_counter()
    scheduler.schedule_many([(now + 0.01, note_on(60)), (now + 0.02, note_on(60)),
                             (now + 0.03, note_off(60)), (now + LONG, note_off(60))])
    output.wait_for(3)
    assert scheduler.sounding == {(0, 60)}
    scheduler.cancel()
    assert scheduler.pending == 1  # the second note-off still ends the second note
    scheduler.release_all()
    assert output.messages[-1] == note_off(60) and len(output.messages) == 4
    assert not scheduler.sounding


def test_a_lost_output_is_counted_and_reported_not_fatal(output, scheduler_class):
    errors: list[BaseException] = []
    scheduler = scheduler_class(output, on_error=errors.append)
    now = time.perf_counter()
    scheduler.schedule_many([(now + 0.01, note_on(60)), (now + 0.1, note_off(60)),
                             (now + 0.15, note_on(62))])
    output.wait_for(1)
    output.lose()  # the port is gone under the scheduler (MidiOutput raises PortClosedError)
    deadline = time.monotonic() + 10
    while scheduler.send_errors < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert scheduler.send_errors == 2 and scheduler.port_error.is_set()
    assert all(isinstance(e, PortClosedError) for e in errors) and len(errors) == 2
    assert isinstance(scheduler.last_error, PortClosedError)
    assert scheduler.running and scheduler.thread_error is None
    assert scheduler.sounding == {(0, 60)}  # never ended on the synth: still known
    scheduler.stop()  # tries the note-off again, fails, reports, and still returns
    assert len(errors) == 3 and not scheduler.running
    assert output.sends == 4 and output.messages == [note_on(60)]


def test_a_failing_error_handler_does_not_kill_the_thread(output):
    def handler(error: BaseException) -> None:
        raise ValueError("handler bug")

    scheduler = Scheduler(output, on_error=handler)
    try:
        output.lose()
        scheduler.schedule(time.perf_counter(), note_on(60))
        deadline = time.monotonic() + 10
        while scheduler.send_errors < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert scheduler.send_errors == 1
        output.lost = False  # the port is back: the same thread still sends
        scheduler.schedule(time.perf_counter(), note_on(61))
        assert output.wait_for(1) == [note_on(61)]
        assert scheduler.running and scheduler.thread_error is None
    finally:
        scheduler.stop()


def test_lateness_stats_wrap_around_their_ring(output, scheduler_class):
    scheduler = scheduler_class(output, lateness_capacity=16)
    try:
        empty = scheduler.lateness_stats()
        assert empty["count"] == 0 and math.isnan(empty["p99"])
        start = time.perf_counter() + 0.02
        scheduler.schedule_many((start + 0.001 * k, [0xB0, 2, k]) for k in range(40))
        output.wait_for(40)
        stats = scheduler.lateness_stats()
        assert stats["count"] == 40
        assert 0 <= stats["p50"] <= stats["p99"] <= stats["max"] < 1.0
        samples = scheduler.lateness_samples()
        assert len(samples) == 16 and samples.max() == stats["max"]
        scheduler.reset_lateness()
        assert scheduler.lateness_stats()["count"] == 0
    finally:
        scheduler.stop()


# ----- JACK end to end -----
# What a fake port cannot show: that what the scheduler sends through a real MidiOutput
# (rtmidi's ring, JACK's cycles) reaches a listener whole and in order, and that a listener
# leaving the JACK graph mid-stream is nothing the scheduler or the port notices.


@pytest.fixture
def jack_output(jack_server):
    port = open_output(None, virtual_name=f"sched-{uuid.uuid4().hex[:8]}")
    yield port
    port.close()


@pytest.mark.timing  # a loaded machine makes the recorder miss JACK cycles
def test_every_message_arrives_through_jack_in_deadline_order(jack_output, recorder):
    recorder.connect(jack_output.name)
    scheduler = Scheduler(jack_output)
    try:
        # 2 ms apart: at 0.5 ms the scheduler spins almost all the time, and the recorder's
        # callback (on JACK's thread, needing the GIL) now and then misses a JACK cycle and
        # its messages. benchmarks/live_latency.py counts such losses; this checks order and
        # completeness.
        expected, _ = schedule_shuffled_from_three_threads(scheduler, 300, 0.002)
        scheduler.schedule(time.perf_counter() + 0.05 + 0.002 * 300, MARKER)
        assert recorder.wait_for(301) == [*expected, MARKER]  # each once, none after the last
        assert scheduler.lateness_stats()["count"] == 301 and scheduler.send_errors == 0
    finally:
        scheduler.stop()


def test_a_recorder_closing_its_port_does_not_crash_the_scheduler(jack_output, make_recorder):
    first = make_recorder().connect(jack_output.name)
    scheduler = Scheduler(jack_output)
    try:
        start = time.perf_counter() + 0.02
        scheduler.schedule_many((start + 0.002 * k, [0xB0, 1, k]) for k in range(120))
        first.wait_for(10)
        first.close()  # the listener goes away mid-stream
        second = make_recorder().connect(jack_output.name)
        scheduler.schedule(time.perf_counter() + 0.3, note_on(61))
        second.wait_until(lambda messages: note_on(61) in messages)
        assert scheduler.running and scheduler.send_errors == 0
    finally:
        scheduler.stop()


def test_release_all_drops_the_pending_ends_of_what_it_ended(started):
    """Ended now, a note's written note-off is stale: sent later it would cut the same pitch
    begun in between (the next answer's). A note still to begin keeps its note-off."""
    scheduler, output = started
    if not hasattr(scheduler, "release_all"):
        pytest.skip("the naive baseline has no release")
    now = time.perf_counter()
    scheduler.schedule_many([
        (now + 0.01, note_on(60)), (now + AHEAD, note_off(60)),  # sounding when released
        (now + AHEAD, note_on(62)), (now + AHEAD + 0.1, note_off(62)),  # still to begin
    ])
    output.wait_for(1)
    scheduler.release_all()
    assert scheduler.pending == 2
    assert sent_up_to(scheduler, output, now + AHEAD + 0.1) == [
        note_on(60), note_off(60), note_on(62), note_off(62)]
    assert not scheduler.sounding
