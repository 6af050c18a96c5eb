"""Streaming events: played messages encode as the offline codec encodes the same notes,
and generated events decode to timed messages with every note ended."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.corpus.sources import load_notes, resolve_source
from cadenza.events import PERFORMANCE as P
from cadenza.midi import PEDAL_DTYPE, apply_sustain
from cadenza.notes import make_notes
from cadenza.realtime.stream import LiveDecoder, LiveEncoder


def played(notes, pedal=()):
    """The messages a player would send for these notes, in time order."""
    messages = [(n["start"], 1, [0x90, int(n["pitch"]), int(n["velocity"])]) for n in notes]
    messages += [(n["end"], 0, [0x80, int(n["pitch"]), 0]) for n in notes]
    messages += [(t, -1, [0xB0, 64, v]) for t, v in pedal]
    return [(t, m) for t, _, m in sorted(messages, key=lambda x: (x[0], x[1]))]


def live_encode(messages):
    encoder = LiveEncoder(P)
    return [e for t, m in messages for e in encoder.feed(t, m)]


def without_leading_shift(tokens):
    tokens = list(tokens)
    while tokens and P.time_shift < tokens[0] <= P.velocity:
        tokens.pop(0)
    return tokens


@pytest.mark.parametrize("index", [0, 50, 100])
def test_live_encoding_equals_offline_encoding_of_a_chorale(index):
    notes = load_notes(resolve_source("music21:bach")[index])
    notes = notes[notes["end"] < 12.0]
    notes["start"], notes["end"] = np.round(notes["start"], 2), np.round(notes["end"], 2)
    assert live_encode(played(notes)) == without_leading_shift(P.encode(notes))


def test_live_encoding_applies_the_pedal_as_note_seq():
    notes = make_notes([0.0, 0.25, 0.75], [0.5, 0.5, 0.8], [60, 64, 60], [64, 64, 64])
    pedal = [(0.1, 127), (1.0, 0)]
    pedal_array = np.array([(t, 0, v) for t, v in pedal], dtype=PEDAL_DTYPE)
    offline = P.encode(apply_sustain(notes, pedal_array))
    assert live_encode(played(notes, pedal)) == without_leading_shift(offline)


def test_decoder_times_notes_and_ends_every_one():
    decoder = LiveDecoder(P, channel=2)
    decoder.start(10.0)
    events = [P.velocity + 25, 60, 64, P.time_shift + 50, P.note_off + 60, P.note_off + 61]
    out = [m for e in events for m in decoder.feed(e)]
    assert [(m.time, m.message) for m in out] == [
        (10.0, [0x92, 60, 97]), (10.0, [0x92, 64, 97]), (10.5, [0x82, 60, 0])]
    assert [(m.time, m.message) for m in decoder.close()] == [(10.5, [0x82, 64, 0])]


def test_decoder_ends_a_note_the_model_forgets_after_max_seconds():
    decoder = LiveDecoder(P, max_note_seconds=2.0)
    decoder.start(0.0)
    out = [m for e in [60] + [P.time_shift + 100] * 3 for m in decoder.feed(e)]
    assert [(m.time, m.message[0] & 0xF0) for m in out] == [(0.0, 0x90), (2.0, 0x80)]
    assert decoder.close() == []
