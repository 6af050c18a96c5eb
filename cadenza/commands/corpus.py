"""`cadenza corpus prepare | render`: training data from MIDI files or music21's corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

from cadenza.commands import arguments as a

DEFAULT_CORPUS_DIR = Path("data/corpus")


def _corpus_dir(sources: list[str]) -> Path:
    names = (s.replace(":", "-").replace("/", "_").strip("._-") for s in sources)
    return DEFAULT_CORPUS_DIR / "+".join(names)


def cmd_corpus_prepare(args: argparse.Namespace) -> None:
    from cadenza.corpus.prepare import prepare_corpus

    sources = args.source or ["music21:bach"]
    out = Path(args.out) if args.out else _corpus_dir(sources)
    if not args.out and args.representation == "melody":  # beside the events' corpus
        out = out.with_name(f"{out.name}-melody")
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
    from cadenza.extras import require

    require("corpus render", "tinysoundfont")
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


def add_commands(sub: argparse._SubParsersAction) -> None:
    corpus = sub.add_parser("corpus", help="prepare training data").add_subparsers(
        dest="corpus_command", required=True
    )
    prepare = corpus.add_parser("prepare", help="MIDI files or music21's corpus -> token arrays")
    prepare.add_argument(
        "source",
        nargs="*",
        help="music21:bach (default) | music21:palestrina | music21:folk | music21:composers "
        "| a folder of MIDI files; several make one corpus, each piece labelled with its "
        "source's style",
    )
    prepare.add_argument(
        "-o", "--out", type=a.output_dir,
        help=f"output directory (default {DEFAULT_CORPUS_DIR}/<source>)"
    )
    prepare.add_argument(
        "--jobs", type=a.jobs, default=None, help="worker processes (default: all cores)"
    )
    prepare.add_argument(
        "--limit", type=a.count, default=None, help="use only the first N pieces of each source"
    )
    prepare.add_argument(
        "--max-pieces-per-source",
        type=a.count,
        default=None,
        metavar="N",
        help="at most N pieces of each source, the same ones every run (by a hash of the id)",
    )
    prepare.add_argument(
        "--representation",
        choices=["performance", "parts", "melody"],
        default="performance",
        help="performance events (default), parts on a grid for the backing model, or a "
        "monophonic melody for melody-rnn (music21:tunes)",
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
    render.add_argument("-o", "--out", type=a.output_dir,
                        help="output directory (default data/audio/<sources>)")
    render.add_argument("--sample-rate", type=a.whole(8000, 192000), default=24000,
                        help="Hz (default 24000)")
    render.add_argument("--clip-seconds", type=a.number(0.0, 600.0, open_low=True), default=4.0,
                        help="clip length (default 4)")
    render.add_argument("--clips-per-piece", type=a.whole(1, 10_000), default=4,
                        help="clips per piece (4)")
    render.add_argument(
        "--max-pieces-per-source", type=a.count, default=150, metavar="N",
        help="at most N pieces of each source, the same ones every run (default 150)",
    )
    render.add_argument("--limit", type=a.count, default=None, help="first N pieces of each source")
    render.add_argument("--soundfont", type=a.input_file,
                        help="a .sf2 file (default: the system's GM SoundFont)")
    render.add_argument("--jobs", type=a.jobs, default=None, help="worker processes (all cores)")
    render.add_argument("--force", action="store_true", help="render again even if cached")
    render.set_defaults(func=cmd_corpus_render)
