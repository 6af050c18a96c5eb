"""Phrase detection on real message sequences with explicit perf_counter timestamps."""

from __future__ import annotations

import mido
import pytest

from cadenza.midi import read_midi
from cadenza.realtime.clock import BeatGrid
from cadenza.realtime.phrase import Phrase, PhraseDetector

T0 = 5000.0
PRIMERS = "cadenza/data/primers"


def on(pitch: int, velocity: int = 80, channel: int = 0) -> list[int]:
    return [0x90 | channel, pitch, velocity]


def off(pitch: int, channel: int = 0) -> list[int]:
    return [0x80 | channel, pitch, 64]


def cc(number: int, value: int, channel: int = 0) -> list[int]:
    return [0xB0 | channel, number, value]


def play(detector: PhraseDetector, events) -> None:
    for t, message in events:
        detector.feed(T0 + t, message)


# C-E-G, each 0.4 s, one after the other: the sound stops at T0 + 1.2.
ARPEGGIO = [
    (0.0, on(60, 70)), (0.4, off(60)),
    (0.4, on(64, 80)), (0.8, off(64)),
    (0.8, on(67, 90)), (1.2, off(67)),
]  # fmt: skip


def test_a_phrase_ends_after_the_silence():
    detector = PhraseDetector(silence_seconds=1.0)
    play(detector, ARPEGGIO)
    assert detector.poll(T0 + 2.19) is None
    phrase = detector.poll(T0 + 2.2)
    assert isinstance(phrase, Phrase)
    assert phrase.start_time == T0
    assert phrase.end_time == T0 + 1.2
    assert phrase.detected_at == pytest.approx(T0 + 2.2)


def test_the_phrase_spans_its_first_note_on_to_its_last_note_off():
    detector = PhraseDetector(silence_seconds=0.5)
    play(detector, [(0.3 + t, m) for t, m in ARPEGGIO])
    phrase = detector.poll(T0 + 5.0)
    assert phrase.start_time == pytest.approx(T0 + 0.3)
    assert phrase.end_time == pytest.approx(T0 + 1.5)
    assert phrase.duration == pytest.approx(1.2)


def test_a_phrase_is_returned_once():
    detector = PhraseDetector(silence_seconds=0.5)
    play(detector, ARPEGGIO)
    assert detector.poll(T0 + 3.0) is not None
    assert detector.poll(T0 + 3.1) is None


def test_the_next_phrase_starts_fresh():
    detector = PhraseDetector(silence_seconds=0.5)
    play(detector, ARPEGGIO)
    detector.poll(T0 + 3.0)
    play(detector, [(4.0, on(72)), (4.5, off(72))])
    phrase = detector.poll(T0 + 5.0)
    assert (phrase.start_time, phrase.end_time) == (T0 + 4.0, T0 + 4.5)


@pytest.mark.parametrize("later", [1.0, 10.0, 1000.0])
def test_no_end_while_a_note_is_held(later):
    detector = PhraseDetector(silence_seconds=0.5)
    play(detector, [*ARPEGGIO, (1.0, on(48))])
    assert detector.poll(T0 + 1.2 + later) is None
    assert detector.sounding


@pytest.mark.parametrize("later", [1.0, 10.0, 1000.0])
def test_no_end_while_the_pedal_is_held(later):
    detector = PhraseDetector(silence_seconds=0.5)
    play(detector, [(0.1, cc(64, 127)), *ARPEGGIO])
    assert detector.poll(T0 + 1.2 + later) is None


def test_the_silence_counts_from_the_pedal_release():
    detector = PhraseDetector(silence_seconds=0.5)
    play(detector, [(0.1, cc(64, 127)), *ARPEGGIO, (2.0, cc(64, 0))])
    assert detector.poll(T0 + 2.49) is None
    phrase = detector.poll(T0 + 2.5)
    assert phrase.end_time == T0 + 2.0


def test_the_last_pedal_release_ends_the_sound():
    detector = PhraseDetector(silence_seconds=0.5)
    pedal = [(0.5, cc(64, 100)), (0.9, cc(64, 30)), (1.0, cc(64, 127)), (1.5, cc(64, 0))]
    play(detector, [*ARPEGGIO, *pedal])
    phrase = detector.poll(T0 + 3.0)
    assert phrase.end_time == T0 + 1.5


