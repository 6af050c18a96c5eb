"""`cadenza generate`: continue a MIDI primer offline and write a MIDI file."""

from __future__ import annotations

import argparse
from pathlib import Path

from cadenza.commands import arguments as a
from cadenza.errors import ConfigError
from cadenza.events import NUM_PITCHES as MAX_VOICES  # not cadenza.plugins: onnxruntime
from cadenza.manifest import MAX_STYLE_GUIDANCE
from cadenza.sound_files import BIT_DEPTHS

QUANTIZE_UNITS = ("16th", "8th", "beat")  # cadenza.tracks.BarGrid.unit_seconds: what each is
MAX_BARS = 10_000
MAX_VARIATIONS = 100
BPM = (20.0, 400.0)  # the live engine's range


def cmd_generate(args: argparse.Namespace) -> None:
    # Imported here, as in every command: `cadenza --help` and the other commands start fast.
    from cadenza.plugins import load_generator
    from cadenza.plugins.sampling import Knobs
    from cadenza.takes import Request, as_tracks, set_programs, takes
    from cadenza.tracks import write_parts

    _check_outputs(args)  # before any work: no MIDI file written and then a missing extra
    default_plugin = None if args.bundle else "performance-rnn"  # else the bundle's own
    generator = load_generator(args.bundle, plugin=args.plugin or default_plugin, seed=args.seed)
    if args.style:
        generator.set_style(args.style)
    if args.style_guidance is not None:
        generator.set_style_guidance(args.style_guidance)
    voices = 1 if args.mono else args.max_voices
    try:
        generator.knobs = Knobs(  # a knob not given keeps the bundle's default (its sampling)
            temperature=pick(args.temperature, generator.knobs.temperature),
            top_k=pick(args.top_k, generator.knobs.top_k),
            top_p=pick(args.top_p, generator.knobs.top_p),
            max_voices=pick(voices, generator.knobs.max_voices))
    except ValueError as e:
        raise ConfigError("sampling", str(e)) from None
    request = Request(mode=args.mode, primer=args.primer, between=args.between,
                      steps=args.steps, seconds=args.seconds, bars=args.bars, bpm=args.bpm,
                      quantize=args.quantize)
    made = takes(generator, request, args.variations, args.seed)
    for one in made:
        set_programs(one, args.program or [])
    outputs = [as_tracks(made)] if args.variations_as == "tracks" else made
    for k, one in enumerate(outputs):
        path = numbered(args.output, k, len(outputs))
        write_parts(one.parts, one.grid, one.span, path)
        bar = one.grid.bar_seconds
        lead = f"{one.primer_seconds / bar:.4g} bars of primer + " if one.primer_seconds else ""
        print(f"{path}: {one.grid}, {lead}{(one.span - one.primer_seconds) / bar:.4g} bars "
              f"({one.span:.1f} s); tracks {', '.join(p.name for p in one.parts)}; "
              f"{one.events} generated events")
        _render(args, one, k, len(outputs), generator.bundle.name)


def pick(given, default):
    """A flag's value where the user gave one, else the bundle's default."""
    return default if given is None else given


def numbered(path: str, k: int, count: int) -> str:
    """`path` itself for one file; NAME-1.mid, NAME-2.mid... for several."""
    if count == 1:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{k + 1}{p.suffix}"))


def _render(args: argparse.Namespace, one, k: int, count: int, name: str) -> None:
    """--wav and --png of one output file (numbered as the MIDI files are)."""
    if not (args.wav or args.png):
        return
    from cadenza.render import plot_piano_roll, render_wav
    from cadenza.tracks import MELODIC_CHANNELS, all_notes

    notes = all_notes(one.parts)
    if args.wav:
        wav = numbered(args.wav, k, count)
        programs = {MELODIC_CHANNELS[i]: p.program for i, p in enumerate(one.parts)}
        render_wav(notes, wav, soundfont=args.soundfont, program=programs,
                   bit_depth=args.bit_depth or "16")
        print(f"{wav}: rendered through a General MIDI SoundFont")
    if args.png:
        png = numbered(args.png, k, count)
        plot_piano_roll(notes, png, split_at=one.primer_seconds,
                        title=f"{name}: primer | continuation")
        print(f"{png}: piano roll")


