"""`cadenza generate`: continue a MIDI primer offline and write a MIDI file."""

from __future__ import annotations

import argparse

from cadenza.commands import arguments as a
from cadenza.errors import ConfigError


def cmd_generate(args: argparse.Namespace) -> None:
    # Imported here, as in every command: `cadenza --help` and the other commands start fast.
    from cadenza.generate import backing_parts, continue_primer, vae_phrases
    from cadenza.midi import load_notes, write_midi
    from cadenza.notes import empty_notes
    from cadenza.plugins import BackingGenerator, EventGenerator, load_generator
    from cadenza.plugins.sampling import Knobs
    from cadenza.plugins.vae import SegmentVAE

    if args.seconds <= 0:
        raise ConfigError("--seconds", f"must be positive, got {args.seconds}")
    _check_outputs(args)  # before any work: no MIDI file written and then a missing extra
    primer = load_notes(args.primer) if args.primer else empty_notes()
    default_plugin = None if args.bundle else "performance-rnn"  # else the bundle's own
    generator = load_generator(args.bundle, plugin=args.plugin or default_plugin, seed=args.seed)
    if args.style:
        generator.set_style(args.style)
    try:
        generator.knobs = Knobs(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    except ValueError as e:
        raise ConfigError("sampling", str(e)) from None
    if isinstance(generator, SegmentVAE):  # phrases through latent codes, on the bar grid
        result = vae_phrases(
            generator, args.mode, args.primer, args.between, args.steps, args.seconds
        )
    elif isinstance(generator, BackingGenerator):  # parts under the primer's melody
        result = backing_parts(generator, args.primer)
    elif not isinstance(generator, EventGenerator):
        raise ConfigError("bundle", f"{generator.plugin} makes audio: use `cadenza audio`")
    elif args.mode != "continue":
        raise ConfigError("--mode", f"{args.mode} needs the vae plugin, not {generator.plugin}")
    else:
        result = continue_primer(generator, primer, args.seconds)
    write_midi(result.notes, args.output, program=args.program)
    print(
        f"{args.output}: {len(result.notes)} notes, primer {result.primer_seconds:.1f} s + "
        f"{len(result.events)} generated events"
    )
    if args.wav or args.png:
        from cadenza.render import plot_piano_roll, render_wav

        if args.wav:
            render_wav(result.notes, args.wav, soundfont=args.soundfont, program=args.program)
            print(f"{args.wav}: rendered through a General MIDI SoundFont")
        if args.png:
            plot_piano_roll(
                result.notes,
                args.png,
                split_at=result.primer_seconds,
                title=f"{generator.bundle.name}: primer | continuation",
            )
            print(f"{args.png}: piano roll")


def _check_outputs(args: argparse.Namespace) -> None:
    """What --wav and --png need (the render extra, a SoundFont), checked up front."""
    from cadenza.extras import require

    if args.png:
        require("generate --png", "matplotlib")
    if args.wav:
        from cadenza.render import find_soundfont

        require("generate --wav", "tinysoundfont")
        find_soundfont(args.soundfont)


def add_commands(sub: argparse._SubParsersAction) -> None:
    generate = sub.add_parser("generate", help="continue a MIDI primer and write a MIDI file")
    generate.add_argument("--plugin", help="plugin (default: the bundle's, or performance-rnn)")
    generate.add_argument("--style", help="a style of the bundle, e.g. bach (transformer)")
    generate.add_argument("--bundle", help="bundle directory or .zip (default: the shipped one)")
    generate.add_argument("--primer", type=a.input_file, help="MIDI file to continue")
    generate.add_argument("--seconds", type=a.positive_seconds, default=30.0,
                          help="length of the continuation")
    generate.add_argument(
        "--mode", choices=["continue", "variation", "interpolate", "sample"], default="continue",
        help="vae: continue the primer, vary it, interpolate --between A B, sample the prior",
    )
    generate.add_argument(
        "--between", nargs=2, metavar=("A", "B"), help="vae interpolate: MIDI files or style:NAME"
    )
    generate.add_argument("--steps", type=a.whole(1, 1000), default=8,
                          help="vae interpolate: segments A..B")
    generate.add_argument("--temperature", type=a.number(0.0, 10.0), default=1.0)
    generate.add_argument("--top-k", type=a.non_negative_count, default=0)
    generate.add_argument("--top-p", type=a.number(0.0, 1.0, open_low=True), default=1.0)
    generate.add_argument("--seed", type=a.seed, default=None)
    generate.add_argument("--program", type=a.program, default=0,
                          help="General MIDI program (0: piano)")
    generate.add_argument("-o", "--output", type=a.output_file, required=True,
                          help="MIDI file to write")
    generate.add_argument("--wav", type=a.output_file,
                          help="also render a WAV through a General MIDI SoundFont")
    generate.add_argument("--png", type=a.output_file, help="also draw a piano roll")
    generate.add_argument("--soundfont", help="SoundFont (.sf2) for --wav (default: "
                          "$CADENZA_SOUNDFONT, else one found on the system)")
    generate.set_defaults(func=cmd_generate)
