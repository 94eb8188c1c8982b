"""Argument types shared by several subcommands."""

from __future__ import annotations

import argparse
import re

_DURATION_RE = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$"
)


def parse_duration(text: str) -> float:
    """Parse ``8h``, ``90m``, ``1h30m``, ``45s`` or plain seconds into seconds.

    Parameters
    ----------
    text : str
        The duration as typed on the command line.

    Returns
    -------
    float
        Seconds, strictly positive.
    """
    m = _DURATION_RE.match(text or "")
    if not text or m is None or not any(m.groups()):
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: expected e.g. 8h, 90m, 1h30m or 45s"
        )
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    seconds = h * 3600 + mi * 60 + s
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive, got {text!r}")
    return seconds


def nonnegative_int(text: str) -> int:
    """Parse a non-negative integer (seeds, counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value
