"""The `wia-security` command: one module per subcommand, registered in COMMANDS.

Exit codes, for every subcommand: 0 success, 1 some events invalid or rejected, 2 usage or I/O error.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from ..errors import WiaError
from .._version import WIA_VERSION, __version__

#: subcommand -> module in this package exposing `add_parser(subparsers)` and `run(args) -> int`
COMMANDS: dict[str, str] = {
    "validate": "validate",
    "forward": "forward",
    "convert": "convert",
    "query": "query",
    "attack": "attack",
    "report": "report",
    "compliance": "compliance",
    "enrich": "enrich",
    "intel": "intel",
    "serve": "serve",
    "pull": "pull",
}

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wia-security",
        description="Validate, convert and deliver WIA Security events.",
        epilog="Exit codes: 0 success, 1 some events invalid or rejected, 2 usage or I/O error.")
    parser.add_argument("--version", action="version",
                        version=f"wia-security {__version__} (WIA Security standard {WIA_VERSION})")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except WiaError as exc:             # a subcommand that did not catch its own: still one clear line
        print(f"wia-security {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
