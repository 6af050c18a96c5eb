"""The live engine end to end, through a real JACK server: a test client plays a phrase into
Cadenza's input port and records its output port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from cadenza.plugins import load_generator
from cadenza.realtime.config import load_live_config
from cadenza.realtime.live import open_engine
from tests.realtime.conftest import sounding_after, unique

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


class RunningEngine:
    def __init__(self, bundle, **settings):
        self.name = unique("cadenza")
        config = load_live_config(None, {"port_name": self.name, "quiet": True, "seed": 11,
                                         "silence_seconds": 0.3, **settings})
        config.bundle = str(bundle)
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
        player.connect(f"{running.name} in")
        recorder.connect(f"{running.name} out")
        phrase_end = play_phrase(player)
        recorder.wait_until(lambda messages: any(m[0] & 0xF0 == NOTE_ON for m in messages))
        time.sleep(2.0)  # the rest of the answer
        records = running.engine.performer.records
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
        player.connect(f"{running.name} in")
        recorder.connect(f"{running.name} out")
        play_phrase(player)
        recorder.wait_until(lambda messages: len(note_ons([(0, m) for m in messages])) >= 3)
    time.sleep(0.3)
    assert sounding_after(recorder.messages) == {}


def test_playing_again_stops_the_answer(tiny_bundle, player, recorder):
    with RunningEngine(tiny_bundle, answer_length="20 s", on_interrupt="stop") as running:
        player.connect(f"{running.name} in")
        recorder.connect(f"{running.name} out")
        play_phrase(player)
        recorder.wait_until(lambda messages: len(note_ons([(0, m) for m in messages])) >= 2)
        player.send([NOTE_ON, 50, 90])
        time.sleep(0.5)
        assert sounding_after(recorder.messages) == {}  # the answer's notes were all ended
        player.send([0x80, 50, 0])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_answer_leaves_no_sounding_note(tiny_bundle, player, recorder, signum):
    name = unique("cadenza")
    process = subprocess.Popen(
        [sys.executable, "-m", "cadenza.cli", "live", "--bundle", str(tiny_bundle),
         "--port-name", name, "--silence", "0.3", "--answer-length", "20 s", "--quiet",
         "--seed", "1"],
        env={**os.environ, "CADENZA_MIDI_API": "jack"}, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while f"{name} in" not in " ".join(player.midi.get_ports()):
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "cadenza live never opened its ports"
            time.sleep(0.1)
        player.connect(f"{name} in")
        recorder.connect(f"{name} out")
        play_phrase(player)
        recorder.wait_until(lambda messages: len(note_ons([(0, m) for m in messages])) >= 3)
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    time.sleep(0.2)
    assert "Traceback" not in process.stderr.read()
    assert sounding_after(recorder.messages) == {}


def test_a_flood_of_input_is_bounded_and_the_engine_still_answers(tiny_bundle, player, recorder):
    with RunningEngine(tiny_bundle, answer_length="1 s") as running:
        player.connect(f"{running.name} in")
        recorder.connect(f"{running.name} out")
        for i in range(20000):
            player.send([0xB0, 1, i % 128])  # a mod-wheel storm
        time.sleep(0.5)
        assert len(running.engine.midi_in) <= running.engine.midi_in.capacity
        assert running.thread.is_alive()
        play_phrase(player, PHRASE[:3])
        recorder.wait_until(lambda messages: any(m[0] & 0xF0 == NOTE_ON for m in messages))
