"""The live engine, in two layers. On fake ports (tests/realtime/helpers.py: a real engine on a
real tiny bundle, FakeInput and FakeOutput for its ports): what the engine does with what it
hears, whatever carries it. Through a real JACK server, a test client playing into Cadenza's
input port and recording its output port: what only a real server shows (an answer through
real ports, a DAW's clock as JACK delivers it, signals to a real `cadenza live`, the sound
card). The Performer alone (the continuation, the loop) is in test_performer.py."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest

from cadenza.plugins import load_generator
from tests.realtime.helpers import (
    NOTE_OFF,
    NOTE_ON,
    PHRASE,
    FakeInput,
    FakeRunningEngine,
    RunningEngine,
    answer_played,
    assert_live_fails_in_one_line,
    connect,
    feed_phrase,
    has_note_on,
    interrupt_live,
    note_ons,
    play_phrase,
    send_clock,
    sounding_after,
    spawn_live,
    unique,
    wait_for,
)

# --- through JACK ------------------------------------------------------------------------


def test_answer_after_silence_is_the_plugins_continuation(tiny_bundle, player, recorder):
    with RunningEngine(tiny_bundle, answer_length="1 s") as running:
        connect(running, player, recorder)
        phrase_end = play_phrase(player)
        recorder.wait_until(has_note_on)
        wait_for(lambda: answer_played(running.engine))  # the rest of the answer
        records = running.engine.mode.performer.records
        sent = running.engine.scheduler.lateness_stats()["count"]
        recorder.wait_for(sent)  # all of it arrived
    ons = note_ons(recorder.events)
    assert ons[0][0] > phrase_end  # it listened first, then answered
    assert len(records) == 1
    record = records[0]
    assert len(record.primer) >= 2 * len(PHRASE)  # the call is the primer

    # The same generator, primed and seeded the same way, makes the same events.
    generator = load_generator(tiny_bundle)
    generator.prime([])
    generator.extend(record.primer)
    generator.seed(record.seed)
    assert generator.generate(len(record.events)).tolist() == record.events
    answered = iter(e for e in record.events if e < 128)
    assert all(pitch in answered for pitch in [m[1] for _, m in ons])  # in order; a few may be
    # dropped by the polyphony limit
    assert sounding_after(recorder.messages) == {}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_mid_answer_leaves_no_sounding_note(tiny_bundle, player, recorder, signum):
    process, name = spawn_live(
        player, "--bundle", str(tiny_bundle), "--silence", "0.2", "--answer-length", "20 s",
        "--quiet", "--seed", "1")
    try:
        player.connect(f"{name} in")
        recorder.connect(f"{name} out")
        time.sleep(0.2)  # JACK makes connections at its next cycles
        play_phrase(player, PHRASE[:3])
        recorder.wait_until(lambda messages: len(note_ons([(0, m) for m in messages])) >= 3)
    except AssertionError:
        process.kill()
        raise AssertionError(process.stderr.read()[-3000:]) from None
    interrupt_live(process, signum, recorder)


@pytest.mark.timing
def test_answers_follow_the_daws_clock_onto_its_beats(tiny_bundle, make_player, make_recorder):
    """The client sends 24 ppqn at 100 BPM and Start; answers start on that grid."""
    daw = make_player().open_virtual(unique("daw"))
    tap = make_recorder().connect(daw.port_name)  # hears the clock as Cadenza's input does
    with RunningEngine(tiny_bundle, input_port=daw.port_name, follow_clock=True,
                       quantize_answer_to="beat", answer_length="1 s") as running:
        time.sleep(0.2)
        daw.send([0xFA])
        stop_clock = threading.Event()
        pulses = threading.Thread(target=send_clock, args=(daw, 60.0 / 100 / 24, stop_clock))
        pulses.start()
        try:
            time.sleep(1.0)  # 40 pulses: the engine's tempo line, before the call
            play_phrase(daw, PHRASE[:4])
            stats = running.engine.stats
            wait_for(lambda: stats.answers >= 1)
            answer_start = stats.detected_at[0] + stats.detect_to_start[0]
            # The clock goes on for a beat after the answer's start: the grid the test fits
            # then runs past it.
            wait_for(lambda: time.perf_counter() > answer_start + 0.6)
            assert abs(running.engine.current_grid().bpm - 100) < 0.5
        finally:
            stop_clock.set()
            pulses.join()
    # The grid as it arrives: a line through the pulses' arrival times at the tap. (JACK
    # adds its own transport delay on the way in, as any MIDI cable and driver do.)
    arrivals = [t for t, m in tap.events if m == [0xF8]]
    slope, intercept = np.polyfit(np.arange(len(arrivals)), arrivals, 1)
    beat = 24 * slope
    offset = (answer_start - intercept) % beat
    assert min(offset, beat - offset) < 0.002  # where the engine put it, to 2 ms


@pytest.mark.parametrize("args, words", [
    (["--channel", "17"], ["output_channel", "1..16"]),
    (["--mode", "jam"], ["mode"]),
    (["--answer-length", "forever"], ["answer_length"]),
    (["--in", "no-such-keyboard-anywhere"], ["no-such-keyboard-anywhere"]),
])
def test_bad_live_settings_are_one_line_and_exit_2(tiny_bundle, jack_server, args, words):
    assert_live_fails_in_one_line(["--bundle", str(tiny_bundle), *args], words)


def test_synth_plays_the_answer_on_the_sound_card(tiny_bundle, player, recorder, audio):
    with RunningEngine(tiny_bundle, synth=True, answer_length="1 s") as running:
        connect(running, player, recorder)
        play_phrase(player, PHRASE[:3])
        recorder.wait_until(has_note_on)
        synth = running.engine.synth
        wait_for(lambda: synth.peak > 0.01 and synth.frames_played > 0, timeout=5.0,
                 what=f"the synth is silent: peak {synth.peak}, {synth.frames_played} frames")
    assert synth.error is None


# --- on fake ports -------------------------------------------------------------------------


def test_every_note_on_gets_its_note_off_when_stopped_mid_answer(tiny_bundle):
    with FakeRunningEngine(tiny_bundle, answer_length="20 s") as running:
        feed_phrase(running.input)
        running.output.wait_until(lambda messages: len(note_ons([(0, m) for m in messages])) >= 3)
    assert not running.thread.is_alive()
    assert sounding_after(running.output.messages) == {}


def test_playing_again_stops_the_answer(tiny_bundle):
    with FakeRunningEngine(tiny_bundle, answer_length="20 s", on_interrupt="stop") as running:
        performer = running.engine.mode.performer
        feed_phrase(running.input)
        running.output.wait_until(lambda messages: len(note_ons([(0, m) for m in messages])) >= 2)
        running.input.send([NOTE_ON, 50, 90])
        # The answer is over and nothing more of it is to come (the scheduler takes the
        # performer's unscheduling on its own thread: under load a moment after the performer
        # is idle, so both are waited for; an answer still coming never gets there) ...
        wait_for(lambda: not performer.busy and running.engine.scheduler.pending == 0)
        count = len(running.output.events)
        assert sounding_after(running.output.messages) == {}  # ... its notes were all ended
        time.sleep(0.1)
        assert len(running.output.events) == count
        running.input.send([NOTE_OFF, 50, 0])


def test_a_repeated_note_handed_over_at_once_still_ends_the_phrase(tiny_bundle):
    """A stalled writer (a JACK client a tenth of a second late, a USB packet) hands over a
    fast repeated note in one go: note-off, note-on, note-off of one key within a
    millisecond. The second note-off is no redelivery: it ends the key, and so the phrase,
    which is answered (answer_latency.py lost a phrase so: the key stayed down for good)."""
    with FakeRunningEngine(tiny_bundle, answer_length="0.5 s") as running:
        keyboard, engine = running.input, running.engine
        now = time.perf_counter()
        keyboard.feed([NOTE_ON, 60, 90], now - 0.3)
        keyboard.feed([NOTE_OFF, 60, 0], now - 0.22)
        keyboard.feed([NOTE_ON, 66, 99], now - 0.2)
        for k, message in enumerate(([NOTE_OFF, 66, 0], [NOTE_ON, 66, 97], [NOTE_OFF, 66, 0])):
            keyboard.feed(message, now + k * 1e-5)  # what the stall held back, at once
        wait_for(lambda: engine.stats.phrases == 1, what="the phrase never ended")
        running.output.wait_until(has_note_on)
        assert not engine.mode.phrases.sounding and engine.redelivered.dropped == 0


def test_a_flood_of_input_is_bounded_and_the_engine_still_answers(tiny_bundle):
    """The port's queue is bounded (test_ports.py, through JACK); the engine reads a flood as
    fast as it comes, lives through it, and answers the next phrase."""
    flooded = FakeInput(capacity=512)
    with FakeRunningEngine(tiny_bundle, midi_in=flooded, answer_length="1 s") as running:
        for i in range(20000):
            flooded.send([0xB0, 1, i % 128])  # a mod-wheel storm
        wait_for(lambda: len(flooded) == 0)  # the engine read it all
        assert running.thread.is_alive() and running.engine.stats.error is None
        feed_phrase(flooded, PHRASE[:3])
        running.output.wait_until(has_note_on)


def test_loop_repeats_the_answer_until_the_player_plays(tiny_bundle):
    period = 0.5
    with FakeRunningEngine(tiny_bundle, answer_length=f"{period} s", loop=True) as running:
        engine, output = running.engine, running.output
        feed_phrase(running.input, PHRASE[:3])
        wait_for(lambda: engine.mode.performer.records)
        start = engine.mode.performer.records[0].start
        wait_for(lambda: time.perf_counter() > start + 3 * period)  # three periods played

        def window(k):  # note-ons of period k, sent within 5 ms of their time
            low, high = start + k * period - 0.005, start + (k + 1) * period - 0.005
            return [m[1] for t, m in note_ons(output.events) if low <= t < high]

        assert window(0) and window(1) == window(0) and window(2) == window(0)
        running.input.send([NOTE_ON, 40, 90])  # the player is back: the loop stops
        wait_for(lambda: engine.mode.performer.mode == "idle" and engine.scheduler.pending == 0)
        count = len(output.events)
        time.sleep(period + 0.1)  # a repeat would have started within a period
        assert len(output.events) == count
        running.input.send([NOTE_OFF, 40, 0])
    assert sounding_after(output.messages) == {}


def test_sending_clock_gives_start_and_steady_pulses(tiny_bundle):
    with FakeRunningEngine(tiny_bundle, send_clock=True, bpm=240.0) as running:
        time.sleep(0.5)
    kinds = [m[0] for m in running.output.messages]
    assert kinds[0] == 0xFA and kinds[-1] == 0xFC
    assert 20 <= kinds.count(0xF8) <= 48  # 96 a second at 240 BPM, from the next beat on


def test_a_lost_output_port_stops_the_engine_cleanly(tiny_bundle):
    with FakeRunningEngine(tiny_bundle, answer_length="20 s") as running:
        feed_phrase(running.input, PHRASE[:3])
        running.output.wait_until(has_note_on)
        running.output.lose()  # the cable is pulled
        running.thread.join(timeout=5)
        assert not running.thread.is_alive()
        assert "lost" in running.engine.stats.error


def test_a_lost_input_port_reconnects_when_it_is_back(tiny_bundle):
    with FakeRunningEngine(tiny_bundle, answer_length="0.5 s") as running:
        engine, keyboard = running.engine, running.input
        keyboard.unplug()
        wait_for(lambda: engine.stats.input_lost)  # seen at its next look (a second apart)
        assert running.thread.is_alive() and engine.stats.reconnects == 0
        keyboard.plug_back()
        wait_for(lambda: not engine.stats.input_lost)
        assert engine.stats.reconnects == 1 and keyboard.reconnects == 1
        feed_phrase(keyboard, PHRASE[:3])
        running.output.wait_until(has_note_on)
