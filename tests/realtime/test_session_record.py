"""`cadenza live --record FILE.mid` and the `r` key (cadenza.realtime.session_record): the
player and every generated voice on named tracks, at the times the test client sent and heard
them, and a whole file, every note ended, however the set ends."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import mido
import pytest

from cadenza.realtime.jack import PERIOD_FRAMES
from cadenza.realtime.midi_io import IDLE_POLL_SECONDS
from cadenza.realtime.session_file import TICKS_PER_BEAT
from tests.realtime.helpers import (
    PHRASE,
    FakeRunningEngine,
    RunningEngine,
    answer_played,
    connect,
    feed_phrase,
    has_note_on,
    interrupt_live,
    note_ons,
    play_phrase,
    sounding_after,
    spawn_live,
    wait_for,
)

CYCLE = PERIOD_FRAMES / 48000  # seconds of one cycle of the tests' JACK server


def tracks(path: Path) -> dict[str, list[tuple[float, list[int]]]]:
    """Each named track of a recorded file: (seconds from the file's start, message bytes),
    the seconds through the file's own tempo map."""
    midi = mido.MidiFile(path)
    assert midi.type == 1
    tempo = [(0, 500000)]
    tick = 0
    for message in midi.tracks[0]:
        tick += message.time
        if message.type == "set_tempo":
            tempo.append((tick, message.tempo))

    def seconds(at: int) -> float:
        total, last_tick, last_tempo = 0.0, 0, tempo[0][1]
        for change_tick, change in tempo:
            if change_tick > at:
                break
            total += mido.tick2second(change_tick - last_tick, TICKS_PER_BEAT, last_tempo)
            last_tick, last_tempo = change_tick, change
        return total + mido.tick2second(at - last_tick, TICKS_PER_BEAT, last_tempo)

    out = {}
    for track in midi.tracks[1:]:
        tick, events = 0, []
        for message in track:
            tick += message.time
            if not message.is_meta:
                events.append((seconds(tick), message.bytes()))
        out[track.name] = events
    return out


def ended(events) -> bool:
    return sounding_after([m for _, m in events]) == {}


@pytest.mark.timing
def test_the_player_and_the_answers_are_recorded_at_their_times(tiny_bundle, player, recorder,
                                                                tmp_path):
    path = tmp_path / "set.mid"
    with RunningEngine(tiny_bundle, answer_length="1 s", record=str(path)) as running:
        connect(running, player, recorder)
        sent = []
        for pitch in PHRASE[:4]:
            sent.append((player.send([0x90, pitch, 90]), [0x90, pitch, 90]))
            time.sleep(0.1)
            sent.append((player.send([0x80, pitch, 0]), [0x80, pitch, 0]))
            time.sleep(0.03)
        recorder.wait_until(has_note_on)
        wait_for(lambda: answer_played(running.engine))
        recorder.wait_for(running.engine.scheduler.lateness_stats()["count"])
    recorded = tracks(path)
    assert set(recorded) == {"player", "answers"}
    assert [m for _, m in recorded["player"]] == [m for _, m in sent]
    heard = [(t, m) for t, m in recorder.events if m[0] < 0xF0]
    assert [m for _, m in recorded["answers"]] == [m for _, m in heard]
    assert has_note_on(m for _, m in recorded["answers"])
    # Times against the client's. Each message crosses JACK once, in the cycle after it was
    # sent: the player's stamp is taken a cycle at most after the client sent it, the client
    # hears an answer a cycle at most after it was sent. A time from a track's first message
    # has two such ends, each off by up to a cycle (one early, one late: run 5 of ten found
    # 6.9 ms at 5.3 ms a cycle), so within a track times match to two cycles (and a tick of
    # the file); across the two tracks, too.
    tick = 60.0 / 120 / TICKS_PER_BEAT
    for events, client in ((recorded["player"], sent), (recorded["answers"], heard)):
        for (file_t, _), (client_t, _) in zip(events, client, strict=True):
            assert abs((file_t - events[0][0]) - (client_t - client[0][0])) <= 2 * CYCLE + tick
    # Across the tracks, the player's first note is the first message the input ever read:
    # with no earlier message to date it by (Arrivals), it is stamped when the reader looked,
    # up to one idle poll late (run 9 of ten found 11.9 ms against two cycles' 11.2).
    gap_file = recorded["answers"][0][0] - recorded["player"][0][0]
    gap_client = heard[0][0] - sent[0][0]
    assert abs(gap_file - gap_client) <= 2 * CYCLE + IDLE_POLL_SECONDS + tick

def test_each_backing_part_is_on_its_own_track(tiny_backing_bundle, player, recorder,
                                              tmp_path):
    path = tmp_path / "backing.mid"
    with RunningEngine(tiny_backing_bundle, mode="backing", bpm=200.0, density=3.0,
                       record=str(path)) as running:
        connect(running, player, recorder)
        player.send([0x90, 67, 90])
        recorder.wait_until(lambda messages: len(note_ons([(0, m) for m in messages])) >= 9)
        player.send([0x80, 67, 0])
        time.sleep(0.1)
    time.sleep(0.2)  # the engine's last note-offs are a JACK cycle on their way
    recorded = tracks(path)
    names = running.engine.generator.parts.names
    assert list(recorded) == ["player", *names]
    assert [m for _, m in recorded["player"]] == [[0x90, 67, 90], [0x80, 67, 0]]
    channels = running.engine.mode.backing.channels
    for name, channel in zip(names, channels, strict=True):
        heard = [m for m in recorder.messages if m[0] < 0xF0 and m[0] & 0x0F == channel]
        assert has_note_on(heard)
        # Its notes and their ends as heard since the client connected (the backing started
        # with the engine: the file has its program and its first notes before that).
        assert [m for _, m in recorded[name]][-len(heard):] == heard
        assert recorded[name][0][1][0] & 0xF0 == 0xC0  # its program, at start
        assert ended(recorded[name])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_a_signal_mid_answer_leaves_a_whole_file(tiny_bundle, player, recorder, tmp_path,
                                                 signum):
    """Ctrl-C ends the take with every note ended; a crash (SIGKILL) keeps the file written
    a second before, a whole file too."""
    path = tmp_path / "set.mid"
    process, name = spawn_live(
        player, "--bundle", str(tiny_bundle), "--silence", "0.2", "--answer-length", "20 s",
        "--quiet", "--seed", "1", "--record", str(path))
    try:
        player.connect(f"{name} in")
        recorder.connect(f"{name} out")
        time.sleep(0.2)
        play_phrase(player, PHRASE[:3])
        recorder.wait_until(lambda messages: len(note_ons([(0, m) for m in messages])) >= 3)
        time.sleep(1.5)  # the writer has written the answer's start
    except BaseException:
        process.kill()
        raise
    if signum == signal.SIGINT:
        interrupt_live(process, signum, recorder)
    else:
        process.kill()
        process.wait(10)
    recorded = tracks(path)
    assert [m[1] for _, m in recorded["player"] if m[0] == 0x90] == PHRASE[:3]
    assert len(note_ons(recorded["answers"])) >= 3
    assert ended(recorded["player"]) and ended(recorded["answers"])
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp.mid")]  # no leftovers


def test_the_r_key_ends_a_take_and_starts_the_next_and_the_echo_is_not_an_answer(tiny_bundle,
                                                                                  tmp_path):
    path = tmp_path / "jam.mid"
    with FakeRunningEngine(tiny_bundle, answer_length="0.5 s", passthrough=True,
                           record=str(path)) as running:
        engine = running.engine
        wait_for(lambda: engine.recorder.recording)
        feed_phrase(running.input, PHRASE[:4])
        wait_for(lambda: answer_played(engine))
        engine.controls.press("r")  # the end of take 1
        wait_for(lambda: not engine.recorder.recording)
        first = tracks(path)
        engine.controls.press("r")  # take 2
        wait_for(lambda: engine.recorder.recording)
        feed_phrase(running.input, PHRASE[4:])
        wait_for(lambda: engine.stats.answers == 2 and answer_played(engine))
        sent = list(running.output.messages)
    second = tracks(tmp_path / "jam-2.mid")
    assert [m[1] for _, m in first["player"] if m[0] == 0x90] == PHRASE[:4]
    assert [m[1] for _, m in second["player"] if m[0] == 0x90] == PHRASE[4:]
    answered = len(note_ons(first["answers"])) + len(note_ons(second["answers"]))
    assert answered == len(note_ons([(0, m) for m in sent])) - len(PHRASE)  # less the echoes
    assert all(ended(events) for take in (first, second) for events in take.values())
    assert "rec" not in engine.recorder.status(time.perf_counter())  # stopped with the engine
