"""`cadenza audio`: text-conditioned audio from the codec-lm plugin, to the sound card or a
WAV."""

from __future__ import annotations

import argparse

from cadenza.commands import arguments as a
from cadenza.errors import ConfigError
from cadenza.sound_files import BIT_DEPTHS


def cmd_audio(args: argparse.Namespace) -> None:
    from cadenza.realtime.library_noise import set_verbose

    set_verbose(args.verbose)  # the audio and MIDI libraries' own lines (ALSA, JACK, PortAudio)
    if args.prepare:  # what exported the text encoder once; it ships with cadenza now
        print("nothing to prepare: the text encoder ships with cadenza[audio]")
        if args.prompt is None and args.out is None and args.seconds is None:
            return
    from cadenza.realtime.audio_play import load_codec_lm, play, prime, write_file

    if args.seconds is not None and args.seconds <= 0:
        raise ConfigError("--seconds", f"must be positive, got {args.seconds}")
    if args.bit_depth is not None and args.out is None:
        raise ConfigError("--bit-depth", "is for the file -o writes; none is given")
    lm = load_codec_lm(args.bundle, args.seed)
    from dataclasses import replace

    for name, value in (("temperature", args.temperature), ("top_k", args.top_k)):
        if value is not None:
            try:
                lm.knobs = replace(lm.knobs, **{name: value})  # Knobs checks its values
            except ValueError as e:
                raise ConfigError(f"--{name.replace('_', '-')}", str(e)) from None
    if args.cfg is not None:
        if args.cfg < 0:
            raise ConfigError("--cfg", f"must be >= 0, got {args.cfg}")
        lm.cfg = args.cfg
    if args.prompt and args.prompt.strip():
        _ = lm.text_encoder  # the shipped one, or a one-line error naming cadenza[audio]
    prompt_seconds = prime(lm, args.prompt, args.continue_from)
    if prompt_seconds:
        print(f"continuing {prompt_seconds:.2f} s of {args.continue_from}")
    if args.out is not None:
        run = write_file(lm, args.seconds or 10.0, args.out, args.bit_depth or "16")
        print(f"{args.out}: {run.seconds:.1f} s at {lm.sample_rate} Hz in {run.wall:.1f} s "
              f"({run.real_time_factor:.2f}x real time)")
        return
    knobs = None
    midi = None
    if args.temperature_cc is not None or args.cfg_cc is not None:
        from cadenza.realtime.ports import open_input

        midi = open_input(args.midi_in, virtual_name="cadenza audio in")
    from cadenza.realtime.audio_knobs import AUDIO_KEYS_HELP, AudioKnobs

    knobs = AudioKnobs(lm, temperature="knobs.temperature", cfg="cfg",
                       temperature_cc=args.temperature_cc, cfg_cc=args.cfg_cc, midi=midi)
    try:
        if knobs.start():
            print(AUDIO_KEYS_HELP)
        device = int(args.device) if args.device and args.device.isdigit() else args.device
        run = play(lm, args.seconds, device=device, knobs=knobs, status=not args.quiet)
    finally:
        knobs.stop()
        if midi is not None:
            midi.close()
    print(f"played {run.seconds:.1f} s, underruns {run.underruns}")


def add_commands(sub: argparse._SubParsersAction) -> None:
    audio = sub.add_parser("audio", help="text-conditioned audio (codec-lm) to the sound card "
                           "or a WAV")
    audio.add_argument("--prompt", help='what to play, e.g. "a church organ playing a slow '
                       'Bach chorale" (none: unconditioned)')
    audio.add_argument("--continue", dest="continue_from", metavar="IN.WAV", type=a.input_file,
                       help="continue this audio: WAV (16/24/32-bit, float), AIFF, FLAC..., "
                       "any rate")
    audio.add_argument("--seconds", type=a.positive_seconds,
                       help="how long (default: until q or Ctrl-C; 10 with -o)")
    audio.add_argument("-o", "--out", type=a.output_file,
                       help="write a WAV (an AIFF for a .aif/.aiff name) instead of playing")
    audio.add_argument("--bit-depth", choices=list(BIT_DEPTHS),
                       help="samples of the file -o writes: 16 or 24-bit PCM, or 32-bit float "
                       "(default 16)")
    audio.add_argument("--bundle", help="codec-lm bundle (default: the shipped one)")
    audio.add_argument("--device", help="sound card: index or part of its name "
                       "(see cadenza ports)")
    audio.add_argument("--temperature", type=a.number(0.0, 10.0))
    audio.add_argument("--top-k", type=a.non_negative_count,
                       help="sample from the k likeliest codes (250)")
    audio.add_argument("--cfg", type=a.number(0.0, 100.0),
                       help="classifier-free guidance coefficient (3.0)")
    audio.add_argument("--temperature-cc", type=a.controller,
                       help="a CC that turns the temperature")
    audio.add_argument("--cfg-cc", type=a.controller, help="a CC that turns the guidance")
    audio.add_argument("--midi-in", help="the MIDI input for the CCs (default: a virtual "
                       "port 'cadenza audio in')")
    audio.add_argument("--seed", type=a.seed)
    audio.add_argument("--quiet", action="store_true", help="no status line")
    audio.add_argument("--verbose", action="store_true",
                       help="also show the MIDI/audio libraries' own messages (ALSA, JACK)")
    # Kept so that old scripts still run: the text encoder needs no preparing any more.
    audio.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    audio.set_defaults(func=cmd_audio)