def _check_outputs(args: argparse.Namespace) -> None:
    """What --wav and --png need (the render extra, a SoundFont), checked up front."""
    from cadenza.extras import require

    if args.png:
        require("generate --png", "matplotlib")
    if args.bit_depth is not None and not args.wav:
        raise ConfigError("--bit-depth", "is for the file --wav writes; none is given")
    if args.wav:
        from cadenza.render import find_soundfont

        require("generate --wav", "tinysoundfont")
        find_soundfont(args.soundfont)


def add_commands(sub: argparse._SubParsersAction) -> None:
    generate = sub.add_parser("generate", help="continue a MIDI primer and write a MIDI file")
    generate.add_argument("--plugin", help="plugin (default: the bundle's, or performance-rnn)")
    generate.add_argument("--style", help="a style of the bundle, e.g. bach (transformer)")
    generate.add_argument("--style-guidance", type=a.number(0.0, MAX_STYLE_GUIDANCE),
                          metavar="G", help="hold to --style more closely than the model learnt "
                          "(classifier-free guidance; 1: none; default: the bundle's)")
    generate.add_argument("--bundle", help="bundle directory or .zip (default: the shipped one)")
    generate.add_argument("--primer", type=a.input_file, help="MIDI file to continue")
    length = generate.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=a.positive_seconds,
                        help="length of the continuation (default 30; vae variation and "
                        "interpolate, backing: the music's own)")
    length.add_argument("--bars", type=a.whole(1, MAX_BARS),
                        help="length in whole bars of the primer's tempo and time signature "
                        "(without a primer: --bpm, 4/4)")
    generate.add_argument("--bpm", type=a.number(*BPM), help="tempo without a primer "
                          "(default 120, the vae's own); a primer's first tempo is used")
    generate.add_argument("--quantize", choices=QUANTIZE_UNITS,
                          help="snap the generated notes' starts and ends to this grid")
    generate.add_argument("--variations", type=a.whole(1, MAX_VARIATIONS), default=1,
                          help="how many different results (seeds --seed, --seed+1, ...)")
    generate.add_argument("--variations-as", choices=["files", "tracks"], default="files",
                          help="files: NAME-1.mid, NAME-2.mid...; tracks: one file, a track "
                          "per variation's part")
    generate.add_argument(
        "--mode", choices=["continue", "variation", "interpolate", "sample"], default="continue",
        help="vae: continue the primer, vary it, interpolate --between A B, sample the prior",
    )
    generate.add_argument(
        "--between", nargs=2, metavar=("A", "B"), help="vae interpolate: MIDI files or style:NAME"
    )
    generate.add_argument("--steps", type=a.whole(1, 1000), default=8,
                          help="vae interpolate: segments A..B")
    generate.add_argument("--temperature", type=a.number(0.0, 10.0),
                          help="default: the bundle's sampling.temperature")
    generate.add_argument("--top-k", type=a.non_negative_count,
                          help="default: the bundle's sampling.top_k (0: no cut)")
    generate.add_argument("--top-p", type=a.number(0.0, 1.0, open_low=True),
                          help="default: the bundle's sampling.top_p (1: no cut)")
    voices = generate.add_mutually_exclusive_group()
    voices.add_argument("--max-voices", type=a.whole(0, MAX_VOICES), metavar="N",
                        help="at most N notes sounding at once (1: monophonic, 0: no limit; "
                        "default: the bundle's sampling.max_voices); the vae keeps the N "
                        "highest notes of each step")
    voices.add_argument("--mono", action="store_true", help="monophonic: --max-voices 1")
    generate.add_argument("--seed", type=a.seed, default=None)
    generate.add_argument("--program", type=a.part_program, action="append",
                          metavar="[PART=]N", help="General MIDI program 0-127 of every part, "
                          "or of one part by name (bass=33); repeat for several (default: "
                          "0, piano; a backing bundle's own for its parts)")
    generate.add_argument("-o", "--output", type=a.output_file, required=True,
                          help="MIDI file to write")
    generate.add_argument("--wav", type=a.output_file,
                          help="also render a WAV (an AIFF for a .aif/.aiff name) through a "
                          "General MIDI SoundFont")
    generate.add_argument("--bit-depth", choices=list(BIT_DEPTHS),
                          help="samples of the --wav file: 16 or 24-bit PCM, or 32-bit float "
                          "(default 16)")
    generate.add_argument("--png", type=a.output_file, help="also draw a piano roll")
    generate.add_argument("--soundfont", help="SoundFont (.sf2) for --wav (default: "
                          "$CADENZA_SOUNDFONT, else one found on the system)")
    generate.set_defaults(func=cmd_generate)
