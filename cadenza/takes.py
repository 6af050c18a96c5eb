"""What one `cadenza generate` run makes: takes (one per variation), each the primer's part
and the generated parts on the primer's bar grid, ready to be written as a type-1 file.

Every plugin's output lands on the grid a DAW project at the primer's tempo has: its first
tempo and time signature are the file's (120 bpm 4/4, or --bpm, without a primer), a
continuation starts on the first bar line at or after the primer's end, and a length in bars
is whole bars of that grid. Variation k is sampled with seed `seed + k - 1` (any seed when
none is given), so `--seed 7 --variations 4` is four different takes, the same four every run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from cadenza.errors import CadenzaError, MidiFileError
from cadenza.events import TooManyEvents
from cadenza.generate import Continuation, backing_parts, continue_primer, vae_phrases
from cadenza.midi import load_notes
from cadenza.notes import empty_notes, end_time
from cadenza.pianoroll import read_grid_midi
from cadenza.plugins import BackingGenerator, EventGenerator
from cadenza.plugins.base import Generator
from cadenza.plugins.vae import SegmentVAE
from cadenza.tracks import MELODIC_CHANNELS, BarGrid, Part, bar_grid_of, quantized, trimmed

DEFAULT_SECONDS = 30.0  # a continuation's length when neither seconds nor bars are given
SEEDS = 2**32


@dataclass(frozen=True)
class Request:
    """What to make: `seconds` or `bars` of it (neither: the mode's own length, or
    DEFAULT_SECONDS of a continuation), at `bpm` without a primer, quantised to `quantize`."""

    mode: str = "continue"
    primer: str | None = None
    between: list[str] | None = None
    steps: int = 8
    seconds: float | None = None
    bars: int | None = None
    bpm: float | None = None
    quantize: str | None = None


@dataclass
class Take:
    parts: list[Part]
    grid: BarGrid
    span: float  # seconds: where every track ends (a bar line for a length in bars)
    primer_seconds: float  # where the generated music begins
    events: int  # generated events (performance events of the generated parts)


def variation_seed(seed: int | None, k: int) -> int | None:
    """The seed of variation k (0-based): `seed` itself for the first."""
    return None if seed is None else (seed + k) % SEEDS


def takes(generator: Generator, request: Request, count: int, seed: int | None) -> list[Take]:
    """`count` takes, each from a fresh context with its own seed."""
    out = []
    for k in range(count):
        generator.seed(variation_seed(seed, k))
        generator.reset()
        out.append(take(generator, request))
    return out


def take(generator: Generator, request: Request) -> Take:
    if request.primer and request.bpm:
        raise CadenzaError("--bpm: the primer sets the tempo; give --bpm without --primer")
    if isinstance(generator, SegmentVAE):  # phrases through latent codes, on the bar grid
        made = _vae_take(generator, request)
    elif isinstance(generator, BackingGenerator):  # parts under the primer's melody
        made = _backing_take(generator, request)
    elif not isinstance(generator, EventGenerator):
        raise CadenzaError(f"bundle: {generator.plugin} makes audio: use `cadenza audio`")
    elif request.mode != "continue":
        raise CadenzaError(f"--mode: {request.mode} needs the vae plugin, not {generator.plugin}")
    else:
        made = _event_take(generator, request)
    if request.quantize:
        made.parts = [replace(p, notes=quantized(p.notes, made.grid, request.quantize))
                      if p.generated else p for p in made.parts]
    for part in made.parts:
        part.notes = trimmed(part.notes, made.span)
    return made


def _length(request: Request, grid: BarGrid) -> float | None:
    if request.bars is not None:
        return request.bars * grid.bar_seconds
    return request.seconds


def _primer_grid(request: Request, bpm: float | None = None,
                 default: BarGrid | None = None) -> BarGrid:
    """The primer's bar grid (at `bpm` where the notes were placed at another tempo)."""
    if request.primer:
        return bar_grid_of(Path(request.primer).read_bytes(), request.primer, bpm)
    return default or BarGrid(request.bpm or 120.0)


