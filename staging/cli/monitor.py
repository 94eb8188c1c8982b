"""``dreamnet monitor``: the sleep technician's live console, or a headless event stream."""

from __future__ import annotations

import argparse
import sys

from ._common import add_allow_truncated, add_duration, add_grace, add_seed

DESCRIPTION = """\
Watch a night live: signals and their quality, the stage as it is scored, arousals, nightmare
alerts and the interventions of the policy, which the technician can veto or approve.
With no options, a simulated night on the embedded headset at 60x speed.

Keys: a acknowledge alerts, v veto / y approve the pending intervention, n add a note (written
into the recording), p pause, q quit. q and Ctrl-C finalise the recording, the event stream and
the report before exiting.

A proposed intervention waits --grace seconds of session time for a veto before it is sent;
while one is pending the live view slows to real time, so the technician has those seconds.
The decisions depend only on the samples and the technician's keys: --no-tui gives the same
events as the live view."""

EPILOG = """\
sources:
  synthetic          the embedded simulated headset (--seed, --profile, --duration, --faults)
  drill              a scripted 20-min practice night on it: wake, N2, calm REM, then a
                     nightmare at 11 min (practise acknowledge / veto / approve)
  FILE.edf|FILE.bdf  a recording replayed as if live (its annotations come along)
  tcp://HOST:PORT    a headset served by 'dreamnet headset serve' (--key pairs the commands)
  lsl:NAME           an LSL stream

examples:
  dreamnet monitor
  dreamnet monitor --profile nightmare-prone --seed 4 --record night.edf --report out/
  dreamnet monitor --no-tui --speed max --duration 8h --events - > night.jsonl"""


def parse_speed(text: str) -> float | None:
    """Parse ``--speed``: a positive factor (``1``, ``60``, ``60x``) or ``max`` (returns None)."""
    from headset.transport import parse_speed as speed_factor

    t = text.strip().lower()
    if t in ("fast", "inf"):
        t = "max"
    elif t != "max":
        t = t.removesuffix("x")
    try:
        return speed_factor(t) or None
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(subparsers) -> None:
    """Register ``dreamnet monitor``."""
    p = subparsers.add_parser(
        "monitor",
        help="live view of a night (or --no-tui: event stream), with recording and report",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _source_options(p.add_argument_group("source"))
    _output_options(p.add_argument_group("outputs"))
    _loop_options(p.add_argument_group("closed loop"))
    p.add_argument(
        "--no-tui",
        action="store_true",
        help="run headless (no live view); use with --events for unattended runs",
    )
    p.set_defaults(func=run)


def _source_options(g) -> None:
    """Add the options of the source: which night, how fast, how long."""
    from headset.sleeper.profiles import PROFILES

    g.add_argument(
        "--source",
        default="synthetic",
        metavar="SRC",
        help="synthetic (default), drill, FILE.edf, tcp://HOST:PORT or lsl:NAME",
    )
    add_seed(g, "the simulated night")
    g.add_argument(
        "--profile",
        default="healthy",
        choices=tuple(PROFILES),
        metavar="P",
        help=f"simulated sleeper: {', '.join(PROFILES)} (default healthy)",
    )
    g.add_argument(
        "--speed",
        type=parse_speed,
        default=60.0,
        metavar="X",
        help="session seconds per wall second: 1 (real time), 60 (default) or max",
    )
    add_duration(
        g,
        None,
        "stop after this much session time, e.g. 8h, 90m (default: the whole night, "
        "8 h for the synthetic headset)",
    )
    g.add_argument(
        "--faults",
        default=None,
        metavar="SPEC",
        help="simulated faults, e.g. loss=0.01,corrupt=0.001,disconnect=3,leadoff=1 "
        "(see 'dreamnet simulate --help' for the list)",
    )
    add_allow_truncated(g, "replay")


def _output_options(g) -> None:
    """Add the options of the files the session writes."""
    g.add_argument("--record", default=None, metavar="FILE.edf", help="write the session to EDF+")
    g.add_argument(
        "--events",
        default=None,
        metavar="FILE.jsonl",
        help="write the event stream, one JSON object a line ('-' for stdout)",
    )
    g.add_argument(
        "--report", default=None, metavar="DIR", help="write the morning report at the end"
    )
    g.add_argument(
        "--force",
        action="store_true",
        help="replace existing output files (--record, --events, the report's files)",
    )


def _loop_options(g) -> None:
    """Add the options of the closed loop: the sleeper's profile, the pairing key, the veto."""
    g.add_argument(
        "--sleeper",
        default=None,
        metavar="FILE.json",
        help="the sleeper's profile: personalises detection and the cue ladder, updated at the "
        "end (created if missing)",
    )
    g.add_argument(
        "--key",
        default=None,
        metavar="KEY",
        help="pairing key authenticating stimulation commands (TCP headsets)",
    )
    add_grace(g)


def run(args) -> int:
    """Run ``dreamnet monitor``; returns the exit code (130 after Ctrl-C, files finalised)."""
    from ..monitor.app import MonitorOptions, run_monitor

    opts = MonitorOptions(
        source=args.source,
        seed=args.seed,
        profile=args.profile,
        speed=args.speed,
        duration_s=args.duration,
        faults=args.faults,
        record=args.record,
        events=args.events,
        report=args.report,
        sleeper=args.sleeper,
        key=args.key,
        grace_s=args.grace,
        tui=not args.no_tui,
        force=args.force,
        allow_truncated=args.allow_truncated,
    )
    return run_monitor(opts, stdout=sys.stdout, stderr=sys.stderr)
