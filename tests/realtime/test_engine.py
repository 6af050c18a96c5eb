"""The live engine end to end, through a real JACK server: a test client plays a phrase into
Cadenza's input port and records its output port."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest

from cadenza.plugins import load_generator
from cadenza.realtime.config import load_live_config
from cadenza.realtime.live import open_engine
from tests.realtime.conftest import (
    assert_live_fails_in_one_line,
    interrupt_live,
    sounding_after,
    spawn_live,
    unique,
)

PHRASE = [60, 64, 67, 72, 67, 64]
NOTE_ON = 0x90


def play_phrase(player, pitches=PHRASE, length=0.12, gap=0.03) -> float:
    """Plays the phrase; returns the time of the last note-off."""
    last = 0.0
    for pitch in pitches:
        player.send([NOTE_ON, pitch, 90])
        time.sleep(length)
        last = player.send([0x80, pitch, 0])
        time.sleep(gap)
    return last


def note_ons(events):
    return [(t, m) for t, m in events if m[0] & 0xF0 == NOTE_ON and m[2] > 0]


def connect(running, player=None, recorder=None) -> None:
    if player is not None:
        player.connect(f"{running.name} in")
    if recorder is not None:
        recorder.connect(f"{running.name} out")
    time.sleep(0.2)  # JACK makes connections at its next cycles


class RunningEngine:
    def __init__(self, bundle, **settings):
        self.name = unique("cadenza")
        config = load_live_config(None, {"port_name": self.name, "quiet": True, "seed": 11,
                                         "silence_seconds": 0.3, **settings})
        config.bundle = None if bundle is None else str(bundle)  # None: the shipped one
        self.engine = open_engine(config)
        self.thread = threading.Thread(target=self.engine.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.engine.stop()
        self.thread.join(timeout=10)
        self.engine.close_ports()


def test_answer_after_silence_is_the_plugins_continuation(tiny_bundle, player, recorder):
    with RunningEngine(tiny_bundle, answer_length="1.5 s") as running:
        connect(running, player, recorder)
        phrase_end = play_phrase(player)
        recorder.wait_until(lambda messages: any(m[0] & 0xF0 == NOTE_ON for m in messages))
        time.sleep(2.0)  # the rest of the answer
        records = running.engine.mode.performer.records
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


def test_every_note_on_gets_its_note_off_when_stopped_mid_answer(tiny_bundle, player, recorder):
    with RunningEngine(tiny_bundle, answer_length="20 s") as running:
        connect(running, player, recorder)
        play_phrase(player)
        recorder.wait_until(lambda messages: len(note_ons([(0, m) for m in messages])) >= 3)
    time.sleep(0.3)
    assert sounding_after(recorder.messages) == {}


def test_playing_again_stops_the_answer(tiny_bundle, player, recorder):
    with RunningEngine(tiny_bundle, answer_length="20 s", on_interrupt="stop") as running:
        connect(running, player, recorder)
        play_phrase(player)
        recorder.wait_until(lambda messages: len(note_ons([(0, m) for m in messages])) >= 2)
        player.send([NOTE_ON, 50, 90])
        time.sleep(0.5)
        assert sounding_after(recorder.messages) == {}  # the answer's notes were all ended
        player.send([0x80, 50, 0])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_answer_leaves_no_sounding_note(tiny_bundle, player, recorder, signum):
    process, name = spawn_live(
        player, "--bundle", str(tiny_bundle), "--silence", "0.3", "--answer-length", "20 s",
        "--quiet", "--seed", "1")
    try:
        player.connect(f"{name} in")
        recorder.connect(f"{name} out")
        time.sleep(0.2)  # JACK makes connections at its next cycles
        play_phrase(player)
        recorder.wait_until(lambda messages: len(note_ons([(0, m) for m in messages])) >= 3)
    except AssertionError:
        process.kill()
        raise AssertionError(process.stderr.read()[-3000:]) from None
    interrupt_live(process, signum, recorder)


def test_a_flood_of_input_is_bounded_and_the_engine_still_answers(tiny_bundle, player, recorder):
    with RunningEngine(tiny_bundle, answer_length="1 s") as running:
        connect(running, player, recorder)
        for i in range(20000):
            player.send([0xB0, 1, i % 128])  # a mod-wheel storm
        time.sleep(0.5)
        assert len(running.engine.midi_in) <= running.engine.midi_in.capacity
        assert running.thread.is_alive()
        play_phrase(player, PHRASE[:3])
        recorder.wait_until(lambda messages: any(m[0] & 0xF0 == NOTE_ON for m in messages))


def test_loop_repeats_the_answer_until_the_player_plays(tiny_bundle, player, recorder):
    period = 0.6
    with RunningEngine(tiny_bundle, answer_length=f"{period} s", loop=True) as running:
        connect(running, player, recorder)
        play_phrase(player, PHRASE[:3])
        time.sleep(0.3 + period * 3.5)  # the silence, then three and a half periods
        start = running.engine.mode.performer.records[0].start

        def window(k):  # note-ons of period k (5 ms of slack for JACK's delivery)
            low, high = start + k * period - 0.005, start + (k + 1) * period - 0.005
            return [m[1] for t, m in note_ons(recorder.events) if low <= t < high]

        assert window(0) and window(1) == window(0) and window(2) == window(0)
        player.send([NOTE_ON, 40, 90])  # the player is back: the loop stops
        time.sleep(0.3)
        count = len(recorder.events)
        time.sleep(1.5)
        assert len(recorder.events) == count
        player.send([0x80, 40, 0])
    assert sounding_after(recorder.messages) == {}


def test_answers_follow_the_daws_clock_onto_its_beats(tiny_bundle, make_player, make_recorder):
    """The client sends 24 ppqn at 100 BPM and Start; answers start on that grid."""
    daw = make_player().open_virtual(unique("daw"))
    tap = make_recorder().connect(daw.port_name)  # hears the clock as Cadenza's input does
    with RunningEngine(tiny_bundle, input_port=daw.port_name, follow_clock=True,
                       quantize_answer_to="beat", answer_length="1 s") as running:
        time.sleep(0.2)
        daw.send([0xFA])
        pulses = threading.Thread(target=send_clock, args=(daw, 60.0 / 100 / 24, 24 * 12))
        pulses.start()
        time.sleep(1.0)
        play_phrase(daw, PHRASE[:4])
        pulses.join()
        stats = running.engine.stats
        assert stats.answers >= 1
        assert abs(running.engine.current_grid().bpm - 100) < 0.5
    # The grid as it arrives: a line through the pulses' arrival times at the tap. (JACK
    # adds its own transport delay on the way in, as any MIDI cable and driver do.)
    arrivals = [t for t, m in tap.events if m == [0xF8]]
    slope, intercept = np.polyfit(np.arange(len(arrivals)), arrivals, 1)
    beat = 24 * slope
    answer_start = stats.detected_at[0] + stats.detect_to_start[0]
    offset = (answer_start - intercept) % beat
    assert min(offset, beat - offset) < 0.002  # where the engine put it, to 2 ms


def send_clock(player, period: float, count: int) -> None:
    start = time.perf_counter() + 0.001
    for k in range(count):
        while time.perf_counter() < start + k * period:
            time.sleep(0.0002)
        player.send([0xF8])


def test_sending_clock_gives_start_and_steady_pulses(tiny_bundle, recorder):
    with RunningEngine(tiny_bundle, send_clock=True, bpm=120.0) as running:
        connect(running, recorder=recorder)
        time.sleep(1.0)
    kinds = [m[0] for m in recorder.messages]
    assert kinds[0] == 0xFA and kinds[-1] == 0xFC
    assert 20 <= kinds.count(0xF8) <= 48  # 48 a second at 120 BPM, from the next beat on


def test_a_lost_output_port_stops_the_engine_cleanly(tiny_bundle, player, make_recorder):
    sink = make_recorder().open_virtual(unique("sink"))
    with RunningEngine(tiny_bundle, output_port=sink.port_name, answer_length="20 s") as running:
        connect(running, player)
        play_phrase(player, PHRASE[:3])
        sink.wait_until(lambda messages: any(m[0] & 0xF0 == NOTE_ON for m in messages))
        sink.close()  # the cable is pulled
        running.thread.join(timeout=5)
        assert not running.thread.is_alive()
        assert "lost" in running.engine.stats.error


def test_a_lost_input_port_reconnects_when_it_is_back(tiny_bundle, make_player, recorder):
    keyboard = make_player().open_virtual(unique("keyboard"))
    with RunningEngine(tiny_bundle, input_port=keyboard.port_name,
                       answer_length="0.5 s") as running:
        connect(running, recorder=recorder)
        name = keyboard.port_name
        keyboard.close()  # unplugged
        time.sleep(2.5)
        assert running.engine.stats.input_lost and running.thread.is_alive()
        again = make_player().open_virtual(name)  # plugged back in
        deadline = time.monotonic() + 10
        while running.engine.stats.input_lost and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running.engine.stats.reconnects == 1
        play_phrase(again, PHRASE[:3])
        recorder.wait_until(lambda messages: any(m[0] & 0xF0 == NOTE_ON for m in messages))


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
        recorder.wait_until(lambda messages: any(m[0] & 0xF0 == NOTE_ON for m in messages))
        time.sleep(0.3)
        synth = running.engine.synth
        assert synth.peak > 0.01 and synth.frames_played > 0
    assert synth.error is None
