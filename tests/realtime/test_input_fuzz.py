"""Live fuzz on JACK (issue 15): 100,000 random messages at 10,000 a second from another JACK
client (tests/realtime/flood_client.py, in its own process) into a running engine's real input
port, while it answers a phrase and while it plays a backing. The session survives, what it
dropped shows on the status line, it still answers (plays on) after the flood, memory stays
bounded, and no note is left sounding once it closes.

Marked `timing`: each flood keeps both cores of a two-core machine busy for about 10 s, so it
runs alone, after the parallel tests (whose JACK clients it would starve), and they cannot
slow the flood below the rate it claims.

Two things rtmidi's JACK input does before Cadenza sees a byte (python-rtmidi 1.5.8, RtMidi
5.0): it refuses to send an empty message or one over 3 bytes not starting with 0xF0 (so the
flood holds none), and after a SysEx without its 0xF7 it takes every later event as that
SysEx's continuation, and (SysEx being ignored) drops it, until an event ends in 0xF7.
Cadenza cannot see that state, so after the flood the player sends a lone 0xF7, as a device
recovering from a broken SysEx would; the flood (seed 14) ends with a SysEx left open, and
about a fifth of its messages never reach Cadenza this way.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from cadenza.midi_status import ALL_NOTES_OFF, CONTROL_CHANGE, SUSTAIN_PEDAL, well_formed
from cadenza.realtime.live import status_line
from cadenza.realtime.redelivery import RedeliveryFilter
from tests.realtime.flood_client import Flood, messages
from tests.realtime.helpers import (
    NOTE_OFF,
    NOTE_ON,
    PHRASE,
    JackLateCycles,
    RunningEngine,
    StampedOutput,
    assert_all_ended,
    connect,
    note_ons,
    play_phrase,
    sounding_after,
    wait_for,
)

SEED = 14
COUNT = 100_000
RATE = 10_000.0  # messages a second: twice the 5,000 the issue asks, so a flood takes 10 s
MEMORY_CAP = 16 * 2**20  # bytes the process may grow by during a flood: it grows by under
# 1 MiB (the input queue holds at most 4,096 messages); the 32,521-command backlog issue 15
# found, each command a batch of its own, would take tens of MB
SAMPLE_PERIOD = 0.05  # seconds between looks at the queues and the memory


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def flood_engine(running: RunningEngine) -> dict:
    """Flood the engine's input; what the flood did, and the most it queued and grew by."""
    engine = running.engine
    performer = getattr(engine.mode, "performer", None)  # call-and-response only
    before, most_rss, most_commands = resident_bytes(), 0, 0
    done: list[tuple[int, float]] = []
    with Flood(f"{running.name} in", seed=SEED, count=COUNT, rate=RATE) as flood:
        flood.go()
        waiter = threading.Thread(target=lambda: done.append(flood.wait()), daemon=True)
        waiter.start()
        while waiter.is_alive():
            most_rss = max(most_rss, resident_bytes() - before)
            if performer is not None:
                most_commands = max(most_commands, performer.commands.qsize())
            waiter.join(SAMPLE_PERIOD)
    sent, seconds = done[0]
    time.sleep(0.1)  # the last messages cross JACK and are taken in
    malformed = engine.stats.malformed
    # Messages JACK loses on the way (the engine's client late for a cycle on a loaded
    # machine) are counted nowhere: the figure beside the count shows them, not asserted.
    print(f"\nflood: {sent} messages in {seconds:.2f} s ({sent / seconds:.0f}/s); engine "
          f"dropped {engine.dropped} (malformed {malformed} of the "
          f"{EXPECTED_MALFORMED} rtmidi hands over); most commands queued {most_commands}; "
          f"grew {most_rss / 2**20:.1f} MiB")
    return {"sent": sent, "grew": most_rss, "commands": most_commands, "malformed": malformed}


def release_everything(player, engine) -> None:
    """What a keyboard recovering from the flood sends: the end of any SysEx left open (see
    the module docstring), all notes off and the pedal up on every channel (the flood held
    keys the phrase detector rightly waits for). Again until the engine has heard it: on a
    loaded machine JACK can lose a message on the way."""
    phrases = getattr(engine.mode, "phrases", None)  # call-and-response's phrase detector
    for _ in range(5):
        player.send([0xF7])
        for channel in range(16):
            player.send([CONTROL_CHANGE | channel, ALL_NOTES_OFF, 0])
            player.send([CONTROL_CHANGE | channel, SUSTAIN_PEDAL, 0])
        time.sleep(0.1)
        if phrases is None or not phrases.sounding:
            return
    raise AssertionError("the flood's keys (or pedal) are still held after 5 releases")


def assert_nothing_sounding(sent: StampedOutput, recorder, late: JackLateCycles) -> None:
    """Every note Cadenza began it ended (what it handed its port, exactly); and at the
    recorder too, but where jackd says it missed cycles (see assert_all_ended). Else the first
    stuck key's messages, timed.

    What the recorder got is read as the engine reads its own input: a JACK client running
    late on a loaded machine can get a cycle's events twice (cadenza/realtime/redelivery.py),
    and a chord's note-ons read twice would look like notes Cadenza never ended."""
    own = sounding_after([m for _, m in sent.sent])
    assert own == {}, f"Cadenza left {own} sounding"
    heard = RedeliveryFilter()
    messages = [m for t, m in recorder.events if not heard.is_repeat(t, bytes(m))]
    stuck = sounding_after(messages)
    first = next(iter(stuck), None)
    history = [(round(t, 5), m) for t, m in recorder.events
               if len(m) == 3 and (m[0] & 0x0F, m[1]) == first]
    if stuck:
        print(f"at the recorder {stuck}: {history} (last at {recorder.events[-1][0]:.4f})")
    assert_all_ended(messages, late)
    if heard.dropped:
        print(f"the recorder got {heard.dropped} messages twice")


