"""The ``dreamnet`` command line: one entry point, one module per subcommand.

Exit codes: 0 ok, 2 bad input or usage (one line on stderr, no traceback), 1 unexpected.
Bad input is a :class:`~headset.errors.HeadsetError` or :class:`~staging.errors.StagingError`
(a file, a device, an option value); any other exception is a bug and keeps its traceback.
Each subcommand lives in ``staging/cli/<name>.py`` and provides
``add_parser(subparsers)``; heavy imports stay inside its ``run`` so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from headset.errors import HeadsetError

from ..errors import StagingError
from ..outputs import printable

#: Subcommand modules under ``staging.cli``, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "simulate",
    "monitor",
    "ward",
    "score",
    "train",
    "headset",
    "bench",
    "report",
)


class UsageError(Exception):
    """A command-line usage problem (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and exit with code 2.

    A value that starts with ``-`` and a digit (``--duration -5m``, ``--grace -1``) is taken
    as the option's value, so its own check can say what is wrong with it.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message):  # noqa: D102
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """Return the ``dreamnet`` parser with every subcommand registered."""
    parser = _Parser(
        prog="dreamnet",
        description="Signal pipeline of a simulated neural sleep headset.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"staging.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``dreamnet`` command line and return its exit code.

    Parameters
    ----------
    argv : list of str or None
        Arguments without the program name; None reads ``sys.argv``.

    Returns
    -------
    int
        0 on success, 2 on bad input or usage, 1 on an unexpected error.
    """
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(printable(exc), file=sys.stderr)
        return 2
    except (HeadsetError, StagingError) as exc:
        print(printable(f"dreamnet: error: {exc}"), file=sys.stderr)
        return 2
    except OSError as exc:
        target = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(printable(f"dreamnet: error: {exc.strerror or exc}{target}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dreamnet: interrupted", file=sys.stderr)
        return 130