def test_a_pedal_pressed_before_the_first_note_is_down_at_its_start():
    detector = PhraseDetector(silence_seconds=0.5)
    play(detector, [(-2.0, cc(64, 127)), *ARPEGGIO, (1.5, cc(64, 0))])
    assert detector.poll(T0 + 1.9) is None  # the pedal held from before holds the phrase
    phrase = detector.poll(T0 + 3.0)
    assert phrase.start_time == T0 and phrase.end_time == T0 + 1.5


def test_pedal_alone_does_not_start_a_phrase():
    detector = PhraseDetector(silence_seconds=0.5)
    play(detector, [(0.0, cc(64, 127)), (1.0, cc(64, 0))])
    assert detector.poll(T0 + 5.0) is None
    assert detector.phrase_started_at is None


def test_the_end_cc_ends_the_phrase_at_once():
    detector = PhraseDetector(silence_seconds=5.0, end_cc=20)
    play(detector, [*ARPEGGIO, (1.25, cc(20, 127))])
    phrase = detector.poll(T0 + 1.26)
    assert phrase is not None
    assert phrase.detected_at == T0 + 1.25
    assert phrase.end_time == T0 + 1.2  # the sound had stopped before the CC


@pytest.mark.parametrize("value", [0, 63])
def test_the_end_cc_below_64_does_nothing(value):
    detector = PhraseDetector(silence_seconds=5.0, end_cc=20)
    play(detector, [*ARPEGGIO, (1.25, cc(20, value))])
    assert detector.poll(T0 + 1.26) is None


def test_notes_held_at_the_end_cc_are_closed_there():
    detector = PhraseDetector(silence_seconds=5.0, end_cc=20)
    play(detector, [(0.0, on(60)), (0.5, on(64)), (0.7, off(64)), (1.0, cc(20, 127))])
    phrase = detector.poll(T0 + 1.0)
    assert phrase.start_time == T0
    assert phrase.end_time == T0 + 1.0
    assert not detector.playing


def test_notes_after_the_end_cc_belong_to_the_next_phrase():
    detector = PhraseDetector(silence_seconds=0.5, end_cc=20)
    play(detector, [*ARPEGGIO, (1.3, cc(20, 127)), (1.4, on(72)), (1.6, off(72))])
    first = detector.poll(T0 + 1.7)
    second = detector.poll(T0 + 2.2)
    assert (first.start_time, first.end_time) == (T0, T0 + 1.2)
    assert (second.start_time, second.end_time) == (T0 + 1.4, T0 + 1.6)


@pytest.mark.parametrize(
    "bpm, silence_beats, ends_after", [(120, 2, 1.0), (60, 2, 2.0), (90, 1.5, 1.0)]
)
def test_silence_in_beats_uses_the_grid(bpm, silence_beats, ends_after):
    detector = PhraseDetector(silence_seconds=None, silence_beats=silence_beats)
    grid = BeatGrid(bpm, T0)
    play(detector, ARPEGGIO)
    assert detector.poll(T0 + 1.2 + ends_after - 0.01, grid) is None
    assert detector.poll(T0 + 1.2 + ends_after, grid) is not None


def test_silence_in_beats_without_a_grid_falls_back_to_seconds():
    detector = PhraseDetector(silence_seconds=0.3, silence_beats=8)
    play(detector, ARPEGGIO)
    assert detector.poll(T0 + 1.5) is not None


@pytest.mark.parametrize("listen, span", [(0, (0.0, 1.2)), (3, (0.2, 0.3)), (None, (0.0, 1.2))])
def test_input_channel_filter(listen, span):
    detector = PhraseDetector(silence_seconds=0.5, channel=listen)
    play(detector, [(0.2, on(50, channel=3)), (0.3, off(50, channel=3)), *ARPEGGIO])
    phrase = detector.poll(T0 + 3.0)
    assert (phrase.start_time, phrase.end_time) == pytest.approx((T0 + span[0], T0 + span[1]))


def test_the_pedal_of_a_filtered_channel_does_not_hold_the_phrase():
    detector = PhraseDetector(silence_seconds=0.5, channel=0)
    play(detector, [(0.1, cc(64, 127, channel=5)), *ARPEGGIO])
    assert detector.poll(T0 + 3.0) is not None


def test_a_note_on_with_velocity_zero_is_a_note_off():
    detector = PhraseDetector(silence_seconds=0.5)
    play(detector, [(0.0, on(60)), (0.3, on(60, 0))])
    assert detector.poll(T0 + 0.8).end_time == T0 + 0.3


