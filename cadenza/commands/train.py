"""`cadenza train KIND` and `cadenza export`: both ask the registry of model kinds."""

from __future__ import annotations

import argparse

from cadenza.commands import arguments as a
from cadenza.kinds import get_kind, kinds_with


def cmd_train(args: argparse.Namespace) -> None:
    kind = get_kind(args.model, field="model")
    overrides = list(args.set or [])
    for flag in ("data", "out", "device"):
        if getattr(args, flag) is not None:
            overrides.append(f"{flag}={getattr(args, flag)}")
    config = kind.piece("config")(args.config, overrides)
    kind.piece("trainer")(config, resume=args.resume, progress=not args.no_progress)


def cmd_export(args: argparse.Namespace) -> None:
    from cadenza.export.checkpoint import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.out, name=args.name,
                            sampling=dict(args.sampling or []))
    print(f"bundle written to {out}")


def add_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a model (torchrun for several processes)")
    train.add_argument("model", choices=kinds_with("trainer"), help="the model kind")
    train.add_argument("--config", help="YAML file of settings")
    train.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set model.hidden_size=512",
    )
    train.add_argument("--data", help="prepared corpus directory")
    train.add_argument("--out", type=a.output_dir, help="run directory for checkpoints and metrics")
    train.add_argument("--device", help="cpu | cuda | cuda:N")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    export = sub.add_parser("export", help="checkpoint -> parity-checked ONNX bundle")
    export.add_argument("checkpoint", type=a.input_file)
    export.add_argument("-o", "--out", type=a.output_dir, required=True,
                        help="bundle directory to write")
    export.add_argument("--name", help="bundle name (default: the run directory's name)")
    export.add_argument(
        "--sampling", nargs="+", type=a.sampling_setting, metavar="KNOB=VALUE",
        help="the bundle's default knobs, e.g. temperature=0.9 top_p=0.9 max_voices=10")
    export.set_defaults(func=cmd_export)
