"""Argument types and options shared by the subcommands (durations, seeds, bounded counts).

The output checks every command runs before writing live in :mod:`staging.outputs`.
"""

from __future__ import annotations

import argparse
import math
import re

_DURATION_RE = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$"
)
#: Longest ``--duration`` any command accepts, seconds (two nights).
MAX_DURATION_S = 48 * 3600.0


def parse_duration(text: str) -> float:
    """Parse ``8h``, ``90m``, ``1h30m``, ``45s`` or plain seconds into seconds.

    Parameters
    ----------
    text : str
        The duration as typed on the command line.

    Returns
    -------
    float
        Seconds, strictly positive and at most :data:`MAX_DURATION_S` (48 h).
    """
    if (text or "").strip().startswith("-"):
        raise argparse.ArgumentTypeError(f"duration must be positive, got {text!r}")
    m = _DURATION_RE.match(text or "")
    if not text or m is None or not any(m.groups()):
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: expected e.g. 8h, 90m, 1h30m or 45s"
        )
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    seconds = h * 3600 + mi * 60 + s
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive, got {text!r}")
    if seconds > MAX_DURATION_S:
        raise argparse.ArgumentTypeError(
            f"duration must be at most {MAX_DURATION_S / 3600:g}h, got {text!r}"
        )
    return seconds


def nonnegative_int(text: str) -> int:
    """Parse a non-negative integer (seeds, ports)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def bounded_int(lo: int, hi: int):
    """Return an argument type accepting integers in ``[lo, hi]`` (counts and sizes).

    Parameters
    ----------
    lo, hi : int
        Smallest and largest accepted value.

    Returns
    -------
    callable
        ``text -> int``; raises ``argparse.ArgumentTypeError`` naming the range.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer {lo}-{hi}, got {text!r}"
            ) from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {lo}-{hi}, got {text!r}")
        return value

    return parse


def bounded_float(lo: float, hi: float, what: str, *, above_lo: bool = False):
    """Return an argument type accepting finite numbers in ``[lo, hi]`` (seconds, shares).

    Parameters
    ----------
    lo, hi : float
        Smallest and largest accepted value (``hi`` may be ``inf``: no upper bound).
    what : str
        What the number is, for the messages (``"grace (seconds)"``).
    above_lo : bool
        Refuse ``lo`` itself (a positive quantity).

    Returns
    -------
    callable
        ``text -> float``; raises ``argparse.ArgumentTypeError`` naming the range.
    """
    low = f"> {lo:g}" if above_lo else f">= {lo:g}"
    span = f"a finite number {low}" if math.isinf(hi) else f"{low} and <= {hi:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        above = value > lo if above_lo else value >= lo
        if not (above and value <= hi and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{what} must be {span}, got {text!r}")
        return value

    return parse


def add_grace(parser: argparse.ArgumentParser) -> None:
    """Add ``--grace``: seconds a proposed intervention waits for a veto (default 10)."""
    parser.add_argument(
        "--grace",
        type=bounded_float(0.0, math.inf, "grace (seconds)"),
        default=10.0,
        metavar="S",
        help="seconds a proposed intervention waits for a veto (default 10)",
    )


def add_seed(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--seed``: a non-negative integer, default 0, seeding ``what``."""
    parser.add_argument(
        "--seed", type=nonnegative_int, default=0, help=f"seed of {what} (default 0)"
    )


def add_duration(parser: argparse.ArgumentParser, default: float | None, text: str) -> None:
    """Add ``--duration`` (:func:`parse_duration`: ``8h``, ``90m``... at most 48 h)."""
    parser.add_argument("--duration", type=parse_duration, default=default, metavar="D", help=text)


def add_count(
    parser: argparse.ArgumentParser, flag: str, lo: int, hi: int, default: int, text: str
) -> None:
    """Add an integer option bounded to ``[lo, hi]``; its help ends with the range and default."""
    parser.add_argument(
        flag,
        type=bounded_int(lo, hi),
        default=default,
        metavar="N",
        help=f"{text}, {lo}-{hi} (default {default})",
    )


def add_allow_truncated(parser: argparse.ArgumentParser, verb: str) -> None:
    """Add ``--allow-truncated``: use the complete data records of a recording cut short."""
    parser.add_argument(
        "--allow-truncated",
        action="store_true",
        help=f"{verb} the complete data records of a recording cut short (default: refuse it)",
    )
