"""The musical check of a backing bundle: does it listen to the player?

On the held-out pieces of a parts corpus (e.g. the test chorales: soprano = the player's part),
the bundle plays the backing parts step by step as it would live (`accompany`), and on every
beat the pitch classes its parts sound are compared with those of the real lower voices:

- agreement: the share of the generated pitch classes that the real lower voices sound on that
  beat (1 = every note the backing plays is in Bach's harmony there);
- recall: the share of the real lower voices' pitch classes that the backing sounds;
- consonance: the share of the backing's pitch classes on a beat that are consonant with the
  player's note there (unison, third, fifth, sixth, octave; a fourth counts as dissonant, as
  over a bass), on beats where the player sounds one note. Bach's own lower voices are the
  reference;
- moves: each part's note-ons per beat (Bach's voices as reference): a backing that sounds
  right by holding one chord still would show here.

Rows: the bundle as it plays live (listening: each step's backing knows the player's note of it);
the same bundle hearing the player a step late (what planning each step ahead gives, the design
before December); the player withheld (what it gets right without listening at all); any
bundles to compare; and references that say what the figures mean.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cadenza.corpus.prepare import corpus_representation, load_split
from cadenza.errors import ConfigError
from cadenza.eval.request import EvalRequest, corpus_of
from cadenza.parts import PartsCodec
from cadenza.pianoroll import make_grid_notes
from cadenza.plugins import load_generator
from cadenza.plugins.backing import HARMONY_RANGE, BackingTransformer, accompany


@dataclass
class BeatAgreement:
    agreement: float  # generated pitch classes found in the real lower voices, per beat
    recall: float  # real pitch classes the generated parts sound, per beat
    beats: int  # beats where both sound something
    notes: int  # generated notes
    # The same half a beat later: by then the backing has heard the player's note of the beat
    # (on the beat itself it plays before it hears it, by design).
    offbeat_agreement: float = 0.0
    offbeat_recall: float = 0.0
    real_notes: int = 0  # the real lower voices' notes, to compare `notes` with
    consonance: float | None = None  # generated pitch classes consonant with the player's
    moves: list[float] | None = None  # each part's note-ons per beat


def pitch_classes_on_beats(parts: list[np.ndarray], beats: np.ndarray) -> list[set[int]]:
    """The pitch classes sounding at each beat (a step index) across `parts`."""
    sounding: list[set[int]] = [set() for _ in beats]
    for notes in parts:
        for note in notes:
            hit = np.flatnonzero((beats >= note["start"]) & (beats < note["end"]))
            for i in hit:
                sounding[i].add(int(note["pitch"]) % 12)
    return sounding


def beat_agreement(generated: list[np.ndarray], real: list[np.ndarray], beats: np.ndarray):
    """(sum of agreement, sum of recall, beats counted) over the beats where both sound."""
    ours, theirs = pitch_classes_on_beats(generated, beats), pitch_classes_on_beats(real, beats)
    agree = recall = 0.0
    counted = 0
    for g, r in zip(ours, theirs, strict=True):
        if g and r:
            agree += len(g & r) / len(g)
            recall += len(g & r) / len(r)
            counted += 1
    return agree, recall, counted


# Pitch-class intervals above or below a melody note that are consonant with it.
CONSONANT = frozenset({0, 3, 4, 7, 8, 9})


def consonance(generated: list[np.ndarray], player: np.ndarray, beats: np.ndarray):
    """(consonant pitch classes, pitch classes) of `generated` on the beats where the player
    sounds exactly one note."""
    theirs = pitch_classes_on_beats([player], beats)
    consonant = counted = 0
    for melody, ours in zip(theirs, pitch_classes_on_beats(generated, beats), strict=True):
        if len(melody) == 1 and ours:
            (note,) = melody
            consonant += sum((note - pc) % 12 in CONSONANT for pc in ours)
            counted += len(ours)
    return consonant, counted


REFERENCES = ("reference: 3 random pitch classes a beat", "reference: the player's notes",
              "reference: the real lower voices")
LISTENING, LATE, WITHHELD = ("with the player", "with the player heard a step late",
                             "player withheld")


def random_notes(steps: int, per_beat: int, rng: np.random.Generator) -> np.ndarray:
    """Three random pitch classes held on every beat, as grid notes."""
    items = [(start, start + per_beat, 60 + int(pc))
             for start in range(0, steps, per_beat) for pc in rng.choice(12, 3, replace=False)]
    return make_grid_notes(items, 80)


class _Tally:
    """Running sums of one row's figures over the pieces."""

    def __init__(self) -> None:
        self.sums = np.zeros(10)  # agree, recall, beats, notes, off-agree, off-recall, off-beats,
        #                           real notes, consonant, consonance counted
        self.onsets: np.ndarray | None = None  # per part
        self.beats = 0

    def add(self, notes: list[np.ndarray], real: list[np.ndarray], player: np.ndarray,
            beats: np.ndarray, offbeats: np.ndarray, *, generated: bool = True,
            consonant: bool = True) -> None:
        for first, when in ((0, beats), (4, offbeats)):
            self.sums[first : first + 3] += beat_agreement(notes, real, when)
        self.sums[3] += sum(len(p) for p in notes) if generated else 0
        self.sums[7] += sum(len(p) for p in real)
        if consonant:
            self.sums[8:10] += consonance(notes, player, beats)
        if generated:
            onsets = np.array([len(p) for p in notes], dtype=np.float64)
            self.onsets = onsets if self.onsets is None else self.onsets + onsets
            self.beats += len(beats)

    def result(self) -> BeatAgreement:
        a, r, n, notes, oa, orc, on, real_notes, c, cn = self.sums
        moves = None if self.onsets is None else (self.onsets / max(self.beats, 1)).tolist()
        return BeatAgreement(a / max(n, 1), r / max(n, 1), int(n), int(notes), oa / max(on, 1),
                             orc / max(on, 1), int(real_notes), c / cn if cn else None, moves)


