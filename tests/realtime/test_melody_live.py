"""Call and response with the melody-rnn plugin: a lead line answered with a lead line on
the engine's bar grid, on fake ports and through a real JACK server following a DAW's clock."""

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
    FakeRunningEngine,
    RunningEngine,
    answer_played,
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

BPM = 100.0


def most_sounding(messages) -> int:
    """The most notes sounding at once in a stream of MIDI messages."""
    sounding: set[int] = set()
    most = 0
    for message in messages:
        kind = message[0] & 0xF0
        if kind == NOTE_ON and message[2] > 0:
            sounding.add(message[1])
        elif kind == NOTE_OFF or kind == NOTE_ON:
            sounding.discard(message[1])
        most = max(most, len(sounding))
    return most


def test_the_answer_is_one_line_begun_on_the_bar(tiny_melody_bundle):
    with FakeRunningEngine(tiny_melody_bundle, answer_length="2 s", bpm=BPM,
                           quantize_answer_to="bar", temperature=1.0) as running:
        phrase_end = feed_phrase(running.input)
        running.output.wait_until(has_note_on)
        wait_for(lambda: answer_played(running.engine))
        record = running.engine.mode.performer.records[0]
    assert note_ons(running.output.events)[0][0] > phrase_end
    assert most_sounding(running.output.messages) == 1
    assert sounding_after(running.output.messages) == {}
    # The engine told the plugin the answer begins on a downbeat: the same generator, primed
    # with bar_step 0 at the engine's tempo, makes the same events.
    generator = load_generator(tiny_melody_bundle)
    generator.knobs.temperature = 1.0
    generator.prime([], {"bpm": BPM, "bar_step": 0})
    generator.extend(record.primer)
    generator.seed(record.seed)
    assert generator.generate(len(record.events)).tolist() == record.events
    line = generator.line
    primer_steps = len(line.classes) - line.answered
    assert (line.first_position + primer_steps) % 16 == 0


@pytest.mark.timing
def test_answers_land_on_the_daws_bars(tiny_melody_bundle, make_player, make_recorder):
    """`cadenza live --plugin melody-rnn --follow-clock --quantize bar`: the DAW sends Start
    and 24 ppqn at 100 BPM; the lead-line answer starts on a bar line of that clock."""
    daw = make_player().open_virtual(unique("daw"))
    tap = make_recorder().connect(daw.port_name)
    recorder = make_recorder()
    with RunningEngine(tiny_melody_bundle, input_port=daw.port_name, follow_clock=True,
                       quantize_answer_to="bar", answer_length="1 s") as running:
        recorder.connect(f"{running.name} out")
        time.sleep(0.2)
        daw.send([0xFA])
        stop_clock = threading.Event()
        pulses = threading.Thread(target=send_clock, args=(daw, 60.0 / BPM / 24, stop_clock))
        pulses.start()
        try:
            time.sleep(1.0)
            play_phrase(daw, PHRASE[:4])
            stats = running.engine.stats
            wait_for(lambda: stats.answers >= 1)
            answer_start = stats.detected_at[0] + stats.detect_to_start[0]
            wait_for(lambda: time.perf_counter() > answer_start + 1.2)
            wait_for(lambda: answer_played(running.engine))
            grid = running.engine.current_grid()  # the DAW's tempo and bars, as followed
        finally:
            stop_clock.set()
            pulses.join()
    assert most_sounding(recorder.messages) == 1
    assert sounding_after(recorder.messages) == {}
    assert abs(grid.bpm - BPM) < 1.0
    bars = grid.beat_at(answer_start) / grid.beats_per_bar  # counted from the DAW's Start
    assert abs(bars - round(bars)) < 0.02  # on a bar line (a later tempo fit moves it little)
    # How far that bar line is from the DAW's own pulses as they arrived here: a figure for
    # the timing runs (`-m timing`) to print, not to fail on.
    arrivals = [t for t, m in tap.events if m == [0xF8]]
    slope, intercept = np.polyfit(np.arange(len(arrivals)), arrivals, 1)
    bar = 4 * 24 * slope  # the first pulse after Start is a downbeat
    offset = (answer_start - intercept) % bar
    print(f"answer start to the DAW's bar line: {min(offset, bar - offset) * 1000:.2f} ms")


def test_cadenza_live_plugin_melody_rnn_answers_a_line_and_stops_clean(player, recorder):
    """The shipped bundle through the command a player types: `cadenza live --plugin
    melody-rnn --quantize bar`; a chord-free call gets a one-line answer, and SIGINT in the
    middle of it leaves no note sounding."""
    process, name = spawn_live(player, "--plugin", "melody-rnn", "--quantize", "bar", "--bpm",
                               "120", "--silence", "0.2", "--answer-length", "20 s", "--quiet",
                               "--seed", "1")
    try:
        player.connect(f"{name} in")
        recorder.connect(f"{name} out")
        time.sleep(0.2)
        play_phrase(player, PHRASE[:5])
        recorder.wait_until(lambda messages: len(note_ons([(0, m) for m in messages])) >= 4)
    except AssertionError:
        process.kill()
        raise AssertionError(process.stderr.read()[-3000:]) from None
    assert most_sounding(recorder.messages) == 1
    interrupt_live(process, signal.SIGINT, recorder)
