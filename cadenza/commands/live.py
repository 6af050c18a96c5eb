"""`cadenza ports`, `cadenza live` and `cadenza demo`: the live engine on real MIDI ports."""

from __future__ import annotations

import argparse
from pathlib import Path

from cadenza.commands import arguments as a


def _verbose(args: argparse.Namespace) -> None:
    """--verbose: show what the MIDI and audio libraries print (ALSA, JACK, PortAudio), which is
    otherwise kept off the terminal (cadenza.realtime.library_noise)."""
    from cadenza.realtime.library_noise import set_verbose

    set_verbose(bool(getattr(args, "verbose", False)))


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="also show the MIDI/audio libraries' own messages (ALSA, JACK)")


def cmd_ports(args: argparse.Namespace) -> None:
    from cadenza.realtime.library_noise import library_noise
    from cadenza.realtime.ports import list_ports

    _verbose(args)
    ports = list_ports()
    print(f"MIDI ({ports['api']}):")
    for direction in ("inputs", "outputs"):
        print(f"  {direction}:")
        for name in ports[direction] or ["(none)"]:
            print(f"    {name}")
    try:
        with library_noise():  # PortAudio probing ALSA and JACK
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

    _verbose(args)
    overrides = {
        "mode": args.mode,
        "input_port": tuple(args.input_port) if args.input_port else None,
        "output_port": args.output_port,
        "port_name": args.port_name,
        "input_channel": args.input_channel,
        "output_channel": args.channel,
        "program": next((n for part, n in reversed(args.program or []) if part is None), None),
        "part_programs": {part: n for part, n in args.program or [] if part is not None} or None,
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
        "style_guidance": args.style_guidance,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "max_voices": 1 if args.mono else args.max_voices,
        "cc.voices": args.voices_cc,
        "plugin": args.plugin,
        "bundle": args.bundle,
        "seed": args.seed,
        "quiet": args.quiet or None,
        "realtime": False if args.no_rt else None,
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
        "cc.panic": args.panic_cc,
        "cc.bundle": args.select_cc,
        "record": args.record,
        "offset_ms": args.offset_ms,
    }
    config = load_live_config(args.config, overrides)
    if config.synth:  # before the model loads and the ports open
        from cadenza.extras import require
        from cadenza.render import find_soundfont

        require("live --synth", "tinysoundfont")
        find_soundfont(config.soundfont)
    run_live(config)


def cmd_demo(args: argparse.Namespace) -> None:
    from cadenza.demo import PRIMERS, run_demo

    _verbose(args)
    run_demo(
        Path(args.out),
        Path(args.primer) if args.primer else PRIMERS / "chorale.mid",
        bundle=args.bundle,
        seed=args.seed,
        soundfont=args.soundfont,
    )


def add_commands(sub: argparse._SubParsersAction) -> None:
    ports = sub.add_parser("ports", help="list MIDI ports and audio devices")
    _add_verbose(ports)
    ports.set_defaults(func=cmd_ports)

    live = sub.add_parser("live", help="play with a keyboard or a DAW, on real MIDI ports")
    live.add_argument("--config", help="YAML file of live settings")
    live.add_argument("--mode", help="call-response (default) | accompany | backing")
    live.add_argument(
        "--in",
        dest="input_port",
        action="append",
        metavar="PORT[:ROLES]",
        help="connect to the input port whose name contains PORT (default: a virtual port "
        "'cadenza in'); again for more ports, each read for ROLES: notes, controls, clock "
        "(comma-separated; default all), e.g. --in keys --in 'nanoKONTROL:controls'",
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
    live.add_argument("--program", type=a.part_program, action="append", metavar="[PART=]N",
                      help="General MIDI program sent at start on --channel; PART=N: a backing "
                      "part's by name (bass=33); repeat for several")
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
    voices = live.add_mutually_exclusive_group()
    voices.add_argument("--max-voices", type=int, metavar="N",
                        help="at most N notes sounding at once in an answer (1: monophonic, "
                        "0: no limit; default: the bundle's); the { and } keys turn it")
    voices.add_argument("--mono", action="store_true", help="monophonic: --max-voices 1")
    live.add_argument("--voices-cc", type=int,
                      help="a CC that turns the voices knob (1..8, no limit at the top)")
    live.add_argument("--plugin", help="plugin (default: performance-rnn)")
    live.add_argument("--bundle", help="bundle directory or .zip (default: the shipped one)")
    live.add_argument("--style", help="a style of the bundle, e.g. bach (transformer)")
    live.add_argument("--style-cc", type=int, help="a CC that picks the style")
    live.add_argument("--style-guidance", type=float, metavar="G",
                      help="hold to --style more closely than the model learnt (1: none)")
    live.add_argument("--seed", type=int)
    live.add_argument("--record", metavar="FILE.mid",
                      help="record the set into this MIDI file as it goes (the `r` key stops "
                      "and starts takes: FILE-2.mid ...)")
    live.add_argument("--offset-ms", type=float, metavar="MS",
                      help="send every generated note MS later (negative: earlier, backing "
                      "mode only): latency compensation")
    live.add_argument("--panic-cc", type=int, help="a CC (value >= 64) that ends every note")
    live.add_argument("--select-cc", type=int,
                      help="a CC whose value picks the bundle, among every bundle found")
    live.add_argument("--quiet", action="store_true", help="no status line")
    live.add_argument("--no-rt", action="store_true",
                      help="no real-time scheduling for the engine's threads (by default "
                           "asked for, and used where the OS grants it: docs/LIVE.md)")
    live.add_argument(
        "--synth",
        action="store_true",
        help="also play through a General MIDI SoundFont on the sound card",
    )
    live.add_argument("--soundfont", help="the .sf2 for --synth (default: $CADENZA_SOUNDFONT, "
                      "else one found on the system)")
    _add_verbose(live)
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
    demo = sub.add_parser("demo", help="a simulated player plays into the live engine")
    demo.add_argument("-o", "--out", type=a.output_dir, default="demo-out",
                      help="folder for the recordings")
    demo.add_argument("--primer", type=a.input_file,
                      help="the phrase the player plays (default: a chorale)")
    demo.add_argument("--bundle", help="bundle (default: the shipped one)")
    demo.add_argument("--seed", type=a.seed, default=7)
    demo.add_argument("--soundfont", help="the .sf2 for the recording's WAV (default: "
                      "$CADENZA_SOUNDFONT, else one found on the system)")
    _add_verbose(demo)
    demo.set_defaults(func=cmd_demo)
