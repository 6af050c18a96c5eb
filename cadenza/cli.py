"""The `cadenza` command. Subcommands only parse their arguments and delegate.

Each group of subcommands is a module of cadenza.commands with `add_commands(sub)`. Heavy
modules (torch, music21) are imported inside the subcommand that needs them, so that
`cadenza generate` and `cadenza live` start fast on a machine without torch.
"""

from __future__ import annotations

import argparse
import sys

from cadenza.commands import audio, corpus, evaluate, generate, live, train
from cadenza.commands.arguments import Parser
from cadenza.errors import CadenzaError

COMMANDS = (corpus, train, generate, live, audio, evaluate)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="cadenza", description="Real-time music generation.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMANDS:
        group.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # a usage error (one line, see Parser), or --help
        return e.code if isinstance(e.code, int) else 2
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