def assert_survived(running: RunningEngine, flooded: dict) -> None:
    engine = running.engine
    assert running.thread.is_alive() and engine.stats.error is None
    assert flooded["sent"] == COUNT
    assert 0 < flooded["malformed"] <= EXPECTED_MALFORMED
    assert f"dropped {engine.dropped}" in status_line(engine)
    assert flooded["grew"] < MEMORY_CAP


def through_rtmidi(flood: list[list[int]]) -> tuple[list[list[int]], bool]:
    """What of `flood` rtmidi's JACK input hands to Cadenza, and whether it is left inside a
    SysEx (RtMidi 5.0's rule: an event starting 0xF0 opens one unless it ends in 0xF7, and is
    ignored with SysEx; while one is open, every event is dropped, and one ending in 0xF7,
    other than MTC, clock and active sensing, closes it; active sensing is ignored)."""
    delivered, inside = [], False
    for message in flood:
        if message[0] == 0xF0 or inside and message[0] not in (0xF1, 0xF8, 0xFE):
            inside = message[-1] != 0xF7
        elif not inside and message[0] != 0xFE:
            delivered.append(message)
    return delivered, inside


EXPECTED_MALFORMED = sum(not well_formed(m) for m in
                         through_rtmidi(messages("hostile", SEED, COUNT))[0])


def test_the_flood_is_what_the_module_says():
    flood = messages("hostile", SEED, COUNT)
    delivered, left_open = through_rtmidi(flood)
    assert left_open and 0.5 * COUNT < len(delivered) < 0.8 * COUNT
    assert any(max(m) > 0x7F and m[0] < 0xF0 for m in flood)  # data bytes over 127
    assert any(len(m) == 1 and m[0] < 0x80 for m in flood)  # running-status fragments
    assert any(m[0] == 0xF0 and m[-1] == 0xF7 for m in flood)  # whole SysEx


def test_rtmidi_drops_what_follows_an_open_sysex_until_an_end(tiny_bundle, make_player):
    """Why release_everything sends 0xF7: pins RtMidi's behaviour (if a later rtmidi ends a
    SysEx at the next status byte, as MIDI 1.0 does, this fails and the 0xF7 can go)."""
    with RunningEngine(tiny_bundle) as running:
        player = make_player()
        connect(running, player)
        for message in ([0xF0, 1, 2], [NOTE_ON, 60], [0xF7], [NOTE_ON, 61]):
            player.send(message)
        wait_for(lambda: running.engine.stats.malformed >= 1)
        time.sleep(0.1)
        assert running.engine.stats.malformed == 1  # [0x90, 61] only; [0x90, 60] never came


@pytest.mark.timing
def test_a_hostile_flood_while_answering_ends_nothing(tiny_bundle, make_player, recorder,
                                                       jack_late_cycles):
    with RunningEngine(tiny_bundle, answer_length="1 s") as running:
        engine, player = running.engine, make_player()
        sent = StampedOutput.around(engine.scheduler)
        connect(running, player, recorder)
        play_phrase(player, PHRASE[:3])
        wait_for(lambda: engine.mode.performer.busy or engine.stats.answers)  # answering
        flooded = flood_engine(running)
        release_everything(player, engine)
        assert_survived(running, flooded)
        assert flooded["commands"] < 100
        wait_for(lambda: not engine.mode.performer.busy and engine.scheduler.pending == 0,
                 timeout=20)
        answers = engine.stats.answers
        ended = play_phrase(player, PHRASE[:3])
        wait_for(lambda: engine.stats.answers > answers, what="no answer after the flood")
        recorder.wait_until(lambda m: note_ons([(t, x) for t, x in recorder.events
                                                if t > ended]))
    time.sleep(0.3)  # the closing note-offs cross JACK
    assert_nothing_sounding(sent, recorder, jack_late_cycles)


@pytest.mark.timing
def test_a_hostile_flood_while_backing_ends_nothing(tiny_backing_bundle, make_player, recorder,
                                                     jack_late_cycles):
    with RunningEngine(tiny_backing_bundle, mode="backing", bpm=200.0, density=3.0) as running:
        engine, player = running.engine, make_player()
        sent = StampedOutput.around(engine.scheduler)
        connect(running, player, recorder)
        recorder.wait_until(lambda m: len(note_ons([(0, x) for x in m])) >= 3)
        flooded = flood_engine(running)
        release_everything(player, engine)
        assert_survived(running, flooded)
        backing, ended = engine.mode.backing, time.perf_counter()
        steps = backing.steps
        player.send([NOTE_ON, 64, 90])  # the player's next note is heard
        wait_for(lambda: backing.steps >= steps + 4, what="the backing stopped")
        player.send([NOTE_OFF, 64, 0])
        recorder.wait_until(lambda m: note_ons([(t, x) for t, x in recorder.events
                                                if t > ended]))
    time.sleep(0.3)
    assert_nothing_sounding(sent, recorder, jack_late_cycles)