def _event_take(generator: EventGenerator, request: Request) -> Take:
    """The primer, then the model's continuation from the next bar line on."""
    grid = _primer_grid(request)
    primer = load_notes(request.primer) if request.primer else empty_notes()
    origin = grid.bar_line_after(end_time(primer)) if len(primer) else 0.0
    length = _length(request, grid) or DEFAULT_SECONDS
    try:
        # The answer begins on a bar line of the primer's tempo (a melody-rnn's grid).
        result = continue_primer(generator, primer, length, start=origin,
                                 conditions={"bpm": grid.bpm, "bar_step": 0})
    except TooManyEvents as e:  # only a primer can hold that many notes: name its file
        raise MidiFileError(request.primer or "the primer", str(e)) from None
    answer = result.notes[result.notes["start"] >= origin - 1e-9]
    parts = [Part("primer", primer, generated=False)] if len(primer) else []
    return Take([*parts, Part("answer", answer)], grid, origin + length, origin,
                len(result.events))


def _vae_take(generator: SegmentVAE, request: Request) -> Take:
    """The vae's mode on the grid of its primer (at the tempo that fits its notes, as
    vae_phrases reads it), or of the bundle (4/4 at its default tempo, or --bpm)."""
    bpm, vae_grid = request.bpm or generator.default_bpm, generator.grid
    if request.primer:
        data = Path(request.primer).read_bytes()
        bpm = read_grid_midi(data, request.primer, vae_grid.steps_per_quarter).bpm
    own = BarGrid(bpm, vae_grid.beats_per_bar, vae_grid.beat_unit)
    grid = _primer_grid(request, bpm=bpm, default=own)
    length = _length(request, grid)
    result = vae_phrases(generator, request.mode, request.primer, request.between,
                         request.steps, length or DEFAULT_SECONDS, bpm=request.bpm)
    origin = result.primer_seconds
    primer = result.notes[result.notes["start"] < origin - 1e-9]
    answer = result.notes[result.notes["start"] >= origin - 1e-9]
    if length is None and request.mode in ("continue", "sample"):
        length = DEFAULT_SECONDS
    span = origin + length if length else grid.bar_line_after(end_time(result.notes))
    parts = [Part("primer", primer, generated=False)] if len(primer) else []
    return Take([*parts, Part("answer", answer)], grid, span, origin, len(result.events))


def _backing_take(generator: BackingGenerator, request: Request) -> Take:
    """The player's part (the primer's melody) and the backing parts, named as the bundle
    names them, each on its program; a length keeps the first bars (or seconds) of it."""
    result: Continuation = backing_parts(generator, request.primer)
    grid = _primer_grid(request, bpm=result.bpm)
    length = _length(request, grid)
    player = result.notes[result.notes["channel"] == 0]
    span = length if length else grid.bar_line_after(end_time(player))  # the melody's bars
    names = ["player", *generator.parts.names]
    programs = [0, *generator.programs]
    parts = [Part(name, result.notes[result.notes["channel"] == channel],
                  generated=channel > 0, program=programs[channel])
             for channel, name in enumerate(names)]
    return Take(parts, grid, span, 0.0, len(result.events))


def as_tracks(made: list[Take]) -> Take:
    """Every take in one: the primer's parts once, then each take's generated parts,
    numbered by variation ("answer 1", "answer 2"...; "alto 1", "tenor 1"... for backing)."""
    if len(made) == 1:
        return made[0]
    first = made[0]
    parts = [p for p in first.parts if not p.generated]
    for k, one in enumerate(made, start=1):
        parts += [replace(p, name=f"{p.name} {k}") for p in one.parts if p.generated]
    if len(parts) > len(MELODIC_CHANNELS):
        raise CadenzaError(
            f"--variations: {len(made)} as tracks make {len(parts)} parts, one file has "
            f"{len(MELODIC_CHANNELS)} channels for them: use --variations-as files")
    span = max(one.span for one in made)
    return Take(parts, first.grid, span, first.primer_seconds, sum(t.events for t in made))


def set_programs(made: Take, programs: list[tuple[str | None, int]]) -> None:
    """--program values in order: (None, N) sets every part, ("bass", N) the part named
    bass; a part name the take does not have is refused, naming the parts it has."""
    names = [p.name for p in made.parts]
    for name, program in programs:
        if name is not None and name not in names:
            raise CadenzaError(f"--program: no part {name!r} here (parts: {', '.join(names)})")
        for part in made.parts:
            if name is None or part.name == name:
                part.program = program


__all__ = ["Request", "Take", "as_tracks", "set_programs", "take", "takes", "variation_seed"]
