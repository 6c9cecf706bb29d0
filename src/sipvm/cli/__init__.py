"""The ``sipvm`` command (CONTRACT.md): argument parsing, output, exit codes.

Each command opens the store in ``--data``, runs one use case and prints the result: a table for
people, or with ``--json`` one JSON value and nothing else. Errors are one clear line each on
stderr, with the exit code of the error's class (0 ok, 2 invalid, 3 not permitted, 4 not found).

One module per command group registers its subcommands: ``serve`` (serve.py), ``directory``
(directory.py), ``inboxes``/``messages``/``message`` (messages.py), ``greeting`` (greeting.py),
``hours`` (hours.py), ``email`` (email.py), ``token`` (token.py), ``phones`` (phones.py);
output.py prints, common.py opens the store.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sipvm.cli.common import Handler
from sipvm.cli.directory import add_directory_parser
from sipvm.cli.email import add_email_parser
from sipvm.cli.greeting import add_greeting_parser
from sipvm.cli.hours import add_hours_parser
from sipvm.cli.messages import add_messages_parsers
from sipvm.cli.output import print_error
from sipvm.cli.phones import add_phones_parser
from sipvm.cli.serve import add_serve_parser
from sipvm.cli.token import add_token_parser
from sipvm.errors import SipvmError
from sipvm.logs import setup_logging

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sipvm`` console script; returns the exit code."""
    # Voicemail is private: every file sipvm creates (store, recordings, greetings, exports,
    # the pool's generated configs) is readable by its owner only.
    os.umask(0o077)
    parser = build_parser()
    args = parser.parse_args(argv)
    # One line per record, control characters escaped: log text carries callers' data.
    setup_logging(logging.INFO if args.command == "serve" else logging.WARNING, sys.stderr)
    handler: Handler = args.handler
    try:
        code: int = asyncio.run(handler(args))
    except SipvmError as exc:
        return print_error(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
        return 0
    return code


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, one subparser per command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data", type=Path, default=Path("./data"), help="data directory (default ./data)"
    )
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--json", action="store_true", help="print JSON only")

    parser = argparse.ArgumentParser(prog="sipvm", description="SIP voicemail with shared inboxes")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_parser(sub)
    add_directory_parser(sub, common)
    add_messages_parsers(sub, common, listing)
    add_greeting_parser(sub, common, listing)
    add_hours_parser(sub, common, listing)
    add_email_parser(sub, common, listing)
    add_token_parser(sub, common, listing)
    add_phones_parser(sub, common, listing)
    return parser
