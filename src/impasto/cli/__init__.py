"""The ``impasto`` command: thin fronts over the engine, one module per command.

Building the parser imports no torch (``impasto --help`` and ``--version`` answer at once);
each command imports what it needs when it runs. User errors print one line and exit 2 (usage)
or 1 (runtime); real bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from impasto._version import __version__
from impasto.cli import batch, info, sheet, stylize, tools, video
from impasto.cli.options import attach_negative_values, value_options
from impasto.errors import ImpastoError

PROG = "impasto"
COMMANDS = (stylize, batch, video, sheet, info, tools)


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported in one line (the usage is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Neural style transfer (Gatys et al.): paint a photo in the style of a painting.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for command in COMMANDS:
        command.add_parsers(sub)
    co = sub.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description='Print a completion script: eval "$(impasto completion bash)" in ~/.bashrc, '
        "or write impasto completion zsh to a file _impasto on $fpath.",
    )
    co.add_argument("shell", choices=("bash", "zsh"))
    co.set_defaults(run=completion)
    return parser


def completion(args: argparse.Namespace) -> int:
    import shtab

    sys.stdout.write(shtab.complete(build_parser(), shell=args.shell))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(attach_negative_values(argv, value_options(parser)))
    try:
        return int(args.run(args))
    except ImpastoError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
