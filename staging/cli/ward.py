"""``dreamnet ward``: one technician, many beds (live view, or a headless event stream)."""

from __future__ import annotations

import argparse
import sys

from ._common import add_grace, bounded_float, bounded_int, nonnegative_int, parse_duration
from .monitor import parse_speed

DESCRIPTION = """\
Watch many beds at once: one row per bed (stage and confidence, time in stage, signal quality,
heart rate, nightmare risk, pending or last intervention, recording), the rows that need a
person on top. Each bed is a complete monitored session (as 'dreamnet monitor'), and the beds
are spread over worker processes.

When 3 or more beds, and half of the ward, are aroused within 30 s, the ward calls it a
disturbance of the room:
'Disturbance' is written into each affected bed's recording, it is shown once, and those beds
get no nightmare cue for it.

Keys: up/down (or j/k) select a bed, enter opens it in the full monitor view (esc comes
back), a acknowledge its alerts, v veto / y approve its pending cue, q quit (every recording
and report is finalised)."""

EPILOG = """\
beds:
  --beds N                 N simulated sleepers, mixed profiles, seeds derived from --seed
  --bed NAME=SOURCE        any source of 'dreamnet monitor' (synthetic[:PROFILE], drill,
                           FILE.edf, tcp://HOST:PORT, lsl:NAME); repeat it
  --beds-file ward.toml    [[bed]] tables: name, source, profile, seed, key, sleeper

examples:
  dreamnet ward --beds 8 --seed 3
  dreamnet ward --beds 16 --no-tui --speed max --duration 8h --events ward.jsonl --record beds/
  dreamnet ward --beds 6 --faults noise=2 --no-tui --speed max --duration 2h --report out/"""


def _add_bed_options(p) -> None:
    """Add the options of the beds, their nights and their faults."""
    from ..ward import MAX_BEDS

    p.add_argument(
        "--beds",
        type=bounded_int(1, MAX_BEDS),
        default=None,
        metavar="N",
        help=f"N simulated beds (1-{MAX_BEDS})",
    )
    p.add_argument(
        "--bed", action="append", default=[], metavar="NAME=SOURCE", help="one bed (repeatable)"
    )
    p.add_argument("--beds-file", default=None, metavar="FILE.toml", help="beds from a file")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the ward (default 0)")
    p.add_argument(
        "--speed",
        type=parse_speed,
        default=60.0,
        metavar="X",
        help="session seconds per wall second: 1 (real time), 60 (default) or max",
    )
    p.add_argument(
        "--duration",
        type=parse_duration,
        default=None,
        metavar="D",
        help="length of the simulated nights (default 8h)",
    )
    p.add_argument(
        "--faults",
        default=None,
        metavar="SPEC",
        help="noise=K (K room noises in the night) and any fault of 'dreamnet simulate' "
        "(applied to every simulated bed)",
    )


def _add_output_options(p) -> None:
    """Add the options of the outputs, the grace period and the workers."""
    from ..ward import MAX_WORKERS

    p.add_argument("--record", default=None, metavar="DIR", help="one EDF+ per bed: DIR/NAME.edf")
    p.add_argument("--events", default=None, metavar="FILE.jsonl", help="the ward's event stream")
    p.add_argument(
        "--report",
        default=None,
        metavar="DIR",
        help="a morning report per bed (DIR/NAME/) and the ward's page (DIR/ward.html)",
    )
    p.add_argument("--force", action="store_true", help="replace existing output files")
    add_grace(p)
    p.add_argument(
        "--workers",
        type=bounded_int(0, MAX_WORKERS),
        default=None,
        metavar="N",
        help="worker processes (default: one per core; 0 runs every bed in this process)",
    )


def _add_disturbance_options(p) -> None:
    """Add the options saying when simultaneous arousals make a disturbance."""
    from ..ward import MAX_BEDS

    p.add_argument(
        "--disturbance-beds",
        type=bounded_int(2, MAX_BEDS),
        default=3,
        metavar="N",
        help="beds aroused together that make a disturbance (default 3)",
    )
    p.add_argument(
        "--disturbance-window",
        type=bounded_float(0.0, 600.0, "seconds", above_lo=True),
        default=30.0,
        metavar="S",
        help="seconds within which their arousals start (default 30)",
    )
    p.add_argument(
        "--disturbance-quorum",
        type=bounded_float(0.0, 1.0, "a share"),
        default=0.5,
        metavar="F",
        help="share of the running beds a disturbance must also reach (default 0.5)",
    )


def add_parser(subparsers) -> None:
    """Register ``dreamnet ward``."""
    p = subparsers.add_parser(
        "ward",
        help="many beds at once: live ward view (or --no-tui: one event stream)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_bed_options(p)
    _add_output_options(p)
    _add_disturbance_options(p)
    p.add_argument(
        "--lsl-events",
        action="store_true",
        help="also publish every event on an LSL marker stream 'dreamnet-ward' (needs pylsl)",
    )
    p.add_argument("--no-tui", action="store_true", help="run headless (no live view)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``dreamnet ward``; returns the exit code."""
    from ..ward.app import WardOptions, run_ward

    opts = WardOptions(
        n_beds=args.beds,
        bed=list(args.bed),
        beds_file=args.beds_file,
        seed=args.seed,
        speed=args.speed,
        duration_s=args.duration,
        faults=args.faults,
        record=args.record,
        events=args.events,
        report=args.report,
        grace_s=args.grace,
        tui=not args.no_tui,
        workers=args.workers,
        force=args.force,
        min_beds=args.disturbance_beds,
        window_s=args.disturbance_window,
        quorum=args.disturbance_quorum,
        lsl_events=args.lsl_events,
    )
    return run_ward(opts, stdout=sys.stdout, stderr=sys.stderr)
