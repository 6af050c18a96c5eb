"""The backing plugin: a real tiny bundle over chorale parts, stepped as the engine steps it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cadenza.bundle import load_bundle
from cadenza.corpus.parts import choose_parts, read_parts
from cadenza.corpus.sources import resolve_source
from cadenza.errors import BundleError
from cadenza.plugins import load_generator, plugin_classes
from cadenza.plugins.backing import BackingTransformer, accompany
from tests.helpers import edit_manifest


@pytest.fixture
def backing(tiny_backing_bundle: Path) -> BackingTransformer:
    generator = load_generator(tiny_backing_bundle, seed=3)
    assert isinstance(generator, BackingTransformer)
    return generator


@pytest.fixture(scope="module")
def soprano() -> tuple[np.ndarray, np.ndarray]:
    read = read_parts(resolve_source("music21:bach")[20])
    parts, bar_starts, bar_steps = read.parts, read.bar_starts, read.bar_steps
    parts = choose_parts(parts, 3)
    steps = int(max(p["end"].max() for p in parts)) + 1
    from cadenza.parts import PartsCodec

    return parts[0], PartsCodec().positions_of(steps, bar_starts, bar_steps)


def test_registered_under_the_entry_point_group():
    assert plugin_classes()["backing"] is BackingTransformer


def test_an_events_bundle_is_refused_in_one_line(tiny_transformer_bundle: Path, tmp_path):
    with pytest.raises(BundleError, match="field 'plugin' is 'transformer'"):
        BackingTransformer(load_bundle(tiny_transformer_bundle))
    bundle = shutil.copytree(tiny_transformer_bundle, tmp_path / "relabelled")
    edit_manifest(bundle, lambda m: m.update(plugin="backing"))
    with pytest.raises(BundleError, match="representation.kind' is 'performance', not 'parts'"):
        BackingTransformer(load_bundle(bundle))


def test_every_step_keeps_its_frame_valid(backing: BackingTransformer):
    backing.density = 2.0  # busy enough to end notes as well as start them
    sounding: list[set[int]] = [set() for _ in range(3)]
    offs = ons = 0
    for t in range(256):
        changes = backing.play_step(t % 16, None, offs=[60] if t % 4 == 3 else [],
                                    ons=[60] if t % 4 == 0 else [])
        tokens = [backing._token_of(c) for c in changes]
        assert tokens == sorted(set(tokens))  # ascending: offs, then ons, part by part
        for part, pitch, on in changes:
            if on:
                assert pitch not in sounding[part]
                sounding[part].add(pitch)
                ons += 1
            else:
                assert pitch in sounding[part]
                sounding[part].discard(pitch)
                offs += 1
        assert sounding == backing.sounding
        assert all(len(held) <= n for held, n in zip(sounding, backing.voices, strict=True))
    assert ons > 0 and offs > 0


def test_the_player_is_heard_as_played(backing: BackingTransformer):
    backing.open_step(0)
    backing.hear(ons=[72, 76])
    assert backing.player_sounding == {72, 76}
    backing.play()
    backing.open_step(1)
    backing.hear(offs=[72], ons=[76])  # a repeated key: its note ends, then starts again
    assert backing.player_sounding == {76}
    tail = [backing.parts.describe(t) for t in list(backing.history)[-4:]]
    assert [kind for kind, _, _ in tail] == ["step", "player_off", "player_off", "player_on"]


def test_the_player_of_a_step_is_heard_before_its_backing(backing: BackingTransformer):
    assert backing.listens
    backing.density = 3.0
    backing.play_step(0, None, ons=[72])
    frame = [backing.parts.describe(t)[0] for t in backing.history]
    assert frame[:2] == ["step", "player_on"]
    assert set(frame[2:]) <= {"on", "off"} and frame[2:]  # the backing comes after


def test_hearing_after_playing_a_step_is_refused(backing: BackingTransformer):
    backing.open_step(0)
    backing.play()
    with pytest.raises(RuntimeError, match="before it plays"):
        backing.hear(ons=[72])


def test_silence_ends_every_backing_note_and_the_model_hears_it(backing: BackingTransformer):
    backing.density = 3.0
    for t in range(8):
        backing.play_step(t)
    held = {(part, pitch) for part, s in enumerate(backing.sounding) for pitch in s}
    assert held
    assert set(backing.silence()) == held
    assert not any(backing.sounding)
    backing.play_step(8)
    heard_offs = [t for t in backing.history if backing.parts.describe(t)[0] == "off"]
    assert {backing.parts.describe(t)[1:] for t in heard_offs[-len(held):]} == held


def test_density_changes_how_many_notes_start(backing: BackingTransformer):
    counts = {}
    for density in (-3.0, 3.0):
        backing.seed(11)
        backing.reset()
        backing.density = density
        counts[density] = sum(
            on for t in range(96) for _, _, on in backing.play_step(t % 16)
        )
    assert counts[3.0] > counts[-3.0]


def test_the_same_seed_gives_the_same_backing(tiny_backing_bundle: Path, soprano):
    player, positions = soprano
    runs = [accompany(load_generator(tiny_backing_bundle, seed=5), player, positions)
            for _ in range(2)]
    for a, b in zip(*runs, strict=True):
        assert np.array_equal(a, b)


def test_accompany_gives_three_parts_of_real_notes_under_a_soprano(backing, soprano):
    player, positions = soprano
    parts = accompany(backing, player, positions)
    assert len(parts) == 3
    assert sum(len(p) for p in parts) > 0
    for notes in parts:
        assert np.all(notes["end"] > notes["start"])
        assert np.all(notes["end"] <= len(positions))
        assert np.all((notes["pitch"] >= 0) & (notes["pitch"] < 128))
    assert not any(backing.sounding)  # accompany ends by silencing


def test_plays_far_past_its_context_without_a_pause(backing: BackingTransformer):
    steps = 10 * backing.cache.size
    for t in range(steps):
        backing.play_step(t % 16)
    assert backing.cache.next_position > steps  # the window slid many times
    assert len(backing.history) == backing.cache.size - 1


@pytest.mark.parametrize("beats", [0.5, 1.0])
def test_no_backing_note_outlasts_the_hold_limit(backing: BackingTransformer, soprano, beats):
    backing.max_hold_beats = beats
    melody, positions = soprano
    limit = beats * backing.parts.steps_per_quarter
    for part in accompany(backing, melody, positions):
        # A note ends on the step after it passes the limit; the piece's end may cut one.
        inside = part[part["end"] < len(positions)]
        assert len(inside) and (inside["end"] - inside["start"]).max() <= limit + 1


def test_every_note_stays_in_its_parts_register(tiny_backing_bundle: Path, soprano, tmp_path):
    narrow = [[60, 64], [55, 57], [40, 47]]
    bundle = shutil.copytree(tiny_backing_bundle, tmp_path / "narrow")
    edit_manifest(bundle, lambda m: m["backing"].update(ranges=narrow))
    backing = load_generator(bundle, seed=3)
    backing.density = 2.0  # busy: every part enters and moves
    player, positions = soprano
    parts = accompany(backing, player, positions)
    for notes, (low, high) in zip(parts, narrow, strict=True):
        assert len(notes) and notes["pitch"].min() >= low and notes["pitch"].max() <= high


@pytest.mark.parametrize("ranges", [[[60, 64], [55, 57]], [[60, 64], [55, 57], [47, 40]],
                                    [[60, 64], [55, 57], [40, 128]], "low"])
def test_a_bad_register_is_one_line(tiny_backing_bundle: Path, tmp_path, ranges):
    bundle = shutil.copytree(tiny_backing_bundle, tmp_path / "bad")
    edit_manifest(bundle, lambda m: m["backing"].update(ranges=ranges))
    with pytest.raises(BundleError, match=r"field 'backing\.ranges"):
        load_generator(bundle)


def test_a_bundle_made_before_the_player_came_first_plays_backing_first(
    tiny_backing_bundle: Path, tmp_path
):
    bundle = shutil.copytree(tiny_backing_bundle, tmp_path / "old")
    edit_manifest(bundle, lambda m: m["representation"].pop("order"))
    backing = load_generator(bundle, seed=3)
    assert not backing.listens
    backing.density = 3.0
    backing.play_step(0, None, ons=[72])
    kinds = [backing.parts.describe(t)[0] for t in backing.history]
    assert kinds[0] == "step" and kinds[-1] == "player_on"  # the player after the backing
    assert set(kinds[1:-1]) <= {"on", "off"}


def test_each_part_has_a_name_and_a_program(backing: BackingTransformer, tiny_backing_bundle,
                                             tmp_path):
    assert backing.parts.names == ("alto", "tenor", "bass")
    assert backing.programs == [48, 48, 32]
    bundle = shutil.copytree(tiny_backing_bundle, tmp_path / "programs")
    edit_manifest(bundle, lambda m: m["backing"].update(programs=[52, 52, 33]))
    assert load_generator(bundle).programs == [52, 52, 33]


@pytest.mark.parametrize("section, value, message", [
    ("backing", {"programs": [52, 52]}, r"'backing\.programs' should list one per part \(3\)"),
    ("backing", {"programs": [52, 52, 128]}, r"'backing\.programs\[2\]' should be an int in 0"),
    ("representation", {"order": "sideways"}, r"'representation\.order' is 'sideways', not"),
    ("representation", {"names": ["alto"]}, r"'representation\.names' should name the 3 parts"),
])
def test_a_bad_part_setting_is_one_line(tiny_backing_bundle: Path, tmp_path, section, value,
                                        message):
    bundle = shutil.copytree(tiny_backing_bundle, tmp_path / "bad")
    edit_manifest(bundle, lambda m: m[section].update(value))
    with pytest.raises(BundleError, match=message):
        load_generator(bundle)


def test_the_harmony_knob_leans_the_backing_on_the_players_note(tiny_backing_bundle, soprano):
    from cadenza.eval.backing import consonance

    player, positions = soprano
    beats = np.flatnonzero(positions % 4 == 0)
    shares = {}
    for harmony in (0.0, 4.0):
        backing = load_generator(tiny_backing_bundle, seed=7)
        assert backing.intervals is not None and len(backing.intervals) == 12
        backing.harmony = harmony
        consonant, counted = consonance(accompany(backing, player, positions), player, beats)
        shares[harmony] = consonant / counted
    assert shares[4.0] > shares[0.0] + 0.1, shares


def test_the_interval_table_is_what_the_corpus_sounds_together(tiny_backing_bundle):
    table = load_generator(tiny_backing_bundle).intervals
    consonant, dissonant = table[[0, 3, 4, 7, 8, 9]], table[[1, 2, 6, 10, 11]]
    assert consonant.min() > dissonant.max()  # a chorale's soprano over its lower voices


@pytest.mark.parametrize("table", [[0.5] * 11, [0.5] * 11 + ["x"], [0.5] * 11 + [99.0]])
def test_a_bad_interval_table_is_one_line(tiny_backing_bundle: Path, tmp_path, table):
    bundle = shutil.copytree(tiny_backing_bundle, tmp_path / "bad")
    edit_manifest(bundle, lambda m: m["backing"].update(harmony=table))
    with pytest.raises(BundleError, match=r"field 'backing\.harmony"):
        load_generator(bundle)


def test_a_chorale_voice_sounds_one_note_at_a_time(backing: BackingTransformer, soprano):
    assert backing.voices == [1, 1, 1]  # as the training chorales' voices
    player, positions = soprano
    backing.density = 3.0  # busy: it would stack notes if it could
    for notes in accompany(backing, player, positions):
        ordered = np.sort(notes, order="start")
        assert np.all(ordered["end"][:-1] <= ordered["start"][1:])


@pytest.mark.parametrize("voices", [[1, 1], [1, 1, 0], [1, 1, True]])
def test_a_bad_voice_count_is_one_line(tiny_backing_bundle: Path, tmp_path, voices):
    bundle = shutil.copytree(tiny_backing_bundle, tmp_path / "bad")
    edit_manifest(bundle, lambda m: m["backing"].update(voices=voices))
    with pytest.raises(BundleError, match=r"field 'backing\.voices"):
        load_generator(bundle)


def test_anticipating_changes_when_the_backing_comes_never_what_it_is(tiny_backing_bundle):
    live, twin = (load_generator(tiny_backing_bundle, seed=4) for _ in range(2))
    for generator in (live, twin):
        for t in range(20):
            generator.play_step(t % 16, None, ons=[67 + t % 3] if t % 4 == 0 else [])
        generator.open_step(4)
    before = list(live.history)
    ahead = live.anticipate(3)
    assert list(live.history) == before and len(ahead.candidates) == 3
    while ahead.step():
        assert list(live.history) == before  # each guess computed, then rewound
    offs, ons = ahead.candidates[1]
    foreseen = ahead.take(offs, ons)
    twin.hear(offs, ons)
    assert foreseen == twin.play()  # as if computed when the note came, RNG included
    assert list(live.history) == list(twin.history) and live.sounding == twin.sounding
    assert live.play_step(5) == twin.play_step(5)


def test_a_note_not_foreseen_leaves_the_step_as_it_was(backing: BackingTransformer):
    backing.open_step(0)
    before = list(backing.history)
    ahead = backing.anticipate(2)
    while ahead.step():
        pass
    unlikely = next(q for q in range(128) if ([], [q]) not in ahead.candidates)
    assert ahead.take([], [unlikely]) is None
    assert list(backing.history) == before
    backing.hear(ons=[unlikely])  # the step goes on as usual
    backing.play()


def test_a_note_not_foreseen_is_heard_from_the_note_offs_fed_ahead(tiny_backing_bundle):
    live, twin = (load_generator(tiny_backing_bundle, seed=6) for _ in range(2))
    for generator in (live, twin):
        generator.play_step(0, None, ons=[67])
        generator.open_step(1)
    ahead = live.anticipate(2)
    assert ahead.off_tokens == [live.parts.player_off(67)]  # the held note, fed ahead
    while ahead.step():
        pass
    unlikely = next(q for q in range(128) if ([67], [q]) not in ahead.candidates)
    assert ahead.take([67], [unlikely]) is None
    ahead.hear([67], [unlikely])
    twin.hear([67], [unlikely])
    assert list(live.history) == list(twin.history)
    assert live.play() == twin.play()
