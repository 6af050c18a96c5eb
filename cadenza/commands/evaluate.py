"""`cadenza eval` (each kind's check, from the registry) and `cadenza plugins`."""

from __future__ import annotations

import argparse
from pathlib import Path

from cadenza.commands import arguments as a
from cadenza.errors import CadenzaError, ConfigError
from cadenza.extras import require
from cadenza.kinds import EVENTS, get_kind


def cmd_eval(args: argparse.Namespace) -> None:
    from cadenza.bundle import default_bundle_path, load_bundle
    from cadenza.eval.request import EvalRequest, EvalSettings

    if args.bpm <= 0:
        raise ConfigError("--bpm", f"must be positive, got {args.bpm}")
    settings = EvalSettings(
        samples=args.samples,
        seconds=args.seconds,
        primer_seconds=args.primer_seconds,
        seed=args.seed,
        beat_seconds=60.0 / args.bpm,
        nll_events=args.nll_events,
        split=args.split,
    )
    settings.check()
    # `eval A --compare B C`: A's report with B and C beside it (A was once dropped silently).
    bundles = [*([args.bundle] if args.bundle else []), *(args.compare or [])]
    bundles = bundles or [default_bundle_path("performance-rnn")]
    request = EvalRequest(data=args.data, settings=settings, critic=args.critic,
                          use_critic=not args.no_critic, harmony=args.harmony,
                          compare=bundles[1:], progress=not args.no_progress)
    kind = get_kind(load_bundle(bundles[0]).plugin, field="plugin")
    if kind.evaluator is None:
        raise ConfigError("bundle", f"{bundles[0]}: `cadenza eval` has no check for "
                          f"{kind.name} bundles")
    if kind.evaluator == EVENTS:  # its report draws piano rolls and plots: say so up front
        require("eval's pictures", "matplotlib")
    out = Path(args.out)
    kind.piece("evaluator")(bundles[0], out, request)
    print(f"{out / 'report.md'}: the report")


def cmd_plugins(args: argparse.Namespace) -> None:
    from cadenza.bundle import find_bundles, load_bundle
    from cadenza.kinds import all_kinds

    print("model kinds:")
    for name, kind in all_kinds().items():
        pieces = [role for role in ("trainer", "exporter", "runtime", "evaluator")
                  if getattr(kind, role) is not None]
        live = f", live {kind.live}" if kind.live else ""
        print(f"  {name:18s} {kind.summary} ({', '.join(pieces)}{live})")
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


def add_commands(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser("eval", help="held-out NLL, music metrics, style, plots: a report")
    evaluate.add_argument("bundle", nargs="?", help="bundle (default: the shipped one)")
    evaluate.add_argument("--compare", nargs="+", metavar="BUNDLE",
                          help="bundles to report beside the first (BUNDLE, or the first of these)")
    evaluate.add_argument("--data", help="prepared corpus (default: the bundle's training data)")
    evaluate.add_argument("--samples", type=a.whole(1, 100_000), default=20,
                          help="samples to generate")
    evaluate.add_argument("--seconds", type=a.positive_seconds, default=20.0,
                          help="length of each sample")
    evaluate.add_argument(
        "--primer-seconds", type=a.non_negative_seconds, default=5.0,
        help="opening of held-out pieces to continue"
    )
    evaluate.add_argument("--seed", type=a.seed, default=0)
    evaluate.add_argument("--bpm", type=a.number(0.0, 1000.0, open_low=True), default=120.0,
                          help="beat for the rhythm figures")
    evaluate.add_argument("--nll-events", type=a.whole(1, 10**12),
                          help="score at most N held-out events")
    evaluate.add_argument("--split", default="test",
                          help="held-out split to score and compare with: test (the report's "
                          "figures, default) or valid (for choosing settings)")
    evaluate.add_argument("--critic", help="style critic bundle (default: the shipped one)")
    evaluate.add_argument("--no-critic", action="store_true", help="no style column")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate.add_argument("--harmony", type=a.number(0.0, 4.0),
                          help="a backing bundle's harmony knob, 0..4 (default: its own)")
    evaluate.add_argument("-o", "--out", type=a.output_dir, required=True,
                          help="folder for the report")
    evaluate.set_defaults(func=cmd_eval)

    plugins = sub.add_parser("plugins", help="list installed plugins and bundles")
    plugins.set_defaults(func=cmd_plugins)
