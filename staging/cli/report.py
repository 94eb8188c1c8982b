"""``dreamnet report FILE.edf --out DIR``: the morning report of a recording."""

from __future__ import annotations

import argparse
from datetime import datetime

from ..errors import StagingError
from ..outputs import check_outputs, printable


def _age(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an age in years, got {text!r}") from None
    if not 0.33 <= v <= 130:
        raise argparse.ArgumentTypeError(f"age must be 0.33-130 years, got {text!r}")
    return v


def _when(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date and time such as 2024-03-01T22:40, got {text!r}"
        ) from None


def add_parser(subparsers) -> None:
    """Register the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="morning report of a recording: HTML page, PNG figures, JSON summary",
        description=(
            "Write the morning report of a recording (EDF/EDF+/BDF, the project's own or real "
            "PSG): sleep statistics (AASM), hypnogram with arousals, nightmare alerts and cues, "
            "spectrogram, heart rate, and recommendations that cite the measured number and the "
            "guideline behind them. Stages come from the pipeline's 'Scored stage' annotations, "
            "else the recording is scored."
        ),
    )
    p.add_argument("file", help="recording (.edf/.bdf)")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--force", action="store_true", help="replace report files that exist")
    p.add_argument(
        "--allow-truncated",
        action="store_true",
        help="report on the complete data records of a recording cut short (default: refuse)",
    )
    p.add_argument("--age", type=_age, help="sleeper's age in years (sleep duration for age)")
    p.add_argument("--events", help="the monitor's event stream of this session (JSON lines)")
    p.add_argument(
        "--previous",
        action="append",
        default=[],
        metavar="REPORT.json",
        help="report.json of an earlier night (repeat; for regularity and nightmare frequency)",
    )
    p.add_argument(
        "--immersive-end",
        action="append",
        type=_when,
        default=[],
        metavar="DATETIME",
        help="end of an immersive session before this night, e.g. 2024-03-01T22:10 (repeat)",
    )
    p.add_argument("--sleeper", help="sleeper profile JSON (baselines of the nightmare detector)")
    p.add_argument(
        "--stages",
        choices=("auto", "scored", "true"),
        default="auto",
        help="stages used: scored annotations / the stager (auto, default) or the true ones",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    """Build the report; print where it is."""
    from pathlib import Path

    from staging.night.report import REPORT_FILES, build_report

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise StagingError(f"--out {printable(args.out)}: exists and is not a directory")
    inputs = [("FILE", args.file), ("--events", args.events), ("--sleeper", args.sleeper)]
    inputs += [("--previous", p) for p in args.previous]
    check_outputs([("--out", out / name) for name in REPORT_FILES], inputs, force=args.force)
    res = build_report(
        args.file,
        args.out,
        age_years=args.age,
        events_path=args.events,
        previous=args.previous,
        immersive_end=args.immersive_end,
        sleeper_profile=args.sleeper,
        stages=args.stages,
        allow_truncated=args.allow_truncated,
    )
    s = res.summary["stats"]
    n_rec = len(res.summary["recommendations"]["recommendations"])
    print(
        printable(
            f"{Path(args.file).name}: TST {s['tst_min']} min, SE {s['se_pct']} %, "
            f"{s['n_nightmare_alerts']} nightmare alert(s), {n_rec} recommendation(s)"
        )
    )
    for note in res.summary["notes"]:
        if note.startswith("truncated file"):
            print(printable(f"note: {note}"))
    print(printable(f"report: {res.html}"))
    return 0