def check_backing(
    generator: BackingTransformer,
    corpus: str | Path,
    *,
    split: str = "test",
    seed: int = 0,
    pieces: int | None = None,
    progress: bool = True,
    compare: dict[str, BackingTransformer] | None = None,
) -> dict[str, BeatAgreement]:
    """Agreement per beat with the real lower voices: listening, a step late, without the
    player, each bundle of `compare` (name -> generator, as many parts), and the references."""
    tokens, offsets = load_split(Path(corpus), split)
    codec = generator.parts
    representation = corpus_representation(corpus)
    if representation.get("kind") != "parts" or PartsCodec.from_dict(representation) != codec:
        raise ConfigError("--data", f"{corpus} is not a parts corpus of this bundle's layout")
    sequences = [np.asarray(tokens[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    sequences = sequences[:pieces] if pieces else sequences
    players: list[tuple[str, BackingTransformer, bool, bool]] = [
        (LISTENING, generator, False, True)]
    if generator.listens:
        players.append((LATE, generator, True, True))
    players.append((WITHHELD, generator, False, False))
    players += [(name, other, False, True) for name, other in (compare or {}).items()]
    tallies = {name: _Tally() for name in [name for name, *_ in players] + list(REFERENCES)}
    rng = np.random.default_rng(seed)
    for sequence in tqdm(sequences, desc="backing check", unit="piece", disable=not progress):
        positions = sequence[codec.is_step(sequence)].astype(np.int64)
        player, real = codec.decode(sequence)
        if len(player) == 0:
            continue
        per_beat = codec.steps_per_quarter
        beats = np.flatnonzero(positions % per_beat == 0)
        offbeats = np.flatnonzero(positions % per_beat == per_beat // 2)
        for name, backing, late, heard in players:
            backing.seed(seed)
            backing.reset()
            given = player if heard else player[:0]
            generated = accompany(backing, given, positions, lag=int(late))
            tallies[name].add(generated, real, player, beats, offbeats)
        # What the figures mean: three pitch classes drawn at random on every beat, the
        # player's own pitch class (a chorale's soprano note is mostly in its chord), and
        # Bach's lower voices themselves.
        randomly = random_notes(len(positions), per_beat, rng)
        for name, notes in zip(REFERENCES, ([randomly], [player], real), strict=True):
            tallies[name].add(notes, real, player, beats, offbeats,
                              generated=name == REFERENCES[2],
                              consonant=name != REFERENCES[1])  # the melody with itself
    return {name: tally.result() for name, tally in tallies.items()}


def backing_table(results: dict[str, BeatAgreement], names: tuple[str, ...] = ()) -> str:
    """The figures as a Markdown table; `names` head the note-ons-per-beat column's parts."""
    parts = "/".join(names) if names else "per part"
    lines = [
        "| backing | consonant with the player | agreement on the beat | recall on the beat | "
        "agreement half a beat later | recall half a beat later | note-ons per beat "
        f"({parts}) | beats | notes (real) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        consonant = "–" if r.consonance is None else f"{r.consonance:.3f}"
        moves = "–" if r.moves is None else " / ".join(f"{m:.2f}" for m in r.moves)
        notes = "–" if r.moves is None else f"{r.notes} ({r.real_notes})"
        lines.append(f"| {name} | {consonant} | {r.agreement:.3f} | {r.recall:.3f} | "
                     f"{r.offbeat_agreement:.3f} | {r.offbeat_recall:.3f} | {moves} | "
                     f"{r.beats} | {notes} |")
    return "\n".join(lines)


def evaluate_backing(
    bundle_path: str | Path,
    out: Path,
    *,
    data: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    compare: list[str | Path] = (),
    harmony: float | None = None,
    split: str = "test",
) -> dict[str, BeatAgreement]:
    """`cadenza eval` of a backing bundle: the check on its corpus's `split`, written to
    `out/report.md` and `out/results.json`; `compare`: other backing bundles (as many parts)
    played under the same players, a row each; `harmony`: the bundle's harmony knob (None: its
    default)."""
    generator = load_generator(bundle_path, plugin="backing", seed=seed)
    if harmony is not None:
        low, high = HARMONY_RANGE
        if not low <= harmony <= high:
            raise ConfigError("--harmony", f"must be {low:g}..{high:g}, got {harmony:g}")
        generator.harmony = harmony
    corpus = corpus_of(generator.bundle, data)
    others = {}
    for path in compare:
        other = load_generator(path, plugin="backing", seed=seed)
        if other.parts.parts != generator.parts.parts:
            raise ConfigError("--compare", f"{path} plays {other.parts.parts} parts, "
                              f"{generator.bundle.path} {generator.parts.parts}")
        others[f"{other.bundle.safe_name} ({other.bundle.path})"] = other
    results = check_backing(generator, corpus, split=split, seed=seed, progress=progress,
                            compare=others)
    out.mkdir(parents=True, exist_ok=True)
    training = generator.bundle.training
    lines = [
        f"# {generator.bundle.name}: backing under held-out players",
        "",
        f"Corpus `{corpus}` ({split} split); held-out NLL {training.get('test_nll', '–')} "
        f"nats/token (bigram baseline {training.get('test_nll_bigram_baseline', '–')}); "
        f"temperature {generator.knobs.temperature:g}, harmony {generator.harmony:g}, density "
        f"{generator.density:g}, seed {seed}.",
        "",
        backing_table(results, generator.parts.names),
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    (out / "results.json").write_text(
        json.dumps({k: vars(v) for k, v in results.items()}, indent=1) + "\n"
    )
    if progress:
        print(backing_table(results, generator.parts.names))
    return results


def evaluate(bundle: str | Path, out: Path, request: EvalRequest) -> None:
    """The registry's evaluator of backing bundles: the check, with `request.compare`'s
    bundles as rows beside it."""
    evaluate_backing(bundle, out, data=request.data, seed=request.seed,
                     progress=request.progress, compare=request.compare,
                     harmony=request.harmony, split=request.settings.split)
