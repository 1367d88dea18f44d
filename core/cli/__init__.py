"""The `wia-security` command: one module per subcommand, registered in COMMANDS.

Exit codes, for every subcommand: 0 success, 1 some events invalid or rejected, 2 usage or I/O error,
130 interrupted, 143 terminated, 141 output pipe closed (see common.py).
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import traceback
from types import TracebackType
from typing import NoReturn, Sequence

from ..errors import WiaError
from ..extras import missing_package
from ..redact import redact, remember_proxy_credentials
from .._version import WIA_VERSION, __version__
from .common import EXIT_BROKEN_PIPE, EXIT_CODES_HELP, EXIT_INVALID, EXIT_OK, EXIT_USAGE, closest, silence_stdout

#: subcommand -> module in this package exposing `add_parser(subparsers)` and `run(args) -> int`
COMMANDS: dict[str, str] = {
    "validate": "validate",
    "forward": "forward",
    "replay": "replay",
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

#: subcommand -> the extra its client libraries come from, where only one can be meant
COMMAND_EXTRAS: dict[str, str] = {"serve": "server", "enrich": "intel"}

__all__ = ["COMMANDS", "EXIT_INVALID", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, plus the closest valid name when a choice is misspelled (subcommands inherit it)."""

    def error(self, message: str) -> NoReturn:
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if m:
            message += closest(m[1], re.findall(r"'([^']*)'", m[2]))
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wia-security",
        description="Validate, convert and deliver WIA Security events.",
        epilog=EXIT_CODES_HELP + " `wia-security COMMAND --help` for each command.")
    parser.add_argument("--version", action="version",
                        version=f"wia-security {__version__} (WIA Security standard {WIA_VERSION})")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        module.add_parser(subparsers)
    return parser


def _masked_excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))


def main(argv: Sequence[str] | None = None) -> int:
    # Started with stdout or stderr closed (`>&-`): Python leaves them None; write into /dev/null rather
    # than fail on the first print with a traceback.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    # An error nothing caught ends in a traceback: its text may quote a server's answer that echoed a
    # credential, so it is masked as log records are.
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _masked_excepthook
    # Proxy credentials in HTTPS_PROXY & co. reach messages through client libraries (a proxy URL quoted
    # whole, a Proxy-Authorization header in a repr, a refusal page echoing it): masked from the start.
    remember_proxy_credentials()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = int(args.run(args))
        sys.stdout.flush()              # a closed pipe shows here, not in the interpreter's last flush
        return code
    except WiaError as exc:             # a subcommand that did not catch its own: still one clear line
        print(f"wia-security {args.command}: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:  # a client library of an optional extra: say which extra
        reason = missing_package(exc, COMMAND_EXTRAS.get(args.command))
        if reason is None:
            raise
        print(f"wia-security {args.command}: {reason}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("wia-security: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`| head -1`): stop quietly, with the status a shell
        # gives a tool killed by SIGPIPE, so `set -o pipefail` scripts still see the cut.
        silence_stdout()
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