def test_a_key_struck_again_ends_the_first_note():
    detector = PhraseDetector(silence_seconds=0.5)
    play(detector, [(0.0, on(60, 50)), (0.3, on(60, 90)), (0.6, off(60))])
    assert detector.poll(T0 + 0.9) is None  # the second strike is held
    phrase = detector.poll(T0 + 2.0)
    assert (phrase.start_time, phrase.end_time) == (T0, T0 + 0.6)


def test_all_notes_off_releases_held_keys():
    detector = PhraseDetector(silence_seconds=0.5)
    play(detector, [(0.0, on(60)), (0.1, on(64)), (0.4, cc(123, 0))])
    assert not detector.playing
    assert detector.poll(T0 + 0.9) is not None


def test_playing_says_whether_a_key_is_down():
    detector = PhraseDetector(silence_seconds=0.5)
    assert not detector.playing
    play(detector, [(0.0, on(60))])
    assert detector.playing
    assert detector.phrase_started_at == T0
    play(detector, [(0.4, off(60))])
    assert not detector.playing
    assert detector.phrase_started_at == T0  # between notes, the phrase goes on


@pytest.mark.parametrize("message", [[0xF8], [0xFA], [0xE0, 0, 64], [0xC0, 5], []])
def test_other_messages_are_ignored(message):
    detector = PhraseDetector(silence_seconds=0.5)
    play(detector, [(0.0, on(60)), (0.2, message), (0.4, off(60))])
    phrase = detector.poll(T0 + 1.0)
    assert (phrase.start_time, phrase.end_time) == (T0, T0 + 0.4)


def test_a_long_phrase_keeps_its_last_max_notes():
    detector = PhraseDetector(silence_seconds=0.5, max_notes=100)
    for i in range(300):
        play(detector, [(i * 0.01, on(40 + i % 40)), (i * 0.01 + 0.005, off(40 + i % 40))])
    phrase = detector.poll(T0 + 10.0)
    assert phrase.start_time == pytest.approx(T0 + 2.0)  # notes 200..299


def test_a_long_phrase_is_cut_to_max_seconds():
    detector = PhraseDetector(silence_seconds=0.5, max_seconds=10.0)
    for i in range(100):
        play(detector, [(i * 0.5, on(60)), (i * 0.5 + 0.25, off(60))])
    phrase = detector.poll(T0 + 60.0)
    assert phrase.duration <= 10.5
    assert phrase.end_time == T0 + 49.75


def test_a_pedal_held_through_a_cut_phrase_still_holds_it():
    detector = PhraseDetector(silence_seconds=0.5, max_notes=10)
    play(detector, [(0.0, cc(64, 127))])
    for i in range(30):
        play(detector, [(i * 0.1, on(60)), (i * 0.1 + 0.05, off(60))])
    play(detector, [(4.0, cc(64, 0))])
    assert detector.poll(T0 + 4.4) is None
    phrase = detector.poll(T0 + 5.0)
    assert phrase.end_time == T0 + 4.0
    assert phrase.start_time == pytest.approx(T0 + 2.0)  # the last 10 notes


def test_reset_forgets_the_phrase():
    detector = PhraseDetector(silence_seconds=0.5)
    play(detector, [*ARPEGGIO[:3]])
    detector.reset()
    assert detector.poll(T0 + 10.0) is None
    assert not detector.playing


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        (dict(silence_seconds=None), "needs an end"),
        (dict(silence_seconds=-1.0), "silence_seconds"),
        (dict(end_cc=64), "end_cc"),
        (dict(channel=16), "channel"),
    ],
)
def test_bad_arguments_are_refused(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        PhraseDetector(**kwargs)


def midi_file_as_played(path: str) -> list[tuple[float, list[int]]]:
    """The messages of a MIDI file at the times a player would send them."""
    played, now = [], 0.0
    for message in mido.MidiFile(path):
        now += message.time
        if not message.is_meta:
            played.append((now, message.bytes()))
    return played


@pytest.mark.parametrize("name", ["piano", "folk"])
def test_a_played_midi_file_is_one_phrase_from_its_first_note_to_its_sound_end(name):
    path = f"{PRIMERS}/{name}.mid"
    content = read_midi(path)
    detector = PhraseDetector(silence_seconds=2.0)
    play(detector, midi_file_as_played(path))
    phrase = detector.poll(T0 + 60.0)
    first = content.notes["start"].min()
    assert phrase.start_time == pytest.approx(T0 + first)
    released = content.pedal["time"][content.pedal["value"] < 64]
    last = max(content.notes["end"].max(), released.max() if len(released) else 0.0)
    assert phrase.end_time == pytest.approx(T0 + last, abs=1e-6)
