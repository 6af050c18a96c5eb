"""cadenza.realtime.scheduler through a real JACK port into a recording client: order,
completeness, and no note left sounding after stop, panic, cancel or a lost port.

No assertion here is about how late a message is (benchmarks/live_latency.py measures that);
waits are for arrival, with generous limits.
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

SCHEDULERS = [Scheduler, NaiveScheduler]
LONG = 30.0  # seconds: a note-off this far ahead is still pending when the test acts


def note_on(pitch: int, channel: int = 0, velocity: int = 100) -> list[int]:
    return [0x90 | channel, pitch, velocity]


def note_off(pitch: int, channel: int = 0) -> list[int]:
    return [0x80 | channel, pitch, 0]


def sounding_after(messages) -> dict[tuple[int, int], int]:
    """Notes a synth would still play after this stream; only note-offs end notes here."""
    notes: dict[tuple[int, int], int] = {}
    for message in messages:
        if len(message) < 3 or message[0] & 0xF0 not in (0x80, 0x90):
            continue
        key = (message[0] & 0x0F, message[1])
        if message[0] & 0xF0 == 0x90 and message[2] > 0:
            notes[key] = notes.get(key, 0) + 1
        elif notes.get(key):
            notes[key] -= 1
            if not notes[key]:
                del notes[key]
    return notes


@pytest.fixture
def output(jack_server):
    port = open_output(None, virtual_name=f"sched-{uuid.uuid4().hex[:8]}")
    yield port
    port.close()


@pytest.fixture(params=SCHEDULERS, ids=lambda cls: cls.__name__)
def scheduler_class(request):
    return request.param


@pytest.fixture
def started(output, recorder, scheduler_class):
    """A scheduler on a fresh virtual output, with the recorder listening to it."""
    recorder.connect(output.name)
    scheduler = scheduler_class(output)
    yield scheduler, recorder
    scheduler.stop()


def test_every_message_arrives_in_deadline_order(started):
    scheduler, recorder = started
    # 2 ms apart: at 0.5 ms the scheduler spins almost all the time, and the recorder's
    # callback (on JACK's thread, in this process, needing the GIL) now and then misses a JACK
    # cycle and its messages. benchmarks/live_latency.py counts such losses; this checks order
    # and completeness.
    start = time.perf_counter() + 0.05
    expected = [[0xB0, 7, k % 128] if k % 3 else note_on(k % 128, velocity=1 + k % 127)
                for k in range(300)]
    entries = [(start + 0.002 * k, message) for k, message in enumerate(expected)]
    random.Random(3).shuffle(entries)
    # Three threads schedule at once, out of order.
    threads = [threading.Thread(target=lambda part=part: [scheduler.schedule(*e) for e in part])
               for part in (entries[0::3], entries[1::3], entries[2::3])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert recorder.wait_for(300) == expected
    time.sleep(0.05)
    assert len(recorder.messages) == 300
    assert scheduler.lateness_stats()["count"] == 300 and scheduler.send_errors == 0


def test_schedule_many_and_an_earlier_message_scheduled_later(started):
    scheduler, recorder = started
    now = time.perf_counter()
    scheduler.schedule(now + 0.3, note_on(72))
    scheduler.schedule_many([(now + 0.05, note_on(60)), (now + 0.1, note_on(64))])
    scheduler.schedule(now + 0.4, [0xB0, 123, 0])
    assert recorder.wait_for(4) == [note_on(60), note_on(64), note_on(72), [0xB0, 123, 0]]


@pytest.mark.parametrize("with_panic", [False, True])
def test_stop_ends_every_sounding_note(started, with_panic):
    scheduler, recorder = started
    now = time.perf_counter()
    notes = [(pitch, channel) for channel in (0, 9) for pitch in (60, 64, 67)]
    for pitch, channel in notes:
        scheduler.schedule(now + 0.01, note_on(pitch, channel))
        scheduler.schedule(now + LONG, note_off(pitch, channel))
    scheduler.schedule(now + 0.01, [0xB0, 64, 127])  # sustain pedal down on channel 0
    recorder.wait_for(7)
    assert sounding_after(recorder.messages) == {(c, p): 1 for p, c in notes}
    scheduler.stop(panic=with_panic)
    assert not scheduler.running and scheduler.pending == 0 and not scheduler.sounding
    # Every note ended, and the pedal lifted too.
    recorder.wait_until(lambda messages: not sounding_after(messages) and [0xB0, 64, 0] in messages)
    if with_panic:
        assert recorder.wait_until(lambda m: [0xB0, 123, 0] in m and [0xB9, 123, 0] in m)
    with pytest.raises(RuntimeError, match="stopped"):
        scheduler.schedule(time.perf_counter(), note_on(1))
    scheduler.stop()  # twice is fine


def test_panic_silences_and_drops_what_is_pending(started):
    scheduler, recorder = started
    now = time.perf_counter()
    scheduler.schedule_many([(now + 0.01, note_on(50, 2)), (now + LONG, note_off(50, 2)),
                             (now + 0.01, note_on(51, 3)), (now + LONG, note_off(51, 3)),
                             (now + 0.5, note_on(90, 2))])
    recorder.wait_for(2)
    scheduler.panic()
    assert scheduler.pending == 0 and not scheduler.sounding
    expected_tail = [note_off(50, 2), note_off(51, 3),
                     [0xB2, 123, 0], [0xB2, 64, 0], [0xB3, 123, 0], [0xB3, 64, 0]]
    assert recorder.wait_for(8)[2:] == expected_tail
    time.sleep(0.7)  # past the deadline of the dropped note-on
    assert note_on(90, 2) not in recorder.messages
    assert scheduler.running  # panic does not stop the scheduler
    scheduler.schedule(time.perf_counter(), note_on(40))
    assert recorder.wait_for(9)[-1] == note_on(40)


def test_end_channels_stops_those_channels_only_and_leaves_nothing_of_them_to_come(started):
    scheduler, recorder = started
    now = time.perf_counter()
    scheduler.schedule_many([
        (now + 0.01, note_on(50, 1)), (now + LONG, note_off(50, 1)),  # sounding: ended now
        (now + 0.01, note_on(52, 2)), (now + 0.5, note_on(53, 2)),  # one pending: dropped
        (now + 0.01, [0xB1, 64, 127]),  # a pedal down on an ended channel: lifted
        (now + 0.01, note_on(60, 0)), (now + 0.4, note_off(60, 0)),  # another channel plays on
    ])
    recorder.wait_for(4)
    scheduler.end_channels([1, 2])
    assert scheduler.sounding == {(0, 60)} and scheduler.pending == 1
    time.sleep(0.7)  # past every deadline
    assert recorder.messages[4:] == [note_off(50, 1), note_off(52, 2), [0xB1, 64, 0],
                                     note_off(60, 0)]
    assert not scheduler.sounding


def test_cancel_keeps_the_note_off_of_a_sounding_note(started):
    scheduler, recorder = started
    now = time.perf_counter()
    scheduler.schedule_many([
        (now + 0.01, note_on(60)), (now + 0.3, note_off(60)),  # sounding when cancelled
        (now + 0.5, note_on(62)), (now + 0.6, note_off(62)),  # not yet started: dropped
        (now + 0.55, [0xB0, 1, 64]),
    ])
    recorder.wait_for(1)
    assert scheduler.cancel() == 3
    assert scheduler.pending == 1
    recorder.wait_for(2)
    time.sleep(0.5)  # past every cancelled deadline
    assert recorder.messages == [note_on(60), note_off(60)]
    assert not scheduler.sounding


def test_cancel_after_a_time_keeps_the_earlier_part_whole(started):
    scheduler, recorder = started
    now = time.perf_counter()
    scheduler.schedule_many([
        (now + 0.05, note_on(70)), (now + 0.4, note_off(70)),  # starts before `after`
        (now + 0.3, note_on(72)), (now + 0.45, note_off(72)),  # starts after: dropped
        (now + 0.06, [0xB0, 64, 127]), (now + 0.35, [0xB0, 64, 0]),  # pedal: lifted as written
    ])
    assert scheduler.cancel(after=now + 0.2) == 2
    recorder.wait_for(4)
    time.sleep(0.3)
    assert recorder.messages == [note_on(70), [0xB0, 64, 127], [0xB0, 64, 0], note_off(70)]


def test_a_cancelled_note_on_takes_its_note_off_along(started):
    scheduler, recorder = started
    now = time.perf_counter()
    scheduler.schedule_many([(now + 0.2, note_on(80)), (now + 0.3, note_off(80))])
    assert scheduler.cancel() == 2 and scheduler.pending == 0
    scheduler.release_all()  # nothing sounds: sends nothing
    time.sleep(0.4)
    assert recorder.messages == []


def test_release_all_counts_overlapping_notes_of_one_pitch(started):
    scheduler, recorder = started
    now = time.perf_counter()
    scheduler.schedule_many([(now + 0.01, note_on(60)), (now + 0.02, note_on(60)),
                             (now + 0.03, note_off(60)), (now + LONG, note_off(60))])
    recorder.wait_for(3)
    assert scheduler.sounding == {(0, 60)}
    scheduler.cancel()
    assert scheduler.pending == 1  # the second note-off still ends the second note
    scheduler.release_all()
    assert recorder.wait_for(4)[-1] == note_off(60) and not scheduler.sounding


def test_a_recorder_closing_its_port_does_not_crash_the_scheduler(output, make_recorder,
                                                                  scheduler_class):
    first = make_recorder().connect(output.name)
    scheduler = scheduler_class(output)
    try:
        start = time.perf_counter() + 0.02
        scheduler.schedule_many((start + 0.002 * k, [0xB0, 1, k]) for k in range(120))
        first.wait_for(10)
        first.close()  # the listener goes away mid-stream
        second = make_recorder().connect(output.name)
        scheduler.schedule(time.perf_counter() + 0.3, note_on(61))
        second.wait_until(lambda messages: note_on(61) in messages)
        assert scheduler.running and scheduler.send_errors == 0
    finally:
        scheduler.stop()


def test_a_lost_output_is_counted_and_reported_not_fatal(output, recorder, scheduler_class):
    recorder.connect(output.name)
    errors: list[BaseException] = []
    scheduler = scheduler_class(output, on_error=errors.append)
    now = time.perf_counter()
    scheduler.schedule_many([(now + 0.01, note_on(60)), (now + 0.3, note_off(60)),
                             (now + 0.35, note_on(62))])
    recorder.wait_for(1)
    output.close()  # the port is gone under the scheduler
    deadline = time.monotonic() + 10
    while scheduler.send_errors < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert scheduler.send_errors == 2 and scheduler.port_error.is_set()
    assert all(isinstance(e, PortClosedError) for e in errors) and len(errors) == 2
    assert isinstance(scheduler.last_error, PortClosedError)
    assert scheduler.running and scheduler.thread_error is None
    assert scheduler.sounding == {(0, 60)}  # never ended on the synth: still known
    scheduler.stop()  # tries the note-off again, fails, reports, and still returns
    assert len(errors) == 3 and not scheduler.running


def test_a_failing_error_handler_does_not_kill_the_thread(output, recorder):
    recorder.connect(output.name)

    def handler(error: BaseException) -> None:
        raise ValueError("handler bug")

    scheduler = Scheduler(output, on_error=handler)
    try:
        output.close()
        scheduler.schedule(time.perf_counter(), note_on(60))
        deadline = time.monotonic() + 10
        while scheduler.send_errors < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        assert scheduler.send_errors == 1 and scheduler.running
    finally:
        scheduler.stop()


def test_lateness_stats_wrap_around_their_ring(output, recorder, scheduler_class):
    recorder.connect(output.name)
    scheduler = scheduler_class(output, lateness_capacity=16)
    try:
        empty = scheduler.lateness_stats()
        assert empty["count"] == 0 and math.isnan(empty["p99"])
        start = time.perf_counter() + 0.02
        scheduler.schedule_many((start + 0.003 * k, [0xB0, 2, k]) for k in range(40))
        recorder.wait_for(40)
        stats = scheduler.lateness_stats()
        assert stats["count"] == 40
        assert 0 <= stats["p50"] <= stats["p99"] <= stats["max"] < 1.0
        samples = scheduler.lateness_samples()
        assert len(samples) == 16 and samples.max() == stats["max"]
        scheduler.reset_lateness()
        assert scheduler.lateness_stats()["count"] == 0
    finally:
        scheduler.stop()
