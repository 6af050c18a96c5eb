"""Parts on a grid as tokens: layout, frames, and exact round trips over real chorales."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.corpus.parts import choose_parts, read_parts
from cadenza.corpus.sources import resolve_source
from cadenza.parts import OFF, ON, PLAYER_ON, STEP, PartsCodec, harmony_intervals, part_voices
from cadenza.pianoroll import make_grid_notes

CODEC = PartsCodec()


def grid_notes(*notes: tuple[int, int, int]) -> np.ndarray:
    return make_grid_notes(notes)


def test_the_token_ranges_do_not_overlap_and_fill_the_vocabulary():
    kinds = [CODEC.describe(t)[0] for t in range(CODEC.vocab_size)]
    assert kinds.count(STEP) == 32
    assert kinds.count(OFF) == kinds.count(ON) == 3 * 128
    assert kinds.count(PLAYER_ON) == 128
    assert CODEC.vocab_size == 32 + 6 * 128 + 256
    assert CODEC.describe(CODEC.on(2, 60)) == (ON, 2, 60)
    with pytest.raises(ValueError):
        CODEC.describe(CODEC.vocab_size)


def test_a_frame_is_the_step_then_the_player_then_the_backing_in_ascending_order():
    player = grid_notes((0, 4, 72))
    bass = grid_notes((0, 2, 48), (2, 4, 50))
    tokens = CODEC.encode(player, [grid_notes(), grid_notes(), bass], np.array([0]), np.array([16]))
    frames = np.split(tokens, np.flatnonzero(CODEC.is_step(tokens))[1:])
    assert len(frames) == 5  # steps 0..4: the last notes end on step 4
    assert frames[0].tolist() == [CODEC.step(0), CODEC.player_on(72), CODEC.on(2, 48)]
    assert frames[2].tolist() == [CODEC.step(2), CODEC.off(2, 48), CODEC.on(2, 50)]
    assert frames[4].tolist() == [CODEC.step(4), CODEC.player_off(72), CODEC.off(2, 50)]
    for frame in frames:
        assert np.all(np.diff(frame) > 0)


def test_the_order_before_december_puts_the_backing_first():
    old = PartsCodec(order="backing-first")
    assert PartsCodec.from_dict({"kind": "parts", "parts": 3}) == old  # no order: the old one
    player, alto = grid_notes((0, 4, 72)), grid_notes((0, 4, 64))
    tokens = old.encode(player, [alto, grid_notes(), grid_notes()], np.array([0]), np.array([16]))
    assert tokens[:3].tolist() == [old.step(0), old.on(0, 64), old.player_on(72)]
    assert [old.describe(t)[0] for t in range(old.vocab_size)] == sorted(
        (CODEC.describe(t)[0] for t in range(CODEC.vocab_size)), key=[
            STEP, OFF, ON, "player_off", PLAYER_ON].index)


def test_a_representation_round_trips_with_its_part_names():
    codec = PartsCodec(parts=2, names=("bass", "chords"))
    assert PartsCodec.from_dict(codec.to_dict()) == codec
    with pytest.raises(ValueError, match="2 parts need 2 names"):
        PartsCodec(parts=2)


def test_positions_count_from_each_bar_line_and_back_from_the_first():
    # A pickup of 4 steps before 3/4 bars of 12 steps.
    positions = CODEC.positions_of(20, np.array([4, 16]), np.array([12, 12]))
    assert positions[:4].tolist() == [8, 9, 10, 11]
    assert positions[4] == 0 and positions[15] == 11 and positions[16] == 0


def test_a_repeated_pitch_in_one_part_ends_the_earlier_note():
    alto = grid_notes((0, 6, 64), (4, 8, 64))
    silent = grid_notes()
    tokens = CODEC.encode(silent, [alto, silent, silent], np.array([0]), np.array([16]))
    _, (decoded, _, _) = CODEC.decode(tokens)
    assert decoded[["start", "end", "pitch"]].tolist() == [(0, 4, 64), (4, 8, 64)]


@pytest.mark.parametrize("index", [0, 5, 17])
def test_real_chorales_round_trip_exactly(index: int):
    piece = resolve_source("music21:bach")[index]
    read = read_parts(piece)
    parts, bar_starts, bar_steps = read.parts, read.bar_starts, read.bar_steps
    parts = choose_parts(parts, CODEC.parts)
    player, backing = CODEC.decode(CODEC.encode(parts[0], parts[1:], bar_starts, bar_steps))
    for original, decoded in zip(parts, [player, *backing], strict=False):
        keys = ["start", "end", "pitch"]
        assert np.array_equal(np.sort(original[keys]), np.sort(decoded[keys]))


def test_a_chorale_reads_as_soprano_over_three_lower_voices():
    read = read_parts(resolve_source("music21:bach")[5])
    parts, bar_steps = choose_parts(read.parts, 3), read.bar_steps
    means = [float(p["pitch"].mean()) for p in parts]
    assert len(parts) == 4 and means == sorted(means, reverse=True)
    assert set(bar_steps.tolist()) <= {12, 16}  # 3/4 or 4/4 on a 16th grid
    assert all(len(p) > 10 for p in parts)


def test_of_many_parts_the_lowest_is_kept_and_the_rest_spread_between():
    parts = [grid_notes((0, 1, pitch)) for pitch in (80, 70, 65, 60, 50)]
    chosen = choose_parts(parts, 3)
    assert [int(p["pitch"][0]) for p in chosen] == [80, 70, 60, 50]


def test_pitch_ranges_are_each_parts_lowest_and_highest_note():
    player = grid_notes((0, 4, 72))
    backing = [grid_notes((0, 2, 64), (2, 4, 67)), grid_notes((0, 4, 55)), grid_notes()]
    tokens = CODEC.encode(player, backing, np.array([0]), np.array([16]))
    assert CODEC.pitch_ranges(tokens) == [(64, 67), (55, 55), (0, 127)]  # a silent part: all


def test_the_voices_of_parts_are_counted_as_they_sound():
    codec = PartsCodec(parts=2, names=("bass", "chords"))
    bass = grid_notes((0, 4, 40), (4, 8, 43))
    chords = grid_notes((0, 8, 60), (0, 8, 64), (0, 4, 67), (4, 8, 69))
    tokens = codec.encode(grid_notes((0, 8, 72)), [bass, chords], np.array([0]), np.array([16]))
    assert part_voices(codec, [tokens]) == [1, 3]


def test_the_harmony_table_counts_intervals_under_the_players_note_on_beats():
    melody = grid_notes((0, 8, 72))  # C
    lower = grid_notes((0, 4, 64), (4, 8, 61))  # E (a major third below), then C# (a seventh)
    tokens = CODEC.encode(melody, [lower, grid_notes(), grid_notes()], np.array([0]),
                          np.array([16]))
    table = np.array(harmony_intervals(CODEC, [tokens]))
    # One beat each: 72 - 64 = 8, 72 - 61 = 11 (mod 12); every other interval unseen.
    assert table[8] == table[11] == table.max()
    assert np.all(np.delete(table, [8, 11]) < table[8])
